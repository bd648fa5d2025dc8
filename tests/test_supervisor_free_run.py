"""The free-run loop's cadence (`[appliance] cycle_period_s`): each cycle's outcome is finished
when the cycle ends, and the wait before the next one is progress, not a hang; a hang is said."""

from __future__ import annotations

import contextlib
import logging
import socket
import threading
import time

import pytest
from appliance_helpers import (
    ROOT,
    block_reads,
    tiny_model,
    unblock_reads,
    wait_until,
    write_pile_folder,
)

from edge.config import Config
from edge.supervisor import Supervisor

pytestmark = pytest.mark.timeout(120)


def free_run_config(tmp_path, period_s: float, frames: int) -> Config:
    """A free-run appliance on a replay folder of `frames` images, no servers."""
    c = Config()
    c.appliance.mode, c.appliance.cycle_period_s = "free-run", period_s
    c.camera.source, c.camera.folder = "folder", str(write_pile_folder(tmp_path / "frames", count=frames))
    c.inference.model, c.inference.threads = str(tiny_model(tmp_path)), 1
    c.ranking.alpha, c.ranking.min_area, c.ranking.max_area = 0.999, 16, 1e9  # whole image = one candidate
    c.plc.registers = str(ROOT / "firmware_config" / "registers.toml")
    c.plc.tcp_enabled, c.health.http_enabled = False, False
    c.health.snapshot_dir = str(tmp_path / "snapshots")
    return c


def test_a_slow_cadence_keeps_the_heartbeat_alive_between_cycles(tmp_path):
    """A period longer than the stall limit (allowed up to an hour) had frozen the heartbeat and
    the watchdog's pings in the wait between cycles, and printed each cycle's line one period late."""
    sup = Supervisor(free_run_config(tmp_path, 4.0, frames=2))
    sup.stall_limit_s = 0.5  # the real floor is 15 s: the same rule, faster
    sup.start()
    try:
        wait_until(lambda: sup.stats.cycles >= 1, 60, what="the first cycle")
        finished = time.monotonic()
        alive = []
        while time.monotonic() - finished < 2.0:  # inside the 4 s wait before the second cycle
            alive.append(sup.cycle_alive())
            time.sleep(0.1)
        assert all(alive), f"{alive.count(False)} of {len(alive)} samples stalled"
        assert sup.stats.cycles == 1
    finally:
        sup.stop()


def test_a_stuck_cycle_is_said_once_in_the_log_and_in_status_naming_its_stage(tmp_path, monkeypatch, caplog):
    """A capture that hangs (the image file turned into a FIFO nobody writes, as the reviewer did)
    stopped the watchdog's pings as it should, but said nothing: no log line, and STATUS= went on
    with `cycles=1 ... errors=0`. Now one ERROR line names the stage and how long, STATUS= says it
    at once, and the cycle moving again is logged too. Real notify socket, real blocking read."""
    notify = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    notify.bind(str(tmp_path / "notify"))
    notify.settimeout(0.2)
    monkeypatch.setenv("NOTIFY_SOCKET", str(tmp_path / "notify"))
    monkeypatch.setenv("WATCHDOG_USEC", "1000000")  # a ping every 0.5 s while the cycle moves
    monkeypatch.delenv("WATCHDOG_PID", raising=False)
    caplog.set_level(logging.INFO, logger="binpick")
    sup = Supervisor(free_run_config(tmp_path, 0.05, frames=1))
    sup.stall_limit_s = 1.5  # the real floor is 15 s: the same rule, faster
    frame = tmp_path / "frames" / "frame_000.png"
    messages: list[str] = []

    def receive(seconds: float) -> list[str]:
        got, deadline = [], time.monotonic() + seconds
        while time.monotonic() < deadline:
            with contextlib.suppress(TimeoutError):
                got.append(notify.recv(4096).decode())
        messages.extend(got)
        return got

    def stuck_lines() -> list[str]:
        return [
            r.getMessage() for r in caplog.records if r.levelno == logging.ERROR and "stuck" in r.getMessage()
        ]

    sup.start()
    runner = threading.Thread(target=sup.run, name="run", daemon=True)
    runner.start()
    data = None
    try:
        wait_until(lambda: sup.stats.cycles >= 1, 60, what="the first cycle")
        data = block_reads(frame)
        wait_until(stuck_lines, 20, what="the ERROR line of a stuck cycle")
        receive(2.0)  # the STATUS= sent with it, and nothing feeding the watchdog since
        lines = stuck_lines()
        assert len(lines) == 1, lines  # once, not every second
        assert lines[0].startswith("cycle stuck in capture for "), lines
        assert "heartbeat is frozen" in lines[0] and "watchdog is no longer fed" in lines[0], lines
        said = [i for i, m in enumerate(messages) if m.startswith("STATUS=STUCK in capture for ")]
        assert said, messages
        assert not any("WATCHDOG=1" in m for m in messages[said[0] :]), messages
        unblock_reads(frame, data)
        data = None
        moves = "cycle moves again (it was stuck in capture)"
        wait_until(
            lambda: any(moves in r.getMessage() for r in caplog.records), 20, what="the cycle moving again"
        )
        got = receive(1.5)
        assert any("WATCHDOG=1" in m for m in got), got
        assert len(stuck_lines()) == 1
    finally:
        if data is not None:
            unblock_reads(frame, data)
        sup.stop()
        runner.join(5)
        notify.close()
