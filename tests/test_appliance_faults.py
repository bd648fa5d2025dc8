"""Faults the appliance must ride through: the camera stream dies and comes back (ffmpeg MJPEG on
127.0.0.1); a PLC reading during the outage sees `camera_lost`, then fresh grasps again."""

from __future__ import annotations

import asyncio

import pytest
from appliance_helpers import (
    Appliance,
    MjpegCamera,
    appliance_config,
    free_port,
    tiny_model,
    wait_port,
    wait_until,
)
from pymodbus.client import AsyncModbusTcpClient

from edge.plc.register_map import RegisterMap

pytestmark = pytest.mark.timeout(150)
MAP = RegisterMap.load()
A = {name: reg.address for name, reg in MAP.by_name.items()}


def read_words(port: int) -> list[int]:
    async def read():
        client = AsyncModbusTcpClient("127.0.0.1", port=port, timeout=3)
        await client.connect()
        try:
            return (await client.read_holding_registers(0, count=MAP.size, device_id=1)).registers
        finally:
            client.close()

    return asyncio.run(read())


def test_camera_killed_and_restarted_is_reported_as_camera_lost_then_recovers(tmp_path):
    model = tiny_model(tmp_path)
    stream = MjpegCamera(free_port(), size="96x96", rate=10).start()
    config, port, _ = appliance_config(
        tmp_path, model, mode="free-run", camera=f'source = "opencv"\nuri = "{stream.url}"'
    )
    app = Appliance(config, tmp_path)
    try:
        wait_port(port, 60)

        def grasping():
            w = read_words(port)
            return w if w[A["result_error"]] == 0 and w[A["status"]] & MAP.bit_mask("result_valid") else None

        first = wait_until(grasping, 40, interval=0.1, what="a first grasp from the stream")
        stream.kill()
        lost = wait_until(
            lambda: (w := read_words(port))[A["error_code"]] == MAP.error_code("camera_lost") and w,
            20, interval=0.1, what="camera_lost in the error code",
        )  # fmt: skip
        assert not lost[A["status"]] & MAP.bit_mask("camera_ok")
        assert not lost[A["status"]] & MAP.bit_mask("result_valid")  # no stale grasp shown as fresh
        assert lost[A["heartbeat"]] != first[A["heartbeat"]]  # the PLC side lives on
        stream.start()
        again = wait_until(grasping, 40, interval=0.1, what="grasps after the stream came back")
        assert again[A["sequence_id"]] != lost[A["sequence_id"]]
        assert again[A["status"]] & MAP.bit_mask("camera_ok")
        assert app.proc.poll() is None
    finally:
        code = app.stop()
        stream.kill()
    assert code == 0, app.log()
    assert "camera_lost" in app.log()
