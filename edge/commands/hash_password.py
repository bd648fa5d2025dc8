"""`binpick hash-password`: the `NAME:ROLE:HASH` entry for `[health] users` or `tokens`.

The password is read without echo (or from stdin with --stdin, for scripts); only its salted
scrypt hash goes into the configuration. There is no default password anywhere.
"""

from __future__ import annotations

import argparse
import getpass
import sys

from binpick_core.errors import CommandError
from edge.health.auth import ROLES, CredentialError, hash_secret


def configure(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("name", help="user name (basic auth) or token name (bearer token)")
    parser.add_argument(
        "--role", choices=ROLES, default="viewer", help="viewer: sees the page; operator: also acts"
    )
    parser.add_argument("--stdin", action="store_true", help="read the password or token from stdin")


def main(args: argparse.Namespace) -> int:

    if ":" in args.name or " " in args.name or not args.name:
        raise CommandError(f"name {args.name!r}: expected a name without spaces or colons")
    if args.stdin:
        secret = sys.stdin.readline().rstrip("\n")
    else:
        secret = getpass.getpass(f"password or token for {args.name}: ")
        if getpass.getpass("again: ") != secret:
            raise CommandError("the two entries differ")
    try:
        print(f'"{args.name}:{args.role}:{hash_secret(secret)}"')
    except CredentialError as exc:
        raise CommandError(str(exc)) from None
    return 0
