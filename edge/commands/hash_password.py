"""`binpick hash-password`: the `NAME:ROLE:HASH` entry for `[health] users` or `tokens`.

The password is read without echo (or from stdin with --stdin, for scripts); only its salted
scrypt hash goes into the configuration. There is no default password anywhere.
"""

from __future__ import annotations

import argparse
import getpass
import sys

from binpick_core.errors import CommandError
from edge.health.auth import ROLES, CredentialError, hash_secret, valid_name


def configure(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("name", help="user name (basic auth) or token name (bearer token)")
    parser.add_argument(
        "--role", choices=ROLES, default="viewer", help="viewer: sees the page; operator: also acts"
    )
    parser.add_argument("--stdin", action="store_true", help="read the password or token from stdin")


def name_problem(name: str) -> str:
    """Why `name` cannot be a user or token name ("" when it can): the configuration's rule
    (edge.health.auth.parse_credentials: printable, no space, no colon), and no `"` or `\\`, which
    would end or escape the TOML string the entry is printed in."""
    if not valid_name(name):
        return "expected a printable name without spaces or colons"
    if '"' in name or "\\" in name:
        return 'expected a name without " or \\ (the entry is pasted inside a TOML string)'
    return ""


def _has_terminal() -> bool:
    """Whether getpass can ask someone: it reads the controlling terminal, else stdin."""
    try:
        with open("/dev/tty", "rb"):
            return True
    except OSError:
        return sys.stdin is not None and sys.stdin.isatty()


def _read_secret(name: str, from_stdin: bool) -> str:
    """The password or token: one line of stdin (its line end, \\n or \\r\\n, removed) or typed
    twice without echo."""
    if from_stdin:
        try:  # bytes, decoded here: a stray byte is an error, not a password hashed with a surrogate
            line = sys.stdin.buffer.readline().decode("utf-8")
        except UnicodeDecodeError as exc:
            where = f"{exc.reason} at byte {exc.start}"
            raise CommandError(f"--stdin: the input is not UTF-8 text ({where})") from None
        return line.removesuffix("\n").removesuffix("\r")
    if not _has_terminal():  # getpass would warn about echo, prompt, then meet the end of stdin
        raise CommandError("no terminal to type the password on: pipe it in with --stdin")
    try:
        secret = getpass.getpass(f"password or token for {name}: ")
        again = getpass.getpass("again: ")
    except EOFError:  # Ctrl-D at the prompt
        raise CommandError("no password given: the input ended") from None
    except UnicodeError as exc:
        raise CommandError(f"the password typed is not valid text ({exc})") from None
    if again != secret:
        raise CommandError("the two entries differ")
    return secret


def main(args: argparse.Namespace) -> int:
    problem = name_problem(args.name)
    if problem:
        raise CommandError(f"name {args.name!r}: {problem}")
    secret = _read_secret(args.name, args.stdin)
    try:
        print(f'"{args.name}:{args.role}:{hash_secret(secret)}"')
    except CredentialError as exc:
        raise CommandError(str(exc)) from None
    except UnicodeError:  # a lone surrogate from the terminal (getpass decodes with surrogateescape)
        raise CommandError("the password is not valid UTF-8 text") from None
    return 0
