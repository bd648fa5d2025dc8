"""systemd integration: the unit verifies, the appliance speaks the notify protocol (READY,
STATUS, WATCHDOG, STOPPING) on a real $NOTIFY_SOCKET, and SIGTERM stops it within seconds."""

from __future__ import annotations

import shutil
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest
from appliance_helpers import ROOT, Appliance, appliance_config, tiny_model, write_pile_folder

from edge.health.sd_notify import Notifier

pytestmark = pytest.mark.timeout(120)


@pytest.mark.skipif(shutil.which("systemd-analyze") is None, reason="systemd-analyze is not installed")
def test_unit_file_passes_systemd_analyze_verify(tmp_path):
    # The unit's ExecStart names the installed venv; point it at this interpreter so verify can
    # check the command exists, and keep every other line as shipped.
    unit = (ROOT / "systemd" / "binpick.service").read_text()
    lines = [
        f"ExecStart={sys.executable} -m edge run --config /etc/binpick/binpick.toml"
        if line.startswith("ExecStart=")
        else line
        for line in unit.splitlines()
    ]
    assert any(line.startswith("Type=notify") for line in lines)
    assert any(line.startswith("WatchdogSec=") for line in lines)
    assert "Restart=on-failure" in lines and "CapabilityBoundingSet=" in lines
    path = tmp_path / "binpick.service"
    path.write_text("\n".join(lines) + "\n")
    proc = subprocess.run(
        ["systemd-analyze", "verify", str(path)], capture_output=True, text=True, timeout=60
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "binpick.service" not in proc.stderr, proc.stderr  # no warning about our unit at all


def test_install_script_is_valid_bash():
    subprocess.run(["bash", "-n", str(ROOT / "systemd" / "install.sh")], check=True, timeout=10)


def listen(path: Path) -> socket.socket:
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    sock.bind(str(path))
    sock.settimeout(0.2)
    return sock


def test_notifier_sends_datagrams_and_is_silent_without_systemd(tmp_path, monkeypatch):
    sock = listen(tmp_path / "notify")
    monkeypatch.setenv("WATCHDOG_USEC", "4000000")
    monkeypatch.delenv("WATCHDOG_PID", raising=False)
    notifier = Notifier(str(tmp_path / "notify"))
    assert notifier.watchdog_interval_s == 2.0
    assert notifier.ready("up")
    assert sock.recv(256) == b"READY=1\nSTATUS=up"
    monkeypatch.delenv("NOTIFY_SOCKET", raising=False)
    assert Notifier().enabled is False and Notifier().ready() is False
    sock.close()


def test_appliance_notifies_ready_watchdog_and_stops_within_seconds_on_sigterm(tmp_path):
    model = tiny_model(tmp_path)
    folder = write_pile_folder(tmp_path / "frames", count=2)
    config, _, _ = appliance_config(
        tmp_path, model, mode="free-run", camera=f'source = "folder"\nfolder = "{folder}"'
    )
    sock = listen(tmp_path / "notify")
    app = Appliance(
        config, tmp_path, env={"NOTIFY_SOCKET": str(tmp_path / "notify"), "WATCHDOG_USEC": "1000000"}
    )
    messages: list[str] = []
    deadline = time.monotonic() + 60
    try:
        while time.monotonic() < deadline and not (
            any("READY=1" in m for m in messages) and sum("WATCHDOG=1" in m for m in messages) >= 2
        ):
            try:
                messages.append(sock.recv(4096).decode())
            except TimeoutError:
                assert app.proc.poll() is None, app.log()
        assert any(m.startswith("READY=1") for m in messages), messages
        assert sum("WATCHDOG=1" in m for m in messages) >= 2, messages
        assert any(m.startswith("STATUS=") for m in messages), messages
        started = time.monotonic()
        code = app.stop(timeout=10)
        stopped_in = time.monotonic() - started
    finally:
        sock.settimeout(0.5)
    assert code == 0, app.log()
    assert stopped_in < 5.0, stopped_in
    while True:
        try:
            messages.append(sock.recv(4096).decode())
        except TimeoutError:
            break
    assert any("STOPPING=1" in m for m in messages), messages
    assert "SIGTERM received" in app.log()
    sock.close()
