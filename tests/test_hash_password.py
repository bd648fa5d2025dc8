"""`binpick hash-password` on input it cannot use: one line and exit 2, never a traceback, and
never an entry that the configuration would refuse or that breaks the TOML it is pasted into."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
import tomllib

from edge.health.auth import parse_credentials, verify_secret

ROOT = Path(__file__).resolve().parents[1]


def hash_password(*args: str, stdin: bytes | None = None) -> subprocess.CompletedProcess:
    """The subcommand in a session of its own: no controlling terminal, as under a script or cron."""
    return subprocess.run(
        [sys.executable, "-m", "edge", "hash-password", *args],
        input=stdin if stdin is not None else b"",
        capture_output=True,
        cwd=ROOT,
        timeout=60,
        start_new_session=True,
    )


def one_line(proc: subprocess.CompletedProcess, needle: str) -> None:
    stderr = proc.stderr.decode()
    assert proc.returncode == 2, stderr
    lines = stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("binpick hash-password: error:"), stderr
    assert needle in lines[0], lines[0]


def test_no_terminal_and_no_stdin_flag():
    one_line(hash_password("dave"), "no terminal to type the password on: pipe it in with --stdin")


def test_stdin_that_is_not_utf8():
    one_line(hash_password("dave", "--stdin", stdin=b"pa\xffss\n"), "--stdin: the input is not UTF-8 text")


@pytest.mark.parametrize(
    ("name", "needle"),
    [
        ('da"ve', 'expected a name without " or \\'),
        ("da\\ve", 'expected a name without " or \\'),
        ("da\tve", "expected a printable name without spaces or colons"),  # parse_credentials refuses it
    ],
)
def test_names_the_configuration_could_not_take(name, needle):
    one_line(hash_password(name, "--stdin", stdin=b"secret\n"), needle)


def test_a_windows_line_end_is_not_part_of_the_password():
    proc = hash_password("dave", "--stdin", stdin=b"pw\r\n")
    assert proc.returncode == 0, proc.stderr.decode()
    entry = tomllib.loads(f"users = [{proc.stdout.decode().strip()}]")["users"][0]  # pasted as printed
    (credential,) = parse_credentials([entry])
    assert verify_secret("pw", credential.hash) and not verify_secret("pw\r", credential.hash)
