"""Modbus TCP against misbehaving peers: connection caps, timeouts, bad frames, pipelining.

Raw sockets (a PLC driver's bytes, exactly) and pymodbus' client against the real server on
127.0.0.1; a second host is a client bound to 127.0.0.2 (Linux routes all of 127/8 to loopback).
"""

from __future__ import annotations

import asyncio
import logging
import socket
import struct
import time

import pytest
from appliance_helpers import running_plc
from pymodbus.client import AsyncModbusTcpClient

from edge.plc import connection
from edge.plc.register_map import RegisterMap

pytestmark = pytest.mark.timeout(60)
MAP = RegisterMap.load()


def frame(tid: int, pdu: bytes, unit: int = 1, protocol: int = 0, length: int | None = None) -> bytes:
    return struct.pack(">HHHB", tid, protocol, len(pdu) + 1 if length is None else length, unit) + pdu


def read(tid: int, address: int, count: int = 1) -> bytes:
    return frame(tid, struct.pack(">BHH", 3, address, count))


def replies(data: bytes) -> list[tuple[int, bytes]]:
    """(transaction id, PDU) of each reply in a byte stream."""
    out, i = [], 0
    while i + 6 <= len(data):
        tid, _, length = struct.unpack(">HHH", data[i : i + 6])
        if i + 6 + length > len(data):  # the rest of this reply is still on its way
            break
        out.append((tid, data[i + 7 : i + 6 + length]))
        i += 6 + length
    return out


def receive(s: socket.socket, wait: float = 1.0, frames: int | None = None) -> bytes:
    """What arrives within `wait` s, or until `frames` whole replies are in (a busy CI machine
    may take a while to answer: a short fixed wait made the tests flaky); ends with b"<EOF>"
    when the server closed the connection."""
    out, deadline = b"", time.monotonic() + wait
    s.settimeout(0.1)
    while time.monotonic() < deadline and (frames is None or len(replies(out)) < frames):
        try:
            data = s.recv(4096)
        except TimeoutError:
            continue
        except ConnectionResetError:
            return out + b"<EOF>"
        if not data:
            return out + b"<EOF>"
        out += data
    return out


def connect(port: int, source: str = "127.0.0.1") -> socket.socket:
    return socket.create_connection(("127.0.0.1", port), timeout=2, source_address=(source, 0))


def serving(idle_timeout_s: float = 30.0):
    return running_plc(tcp_idle_timeout_s=idle_timeout_s)


@pytest.fixture
def plc():
    with serving() as served:
        yield served


def test_connections_beyond_the_caps_are_closed_at_once_and_another_host_is_still_served(plc, caplog):
    bank, port, service = plc
    caplog.set_level(logging.INFO, logger="edge.plc")
    held = [connect(port) for _ in range(service.gate.max_per_host)]
    try:
        surplus = [connect(port) for _ in range(20)]
        assert all(receive(s, 10).endswith(b"<EOF>") for s in surplus)  # closed, not left open
        for s in surplus:
            s.close()
        with connect(port, "127.0.0.2") as plc_socket:  # the PLC, on another host
            plc_socket.sendall(read(1, MAP["mode"].address))
            assert replies(receive(plc_socket, 10, frames=1)) == [(1, bytes([3, 2, 0, 1]))]
        for s in held:  # the first four are served
            s.sendall(read(2, MAP["mode"].address))
            assert replies(receive(s, 10, frames=1)) == [(2, bytes([3, 2, 0, 1]))]
    finally:
        for s in held:
            s.close()
    refusals = [r for r in caplog.records if "refused" in r.getMessage()]
    assert len(refusals) == 1 and "127.0.0.1:" in refusals[0].getMessage()  # rate-limited, naming the host
    assert "limit per host" in refusals[0].getMessage()
    assert service.gate.refused_at_limit == 20


def test_the_overall_cap_holds_across_hosts(plc):
    _, port, service = plc
    service.gate.max_connections = 3
    held = [connect(port, f"127.0.0.{k}") for k in (1, 2, 3)]
    try:
        with connect(port, "127.0.0.4") as fourth:
            assert receive(fourth, 10).endswith(b"<EOF>")
    finally:
        for s in held:
            s.close()


def test_a_silent_connection_is_closed_after_the_idle_timeout():
    with serving(idle_timeout_s=1.5) as (_, port, service), connect(port) as idle, connect(port) as polling:
        t0 = time.monotonic()
        while time.monotonic() - t0 < 2.5:  # a PLC polling every 100 ms stays connected
            polling.sendall(read(1, 0))
            assert replies(receive(polling, 10, frames=1))
        assert receive(idle, 10).endswith(b"<EOF>")  # idle for 1.5 s (the fixture's timeout)
        polling.sendall(read(2, 0))
        assert replies(receive(polling, 10, frames=1))[0][0] == 2
        left = [c["peer"] for c in service.gate.state()["clients"]]
        assert left == [f"127.0.0.1:{polling.getsockname()[1]}"]


def test_half_a_frame_then_silence_is_closed_after_the_frame_timeout(plc, monkeypatch):
    _, port, _ = plc  # idle timeout 30 s: the frame's closes it
    monkeypatch.setattr(connection, "FRAME_TIMEOUT_S", 0.5)
    with connect(port) as s:
        s.sendall(read(1, 0)[:9])
        assert receive(s, 3.0).endswith(b"<EOF>")


