"""Snapshots stay bounded on disk and appear whole; the status page degrades to an error page."""

from __future__ import annotations

import json
import urllib.error
import urllib.request

import numpy as np
import pytest
from appliance_helpers import free_port

from edge.health.snapshots import SnapshotRing
from edge.health.stats import CycleStats
from edge.health.status_server import StatusServer


def test_snapshot_ring_keeps_the_newest_n_complete_snapshots(tmp_path):
    ring = SnapshotRing(tmp_path / "snaps", keep=3)
    rgb = np.zeros((16, 16, 3), np.uint8)
    prob = np.linspace(0, 1, 256, dtype=np.float32).reshape(16, 16)
    names = [ring.save(f"r{i}", rgb, prob, prob, {"i": i}, {"cfg": 1}).name for i in range(5)]
    assert ring.list() == names[-3:]
    for name in ring.list():
        files = {p.name for p in (tmp_path / "snaps" / name).iterdir()}
        assert files == {"rgb.png", "boundaries.png", "occlusions.png", "result.json", "config.json"}
    assert not [p for p in (tmp_path / "snaps").iterdir() if p.name.startswith(".")]  # no half-written ones
    assert json.loads((tmp_path / "snaps" / names[-1] / "result.json").read_text()) == {"i": 4}


def test_cycle_stats_percentiles():
    stats = CycleStats()
    for ms in range(1, 101):
        stats.record({"capture": 1.0, "inference": float(ms)}, "ok" if ms % 10 else "no_image", {})
    p = stats.percentiles()
    assert p["total"]["p50"] == pytest.approx(51.5) and p["compute"]["p95"] == pytest.approx(95.05)
    assert stats.summary()["errors"] == {"no_image": 10}


class BrokenProvider:
    def status(self):
        raise RuntimeError("boom")

    def metrics(self):
        return "binpick_up 1\n"

    def overlay_png(self):
        return b""

    def snapshot(self, reason):
        raise OSError("disk full")


def test_status_server_reports_provider_failures_as_http_errors(caplog):
    """A failure answers 500; its text goes to the log only (it may name paths or internals)."""
    server = StatusServer(BrokenProvider(), "127.0.0.1", free_port())
    server.start()
    base = f"http://127.0.0.1:{server.address[1]}"
    try:
        with pytest.raises(urllib.error.HTTPError) as err:
            urllib.request.urlopen(f"{base}/status.json", timeout=5)
        assert err.value.code == 500 and b"boom" not in err.value.read()
        failures = [r for r in caplog.records if r.levelname == "ERROR"]
        assert len(failures) == 1 and "RuntimeError: boom" in failures[0].getMessage()
        assert failures[0].exc_info is None  # one line, no traceback
        assert urllib.request.urlopen(f"{base}/metrics", timeout=5).read() == b"binpick_up 1\n"
        with pytest.raises(urllib.error.HTTPError) as err:
            urllib.request.urlopen(f"{base}/overlay.png", timeout=5)
        assert err.value.code == 404
        with pytest.raises(urllib.error.HTTPError) as err:
            urllib.request.urlopen(
                urllib.request.Request(f"{base}/snapshot", method="POST", data=b""), timeout=5
            )
        assert err.value.code == 500 and b"disk full" in err.value.read()
    finally:
        server.stop()
