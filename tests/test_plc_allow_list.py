"""The Modbus TCP allow-list against real clients from distinct loopback source addresses.

The server binds 127.0.0.1; clients bind their source to 127.0.0.1 (allowed), 127.0.0.2
(read-only) or 127.0.0.3 (outside every list) — Linux routes all of 127/8 to loopback.
"""

from __future__ import annotations

import asyncio
import logging

import pytest
from appliance_helpers import running_plc
from pymodbus.client import AsyncModbusTcpClient

from edge.plc.access import ClientGate, parse_networks
from edge.plc.register_map import RegisterMap

pytestmark = pytest.mark.timeout(60)
MAP = RegisterMap.load()


@pytest.fixture
def gated_plc():
    with running_plc(allowed_clients=["127.0.0.1/32"], readonly_clients=["127.0.0.2"]) as served:
        yield served


async def _session(port: int, source: str, write: dict[str, int] | None = None) -> dict:
    """Connect from `source`, read `mode`, optionally write registers; what happened."""
    client = AsyncModbusTcpClient("127.0.0.1", port=port, source_address=(source, 0), timeout=1, retries=0)
    out: dict = {"connected": await client.connect()}
    try:
        if out["connected"]:
            rr = await client.read_holding_registers(MAP["mode"].address, count=1, device_id=1)
            out["read"] = None if rr.isError() else rr.registers[0]
            for name, value in (write or {}).items():
                wr = await client.write_register(MAP[name].address, value, device_id=1)
                out[name] = "error" if wr.isError() else "ok"
    except Exception as exc:  # a refused connection ends in a closed socket: what a PLC would see
        out["failed"] = type(exc).__name__
    finally:
        client.close()
    return out


def test_clients_outside_the_list_change_no_register(gated_plc, caplog):
    bank, port, service = gated_plc
    before = bank.snapshot()
    caplog.set_level(logging.WARNING, logger="edge.plc.access")

    outsider = asyncio.run(_session(port, "127.0.0.3", {"mode": 0, "trigger_id": 9}))
    assert (
        outsider.get("read") is None and outsider.get("mode") != "ok" and outsider.get("trigger_id") != "ok"
    )
    again = asyncio.run(_session(port, "127.0.0.3", {"mode": 0}))
    assert again.get("mode") != "ok"

    reader = asyncio.run(_session(port, "127.0.0.2", {"mode": 0, "trigger_id": 9}))
    assert reader["read"] == 1 and reader["mode"] == "error" and reader["trigger_id"] == "error"

    after = bank.snapshot()
    assert after["mode"] == before["mode"] == 1 and after["trigger_id"] == 0 and after["trigger_ack"] == 0
    assert bank.mode == "run" and bank.wait_trigger(0.05) is None

    state = service.gate.state()
    # the client library reconnects after each close: several refused connections per session
    assert state["refused_connections"] >= 2 and state["refused_requests"] == 2
    refusals = [r for r in caplog.records if "refused" in r.getMessage()]
    # rate-limited: one line per host and interval, not one per connection or request
    assert len([r for r in refusals if "127.0.0.3" in r.getMessage()]) == 1
    assert len([r for r in refusals if "127.0.0.2" in r.getMessage()]) == 1

    owner = asyncio.run(_session(port, "127.0.0.1", {"mode": 0}))
    assert owner["read"] == 1 and owner["mode"] == "ok" and bank.snapshot()["mode"] == 0


def test_connected_clients_are_listed_with_their_access(gated_plc):
    _, port, service = gated_plc

    async def hold():
        client = AsyncModbusTcpClient("127.0.0.1", port=port, source_address=("127.0.0.2", 0), timeout=1)
        await client.connect()
        await client.read_holding_registers(0, count=1, device_id=1)
        clients = service.gate.state()["clients"]
        client.close()
        return clients

    clients = asyncio.run(hold())
    assert [(c["peer"].split(":")[0], c["access"], c["requests"]) for c in clients] == [
        ("127.0.0.2", "read-only", 1)
    ]


def test_open_gate_and_address_parsing():
    gate = ClientGate([], [])
    assert not gate.enabled and gate.access("203.0.113.9") == "read-write"
    gate = ClientGate(["10.0.0.0/24", "fd00::1"], ["192.168.1.7"])
    assert gate.access("10.0.0.77") == "read-write" and gate.access("::ffff:10.0.0.5") == "read-write"
    assert gate.access("fd00::1") == "read-write" and gate.access("192.168.1.7") == "read-only"
    assert gate.access("10.0.1.1") == "refused" and gate.access("not-an-ip") == "refused"
    with pytest.raises(ValueError, match="'10.0.0.300'"):
        parse_networks(["10.0.0.300"])


def test_a_host_reconnecting_for_every_read_is_logged_once_an_interval(caplog):
    """Some PLC drivers open a connection per read: 10 reads a second were 20 INFO lines a second
    on the box's flash. A host's first connection in LOG_INTERVAL_S and its end stay at INFO (a
    PLC dropping its long-lived connection is news); its reconnections go to DEBUG."""
    clock = [1000.0]
    gate = ClientGate([], [], clock=lambda: clock[0])
    with caplog.at_level(logging.DEBUG, logger="edge.plc.access"):
        for key in range(20):
            gate.connected(key, "10.0.0.5", 40000 + key)
            gate.disconnected(key)
            clock[0] += 0.1
        gate.connected(99, "10.0.0.6", 50000)  # another host: its own interval
        clock[0] += 61.0
        gate.connected(100, "10.0.0.5", 40100)  # the interval is over: INFO again
        gate.disconnected(100)
    info = [(r.getMessage().split(" (")[0]) for r in caplog.records if r.levelno == logging.INFO]
    assert info == [
        "Modbus TCP client 10.0.0.5:40000 connected",
        "Modbus TCP client 10.0.0.5:40000 disconnected",
        "Modbus TCP client 10.0.0.6:50000 connected",
        "Modbus TCP client 10.0.0.5:40100 connected",
        "Modbus TCP client 10.0.0.5:40100 disconnected",
    ]
    debug = [r for r in caplog.records if r.levelno == logging.DEBUG]
    assert len(debug) == 38  # the other 19 connections and their ends
    assert [c["peer"] for c in gate.state()["clients"]] == ["10.0.0.6:50000"]
