"""A fixed sequence of appliance results and PLC writes, and the register bank after each step.

`dump()` runs it against a real Modbus TCP server on 127.0.0.1 (PLC writes and reads through
pymodbus' client), so the words it returns are what a PLC reads. The committed
`tests/data/register_bank_golden.json` was produced by the code from before the register map's
word order and enumerations became data; `test_plc_wire_contract.py` replays the sequence and
compares, so any change of an address, a word order or a code shows up as a failed test.

Regenerate (only for a deliberate protocol change, with protocol_version bumped):
    PYTHONPATH=$PWD python tests/register_bank_sequence.py > tests/data/register_bank_golden.json
"""

from __future__ import annotations

import json
import socket
import sys
import time

from pymodbus.client import ModbusTcpClient

from edge.config import PlcSection
from edge.plc.bank import PublishedResult, RegisterBank
from edge.plc.register_map import RegisterMap
from edge.plc.service import PlcService

RESULTS = [
    PublishedResult(request_id=11, error=0, x=412.5, y=-87.25, z=103.0, angle=-33.5, score=1.625,
                    candidate_count=17, extent_major=120.0, extent_minor=45.5, latency_ms=88.0),
    PublishedResult(request_id=12, error=2),
    PublishedResult(request_id=13, error=0, x=0.1, y=-1e-7, z=3.4e38, angle=179.99, score=0.333333,
                    candidate_count=70000, extent_major=1e-30, extent_minor=-0.0, latency_ms=12.345678),
    PublishedResult(request_id=14, error=3, candidate_count=4),
    PublishedResult(request_id=0, error=0, x=-1234.5678, y=9876.54321, z=-0.5, angle=90.0, score=2.0,
                    candidate_count=1, extent_major=33.3, extent_minor=11.1, latency_ms=1000.0),
]  # fmt: skip


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def dump(register_map: RegisterMap | None = None) -> list[dict]:
    """[{step, words}] for the fixed sequence; words = every register as a PLC reads it."""
    m = register_map or RegisterMap.load()
    port = _free_port()
    # heartbeat: one tick at start, then none (a 1 h period); no result expiry
    cfg = PlcSection(tcp_port=port, heartbeat_period_s=3600.0, result_ttl_s=0.0)
    bank = RegisterBank(m, triggered=True)
    service = PlcService(bank, cfg)
    service.start()
    client = ModbusTcpClient("127.0.0.1", port=port)
    steps: list[dict] = []
    try:
        deadline = time.monotonic() + 10
        while not client.connect():
            if time.monotonic() > deadline:
                raise RuntimeError(f"no Modbus server on port {port}")
            time.sleep(0.05)

        def snap(step: str) -> None:
            reply = client.read_holding_registers(0, count=m.size, device_id=1)
            assert not reply.isError(), reply
            steps.append({"step": step, "words": list(reply.registers)})

        def plc(step: str, name: str, *values: int) -> None:
            address = m[name].address
            if len(values) == 1:
                reply = client.write_register(address, values[0], device_id=1)
            else:
                reply = client.write_registers(address, list(values), device_id=1)
            exception = reply.exception_code if reply.isError() else 0
            steps.append({"step": step, "exception": exception, "plc_mode": bank.mode})
            snap(step)

        snap("started")
        bank.mark_initialised(model_id=321)
        snap("initialised")
        for flag in ("camera_ok", "pixel_mode"):
            bank.set_flag(flag, True)
        snap("flags")
        for i, result in enumerate(RESULTS):
            if result.request_id:
                plc(f"trigger {result.request_id}", "trigger_id", result.request_id)
                bank.wait_trigger(1.0)
                bank.accept_trigger(result.request_id)
            else:
                bank.begin_cycle()
            snap(f"accepted {i}")
            sequence = bank.publish(result)
            snap(f"published {i}")
            plc(f"ack {i}", "result_ack", sequence)
            plc(f"outcome {i}", "pick_outcome", 1 + i % 2, sequence)
        steps.append({"step": "outcomes", "taken": bank.take_pick_outcomes()})
        plc("mode idle", "mode", 0)
        plc("mode calibration", "mode", 2)
        plc("mode 3 (bad)", "mode", 3)
        plc("mode run", "mode", 1)
        plc("pick_outcome 3 (bad)", "pick_outcome", 3, 99)
        plc("write read-only status", "status", 0xFFFF)
        plc("write read-only x", "x", 1, 2)
        bank.set_error(m.error_code("camera_lost"))
        bank.set_flag("camera_ok", False)
        snap("camera lost")
        bank.set_error(0)
        bank.set_flag("camera_ok", True)
        snap("camera back")
    finally:
        client.close()
        service.stop()
    return steps


if __name__ == "__main__":
    json.dump(dump(), sys.stdout, indent=None, separators=(",", ":"))
    sys.stdout.write("\n")
