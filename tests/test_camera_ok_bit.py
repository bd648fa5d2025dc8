"""The `camera_ok` status bit follows the camera source's own state, at start and between
cycles: a streaming camera's open only starts its thread, so an unplugged camera must not read
as ok before any cycle has tried it (a PLC waiting for camera_ok would trigger into it)."""

from __future__ import annotations

import pytest
from appliance_helpers import ROOT, tiny_model, wait_until, write_pile_folder

from edge.camera.streaming import StreamingSource
from edge.config import Config
from edge.supervisor import Supervisor

pytestmark = pytest.mark.timeout(120)


def config(tmp_path) -> Config:
    c = Config()
    c.camera.source, c.camera.folder = "folder", str(write_pile_folder(tmp_path / "frames", count=1))
    c.inference.model, c.inference.threads = str(tiny_model(tmp_path)), 1
    c.plc.registers = str(ROOT / "firmware_config" / "registers.toml")
    c.health.snapshot_dir = str(tmp_path / "snapshots")
    return c


def test_an_unplugged_streaming_camera_is_not_ok_and_a_replay_folder_is(tmp_path):
    def connect():
        raise OSError("no camera at 192.168.0.50")

    absent = StreamingSource(
        "genicam-absent", connect, timeout_s=2.0, backoff_initial_s=0.2, backoff_max_s=0.5
    )
    sup = Supervisor(config(tmp_path), camera=absent)
    try:
        sup.open_parts()
        wait_until(lambda: absent.status()["state"] in ("reopening", "down"), 10, what="the failed connect")
        sup.refresh_camera_ok()
        assert not sup.bank.flag("camera_ok")
    finally:
        absent.close()
    folder = Supervisor(config(tmp_path))
    folder.open_parts()
    assert folder.bank.flag("camera_ok")
    folder.camera.close()