@pytest.mark.parametrize(
    "bad",
    [
        frame(4, struct.pack(">BHH", 3, 0, 2), protocol=7),
        frame(5, b"", length=0),
        frame(5, b"", length=1),
        frame(5, struct.pack(">BHH", 3, 0, 2), length=300),
        frame(5, struct.pack(">BHH", 3, 0, 2), length=65535),
        b"GET / HTTP/1.1\r\nHost: x\r\n\r\n",
    ],
    ids=["protocol-7", "length-0", "length-1", "length-300", "length-65535", "http"],
)
def test_a_header_that_is_not_modbus_closes_the_connection(plc, bad):
    _, port, _ = plc
    with connect(port) as s:
        s.sendall(bad + read(6, 0))
        assert receive(s, 10) == b"<EOF>"


def test_bad_frames_log_one_line_per_host_with_the_peer_and_no_other_clients_data(plc, caplog):
    _, port, _ = plc
    caplog.set_level(logging.WARNING, logger="pymodbus")  # as `binpick run` sets it
    caplog.set_level(logging.INFO, logger="edge.plc")
    with connect(port, "127.0.0.2") as other:
        other.sendall(frame(1, struct.pack(">BHHB", 16, 30, 1, 2) + b"\xbe\xef"))  # its bytes: be ef
        assert replies(receive(other, 10, frames=1))
        for k in range(20):
            with connect(port) as s:
                s.sendall(frame(k, struct.pack(">BHH", 3, 0, 2), protocol=7))
                assert receive(s, 10).endswith(b"<EOF>")
    text = caplog.text
    bad = [r for r in caplog.records if "not a Modbus TCP frame" in r.getMessage()]
    assert len(bad) == 1 and "127.0.0.1:" in bad[0].getMessage()
    assert "be ef" not in text and "beef" not in text and "unexpected data" not in text
    assert not [r for r in caplog.records if r.name.startswith("pymodbus")]


def test_pipelined_requests_are_all_answered_in_order_writes_included(plc):
    bank, port, _ = plc
    with connect(port) as s:
        s.sendall(read(1, MAP["mode"].address) + read(2, MAP["model_id"].address) + read(3, 29))
        assert replies(receive(s, 10, frames=3)) == [
            (1, b"\x03\x02\x00\x01"),
            (2, b"\x03\x02\x00\x07"),
            (3, b"\x03\x02\x00\x00"),
        ]
        trigger = MAP["trigger_id"].address
        writes = b"".join(frame(10 + k, struct.pack(">BHH", 6, trigger, 100 + k)) for k in range(3))
        s.sendall(writes + read(13, MAP["trigger_id"].address))
        got = replies(receive(s, 10, frames=4))
    assert [tid for tid, _ in got] == [10, 11, 12, 13]
    assert got[-1][1] == b"\x03\x02\x00\x66"  # the last write landed, after the two before it
    assert bank.snapshot()["trigger_id"] == 102


@pytest.mark.parametrize(
    ("pdu", "expected"),
    [
        (struct.pack(">BHH", 3, 0, 0), b"\x83\x03"),  # count 0
        (struct.pack(">BHH", 3, 0, 126), b"\x83\x03"),  # count above 125
        (struct.pack(">BH", 6, 5), b"\x86\x03"),  # a function 6 PDU cut short
        (struct.pack(">BHHB", 16, 5, 2, 4) + b"\x00\x01", b"\x90\x03"),  # byte count 4, 2 bytes
        (bytes([0x41, 1, 2]), b"\xc1\x01"),  # a function the appliance does not know
        (struct.pack(">BHH", 1, 0, 8), b"\x81\x01"),  # coils: served by no one
    ],
    ids=["count-0", "count-126", "fc6-short", "fc16-byte-count", "fc-0x41", "fc-1"],
)
def test_invalid_requests_get_the_exception_of_their_own_function(plc, pdu, expected):
    _, port, _ = plc
    with connect(port) as s:
        s.sendall(frame(9, pdu) + read(10, MAP["mode"].address))
        assert replies(receive(s, 10, frames=2)) == [(9, expected), (10, b"\x03\x02\x00\x01")]


def test_rejected_writes_are_logged_once_per_client_and_all_counted(plc, caplog):
    bank, port, _ = plc
    caplog.set_level(logging.DEBUG, logger="edge.plc")

    async def scan(source: str) -> None:
        client = AsyncModbusTcpClient(
            "127.0.0.1", port=port, source_address=(source, 0), timeout=2, retries=0
        )
        await client.connect()
        try:
            for _ in range(30):  # a PLC writing a bad mode every scan
                assert (await client.write_register(MAP["mode"].address, 9, device_id=1)).isError()
        finally:
            client.close()

    asyncio.run(scan("127.0.0.1"))
    asyncio.run(scan("127.0.0.2"))
    lines = [r.getMessage() for r in caplog.records if r.levelno >= logging.WARNING]
    lines = [line for line in lines if "rejected PLC request" in line]
    assert len(lines) == 2
    assert "from 127.0.0.1:" in lines[0] and "from 127.0.0.2:" in lines[1]
    assert bank.rejected_writes == 60
