"""Failure snapshots through the supervisor's own cycle (`Supervisor.cycle_once`) on real files:
a cycle that got no image saves no picture (the last good cycle's image is not what it saw), a
streak of one error does not fill the ring, and their log lines are rate-limited."""

from __future__ import annotations

import json
import logging

import pytest
from appliance_helpers import ROOT, free_port, tiny_model, write_pile_folder

from edge.camera.opencv_source import opencv_source
from edge.config import Config
from edge.health.snapshots import FailureStreaks
from edge.supervisor import Supervisor

pytestmark = pytest.mark.timeout(120)


@pytest.fixture(scope="module")
def model(tmp_path_factory):
    return tiny_model(tmp_path_factory.mktemp("model"))


def supervisor(model, frames, snapshot_dir) -> Supervisor:
    c = Config()
    c.camera.source, c.camera.folder, c.camera.timeout_s = "folder", str(frames), 0.5
    c.inference.model, c.inference.threads = str(model), 1
    c.ranking.alpha, c.ranking.min_area, c.ranking.max_area = 0.999, 16, 1e9  # whole image = one candidate
    c.plc.registers = str(ROOT / "firmware_config" / "registers.toml")
    c.health.snapshot_dir, c.health.snapshot_min_interval_s = str(snapshot_dir), 0.0
    sup = Supervisor(c)
    sup.open_parts()
    return sup


def test_a_cycle_without_an_image_snapshots_no_picture_and_names_the_last_one(model, tmp_path, caplog):
    caplog.set_level(logging.DEBUG, logger="binpick")
    frames = write_pile_folder(tmp_path / "frames", count=2)
    sup = supervisor(model, frames, tmp_path / "snaps")
    try:
        good = sup.cycle_once()
        assert good.error == "ok" and "snapshot" not in good.detail
        for image in frames.iterdir():  # the replayed files disappear
            image.unlink()
        lost = sup.cycle_once()
        assert lost.error == "no_image" and "is gone" in lost.message
        folder = tmp_path / "snaps" / lost.detail["snapshot"]
        assert sorted(p.name for p in folder.iterdir()) == ["config.json", "result.json"]
        result = json.loads((folder / "result.json").read_text())
        assert result["error"] == "no_image" and result["sequence"] == lost.sequence
        assert result["image"] is None and result["time"].endswith("Z")
        assert result["last_image_cycle"]["sequence"] == good.sequence
        assert result["last_image_cycle"]["error"] == "ok"
        # the same error again: the streak has its snapshot, the ring keeps the earlier evidence
        again = [sup.cycle_once() for _ in range(4)]
        assert [o.error for o in again] == ["no_image"] * 4
        assert not [o for o in again if "snapshot" in o.detail] and len(sup.snapshots.list()) == 1
        # another error is another streak: a camera that is lost (nothing listens on its port)
        sup.camera.close()
        sup.camera = opencv_source(f"http://127.0.0.1:{free_port()}/none.mjpg", 0.5, 0.05, 0.1)
        sup.camera.open()
        camera_lost = sup.cycle_once()
        assert camera_lost.error == "camera_lost"
        folder = tmp_path / "snaps" / camera_lost.detail["snapshot"]
        assert sorted(p.name for p in folder.iterdir()) == ["config.json", "result.json"]
        result = json.loads((folder / "result.json").read_text())
        assert result["error"] == "camera_lost" and result["last_image_cycle"]["sequence"] == good.sequence
        # one INFO line per snapshot kind per minute; the PLC and the page see every cycle
        written = [r for r in caplog.records if "failure snapshot" in r.getMessage()]
        assert [r.levelname for r in written] == ["INFO", "INFO"], [r.getMessage() for r in written]
    finally:
        sup.camera.close()
        sup.predictor.backend.close()


def test_an_image_failure_keeps_its_own_image_and_a_write_error_is_logged_once_a_minute(
    model, tmp_path, caplog
):
    """A frame that cannot be decoded fails with no_image between good cycles: each is a new streak,
    so each tries a snapshot; the snapshot folder cannot be created (a file is in the way) and the
    ERROR line is written once, the next at DEBUG (before: one ERROR line per attempt)."""
    caplog.set_level(logging.DEBUG, logger="binpick")
    frames = write_pile_folder(tmp_path / "frames", count=2, corrupt=(1,))
    (tmp_path / "blocker").write_text("a file where the snapshot folder should be")
    sup = supervisor(model, frames, tmp_path / "blocker" / "snaps")
    try:
        outcomes = [sup.cycle_once() for _ in range(4)]
        assert [o.error for o in outcomes] == ["ok", "no_image", "ok", "no_image"]
        lines = [r for r in caplog.records if "failure snapshot not written" in r.getMessage()]
        assert [r.levelname for r in lines] == ["ERROR", "DEBUG"], [r.getMessage() for r in lines]
        assert not [o for o in outcomes if "snapshot" in o.detail]
    finally:
        sup.camera.close()
        sup.predictor.backend.close()


def test_a_failure_streak_gets_a_snapshot_at_its_start_then_after_1_2_4_minutes():
    streaks = FailureStreaks(min_interval_s=5.0)
    taken = [t for t in range(0, 600, 5) if streaks.due("camera_lost", float(t))]
    assert taken == [0, 60, 120, 240, 480]
    streaks.ok()  # a good cycle ends the streak; the next failure starts one (after min_interval_s)
    assert not streaks.due("camera_lost", 483.0) and streaks.due("camera_lost", 486.0)
    assert not streaks.due("camera_lost", 500.0) and streaks.due("no_image", 500.0)
