"""Shared helpers of the appliance tests: free ports, socat pty pairs, mbpoll, bounded waits."""

from __future__ import annotations

import contextlib
import re
import shutil
import socket
import subprocess
import time
from pathlib import Path

import pytest


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_until(predicate, timeout: float, interval: float = 0.02, what: str = "condition"):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(interval)
    raise AssertionError(f"timed out after {timeout} s waiting for {what}")


def wait_port(port: int, timeout: float = 10.0) -> None:
    def is_open():
        with socket.socket() as s:
            s.settimeout(0.2)
            return s.connect_ex(("127.0.0.1", port)) == 0

    wait_until(is_open, timeout, what=f"port {port}")


def need(tool: str) -> str:
    path = shutil.which(tool)
    if path is None:
        pytest.skip(f"{tool} is not installed (scripts/bootstrap.sh installs it)")
    return path


@contextlib.contextmanager
def socat_pair(folder: Path):
    """Two linked pseudo-terminals (a serial null-modem cable), as `folder/a` and `folder/b`."""
    need("socat")
    a, b = folder / "a", folder / "b"
    proc = subprocess.Popen(
        ["socat", f"pty,raw,echo=0,link={a}", f"pty,raw,echo=0,link={b}"],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        wait_until(lambda: a.exists() and b.exists(), 5.0, what="socat ptys")
        yield str(a), str(b)
    finally:
        proc.terminate()
        proc.wait(timeout=5)


MBPOLL_VALUE = re.compile(r"^\[(\d+)\]:\s+(-?[\d.]+(?:e[+-]?\d+)?)", re.MULTILINE)


def mbpoll(*args: str, timeout: float = 10.0, zero_based: bool = True) -> dict[int, float]:
    """Run Debian's mbpoll once (-1), by default with 0-based addresses (-0); returns {address: value}."""
    need("mbpoll")
    base = ["-0"] if zero_based else []
    proc = subprocess.run(["mbpoll", *base, "-1", *args], capture_output=True, text=True, timeout=timeout)
    if proc.returncode != 0:
        raise AssertionError(
            f"mbpoll {' '.join(args)} failed ({proc.returncode}): {proc.stdout}{proc.stderr}"
        )
    return {int(a): float(v) for a, v in MBPOLL_VALUE.findall(proc.stdout)}
