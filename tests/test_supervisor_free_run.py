"""The free-run loop's cadence (`[appliance] cycle_period_s`): each cycle's outcome is finished
when the cycle ends, and the wait before the next one is progress, not a hang."""

from __future__ import annotations

import time

import pytest
from appliance_helpers import ROOT, tiny_model, wait_until, write_pile_folder

from edge.config import Config
from edge.supervisor import Supervisor

pytestmark = pytest.mark.timeout(120)


def test_a_slow_cadence_keeps_the_heartbeat_alive_between_cycles(tmp_path):
    """A period longer than the stall limit (allowed up to an hour) had frozen the heartbeat and
    the watchdog's pings in the wait between cycles, and printed each cycle's line one period late."""
    c = Config()
    c.appliance.mode, c.appliance.cycle_period_s = "free-run", 4.0
    c.camera.source, c.camera.folder = "folder", str(write_pile_folder(tmp_path / "frames", count=2))
    c.inference.model, c.inference.threads = str(tiny_model(tmp_path)), 1
    c.ranking.alpha, c.ranking.min_area, c.ranking.max_area = 0.999, 16, 1e9  # whole image = one candidate
    c.plc.registers = str(ROOT / "firmware_config" / "registers.toml")
    c.plc.tcp_enabled, c.health.http_enabled = False, False
    c.health.snapshot_dir = str(tmp_path / "snapshots")
    sup = Supervisor(c)
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
