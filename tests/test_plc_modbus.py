"""The PLC interface against real peers: Debian's mbpoll over TCP and over RTU (socat ptys),
and a pymodbus client; one register bank behind both servers."""

from __future__ import annotations

import asyncio
import socket
import subprocess
import time

import pytest
from appliance_helpers import (
    MBPOLL_RTU,
    RTU_BAUDRATE,
    free_port,
    mbpoll,
    need,
    socat_pair,
    wait_port,
    wait_until,
)
from pymodbus.client import AsyncModbusTcpClient, ModbusTcpClient

from edge.config import PlcSection
from edge.plc.bank import PublishedResult, RegisterBank
from edge.plc.register_map import RegisterMap
from edge.plc.service import PlcService

pytestmark = pytest.mark.timeout(60)
MAP = RegisterMap.load()
GRASP = PublishedResult(
    request_id=0, error=0, x=412.5, y=-87.25, z=103.0, angle=-33.5, score=1.625,
    candidate_count=17, extent_major=120.0, extent_minor=45.5, latency_ms=88.0,
)  # fmt: skip


@pytest.fixture
def plc(tmp_path):
    """A running PlcService on a free TCP port (and RTU on a socat pty), with a fresh bank."""
    with socat_pair(tmp_path) as (server_tty, client_tty):
        port = free_port()
        cfg = PlcSection(tcp_port=port, rtu_enabled=True, rtu_port=server_tty, rtu_baudrate=RTU_BAUDRATE)
        bank = RegisterBank(MAP, triggered=True)
        service = PlcService(bank, cfg)
        service.start()
        wait_port(port)
        bank.mark_initialised(model_id=321)
        try:
            yield bank, port, client_tty, service
        finally:
            service.stop()


def test_mbpoll_reads_the_grasp_over_tcp(plc):
    bank, port, _, _ = plc
    sequence = bank.publish(GRASP)
    floats = mbpoll("-m", "tcp", "-p", str(port), "-a", "1", "-r", str(MAP["x"].address), "-c", "5",
                    "-t", "4:float", "-B", "127.0.0.1")  # fmt: skip
    assert [floats[MAP[n].address] for n in ("x", "y", "z", "angle", "score")] == [
        412.5,
        -87.25,
        103.0,
        -33.5,
        1.625,
    ]
    words = mbpoll("-m", "tcp", "-p", str(port), "-a", "1", "-r", "0", "-c", "30", "127.0.0.1")
    assert words[MAP["protocol_version"].address] == MAP.protocol_version
    assert words[MAP["model_id"].address] == 321
    assert words[MAP["sequence_id"].address] == sequence
    assert words[MAP["candidate_count"].address] == 17
    status = int(words[MAP["status"].address])
    assert status & MAP.bit_mask("result_valid") and status & MAP.bit_mask("ready")
    assert not status & MAP.bit_mask("busy")


def test_mbpoll_is_one_based_without_dash_zero(plc):
    """The documented trap: `mbpoll -r 1` (no -0) reads protocol address 0."""
    _, port, _, _ = plc
    words = mbpoll(
        "-m", "tcp", "-p", str(port), "-a", "1", "-r", "1", "-c", "1", "127.0.0.1", zero_based=False
    )
    assert words == {1: MAP.protocol_version}


def test_mbpoll_reads_the_grasp_over_rtu_through_a_socat_pty_pair(plc):
    bank, _, client_tty, _ = plc
    bank.publish(GRASP)
    floats = mbpoll(
        *MBPOLL_RTU, "-r", str(MAP["x"].address), "-c", "3", "-t", "4:float", "-B", client_tty, timeout=15
    )
    assert [floats[MAP[n].address] for n in ("x", "y", "z")] == [412.5, -87.25, 103.0]


def test_a_trigger_written_over_rtu_is_seen_over_tcp(plc):
    """One register map, one handshake state, two transports."""
    bank, port, client_tty, _ = plc
    mbpoll(*MBPOLL_RTU, "-r", str(MAP["trigger_id"].address), client_tty, "77")
    assert bank.wait_trigger(2.0) == 77
    bank.accept_trigger(77)
    words = mbpoll("-m", "tcp", "-p", str(port), "-a", "1", "-r", str(MAP["trigger_ack"].address), "-c", "1",
                   "127.0.0.1")  # fmt: skip
    assert words[MAP["trigger_ack"].address] == 77
    assert bank.flag("busy")


def test_bad_writes_are_rejected_with_an_error_code_and_the_server_keeps_serving(plc):
    bank, port, _, _ = plc

    async def scenario():
        client = AsyncModbusTcpClient("127.0.0.1", port=port, timeout=3)
        await client.connect()
        try:
            read_only = await client.write_register(MAP["sequence_id"].address, 5, device_id=1)
            bad_mode = await client.write_register(MAP["mode"].address, 9, device_id=1)
            gap = await client.write_registers(MAP["model_id"].address, [1, 2], device_id=1)
            block = await client.write_registers(MAP["x"].address, [0, 0, 0, 0], device_id=1)
            after = await client.read_holding_registers(0, count=MAP.size, device_id=1)
            return read_only, bad_mode, gap, block, after
        finally:
            client.close()

    read_only, bad_mode, gap, block, after = asyncio.run(scenario())
    assert read_only.isError() and read_only.exception_code == 2
    assert bad_mode.isError() and bad_mode.exception_code == 3
    assert gap.isError() and block.isError()
    assert not after.isError()
    assert after.registers[MAP["error_code"].address] == MAP.error_code("invalid_plc_write")
    assert after.registers[MAP["status"].address] & MAP.bit_mask("error")
    assert after.registers[MAP["mode"].address] == 1  # the bad value never landed
    assert bank.rejected_writes == 4


def test_a_plc_disconnecting_mid_request_does_not_disturb_the_server(plc):
    bank, port, _, _ = plc
    # A raw half Modbus/TCP frame, then a hard close: the server must drop only that connection.
    with socket.create_connection(("127.0.0.1", port), timeout=2) as s:
        s.sendall(bytes([0, 1, 0, 0, 0, 6, 1, 3, 0]))
    bank.publish(GRASP)
    floats = mbpoll("-m", "tcp", "-p", str(port), "-a", "1", "-r", str(MAP["x"].address), "-c", "1",
                    "-t", "4:float", "-B", "127.0.0.1")  # fmt: skip
    assert floats[MAP["x"].address] == 412.5


def test_heartbeat_counts_at_least_once_per_second(plc):
    bank, _, _, _ = plc
    first = bank.value("heartbeat")
    wait_until(lambda: (bank.value("heartbeat") - first) % 65536 >= 2, 2.5, what="two heartbeats")


ILLEGAL_FUNCTION, ILLEGAL_ADDRESS = 1, 2


def mbpoll_refusal(*args: str, timeout: float = 15.0) -> str:
    """Run mbpoll once, expecting the appliance to refuse the request; returns mbpoll's message."""
    need("mbpoll")
    proc = subprocess.run(["mbpoll", "-0", "-1", *args], capture_output=True, text=True, timeout=timeout)
    assert proc.returncode != 0, proc.stdout
    return proc.stderr.strip()


def image_without_heartbeat(bank: RegisterBank) -> list[int]:
    words = bank.read(0, MAP.size)
    words[MAP["heartbeat"].address] = 0
    return words


def test_only_function_codes_3_4_6_16_are_served_coils_and_discrete_inputs_are_illegal(plc):
    """Coil and discrete-input requests used to read and write the holding registers' bits (a coil
    write at 5 wrote trigger_id = 1 and ran a cycle; coil 2 = 0 set mode idle): they and every other
    function code now get ILLEGAL FUNCTION and change nothing, over TCP and over RTU."""
    bank, port, client_tty, _ = plc
    before = image_without_heartbeat(bank)
    trigger, mode = MAP["trigger_id"].address, MAP["mode"].address

    async def scenario():
        client = AsyncModbusTcpClient("127.0.0.1", port=port, timeout=3)
        assert await client.connect()
        try:
            return {
                "write_coil": await client.write_coil(trigger, True, device_id=1),
                "write_coil_mode": await client.write_coil(mode, False, device_id=1),
                "write_coils": await client.write_coils(trigger, [True] * 8, device_id=1),
                "read_coils": await client.read_coils(0, count=16, device_id=1),
                "read_discrete_inputs": await client.read_discrete_inputs(0, count=16, device_id=1),
                "mask_write": await client.mask_write_register(
                    address=trigger, and_mask=0, or_mask=9, device_id=1
                ),
                "read_write": await client.readwrite_registers(
                    read_address=0, read_count=2, write_address=trigger, values=[9], device_id=1
                ),
                "still_serving": await client.read_holding_registers(0, count=MAP.size, device_id=1),
            }
        finally:
            client.close()

    replies = asyncio.run(scenario())
    assert not replies.pop("still_serving").isError()
    for name, reply in replies.items():
        assert reply.isError() and reply.exception_code == ILLEGAL_FUNCTION, (name, reply)
    tcp = ("-m", "tcp", "-p", str(port), "-a", "1")
    assert "Illegal function" in mbpoll_refusal(*tcp, "-t", "0", "-r", str(trigger), "127.0.0.1", "1")
    assert "Illegal function" in mbpoll_refusal(*tcp, "-t", "1", "-r", "0", "-c", "8", "127.0.0.1")
    assert "Illegal function" in mbpoll_refusal(*MBPOLL_RTU, "-t", "0", "-r", str(trigger), client_tty, "1")
    assert bank.wait_trigger(0.3) is None  # no cycle requested
    assert image_without_heartbeat(bank) == before
    assert bank.mode == "run" and bank.rejected_writes == 0


def test_the_bank_decides_about_every_address_writes_beyond_the_map_set_error_7_and_count(plc):
    """pymodbus used to answer exception 2 for addresses past the map before the bank saw them:
    no error code, not counted. Now they are rejected writes like any other; reads past the map
    get exception 2 and set nothing."""
    bank, port, _, _ = plc
    end = MAP.size

    async def scenario():
        client = AsyncModbusTcpClient("127.0.0.1", port=port, timeout=3)
        assert await client.connect()
        try:
            writes = [
                await client.write_register(end, 1, device_id=1),
                await client.write_registers(end, [1, 2, 3], device_id=1),
                await client.write_register(65535, 1, device_id=1),
            ]
            reads = [
                await client.read_holding_registers(end, count=1, device_id=1),
                await client.read_input_registers(end - 2, count=4, device_id=1),
            ]
            words = await client.read_holding_registers(0, count=end, device_id=1)
            return writes, reads, words
        finally:
            client.close()

    bank.publish(GRASP)  # error_code 0
    writes, reads, words = asyncio.run(scenario())
    for reply in writes + reads:
        assert reply.isError() and reply.exception_code == ILLEGAL_ADDRESS, reply
    assert bank.rejected_writes == len(writes)  # the reads are not counted
    assert "unmapped address 65535" in bank.last_rejection
    assert not words.isError()
    assert words.registers[MAP["error_code"].address] == MAP.error_code("invalid_plc_write")
    assert words.registers[MAP["status"].address] & MAP.bit_mask("error")


def test_a_trigger_written_while_busy_is_queued_one_deep_and_the_finishing_result_stays_invalid(plc):
    """A real client triggers 20, then 21 and 22 while 20's cycle runs (the appliance side is
    driven here). 20's result is written but result_valid stays low (it used to rise again with
    request_id 20 for a moment); 21 is replaced by 22 and never acknowledged; 22's result is valid."""
    bank, port, _, _ = plc
    client = ModbusTcpClient("127.0.0.1", port=port, timeout=3)
    assert client.connect()
    try:
        trigger = MAP["trigger_id"].address

        def words() -> list[int]:
            reply = client.read_holding_registers(0, count=MAP.size, device_id=1)
            assert not reply.isError(), reply
            return reply.registers

        def valid(w: list[int]) -> bool:
            return bool(w[MAP["status"].address] & MAP.bit_mask("result_valid"))

        assert not client.write_register(trigger, 20, device_id=1).isError()
        assert bank.wait_trigger(2.0) == 20
        bank.accept_trigger(20)
        assert not client.write_register(trigger, 21, device_id=1).isError()
        assert not client.write_register(trigger, 22, device_id=1).isError()
        sequence = bank.publish(PublishedResult(request_id=20, error=0, x=1.0))
        w = words()
        assert w[MAP["sequence_id"].address] == sequence and w[MAP["request_id"].address] == 20
        assert not valid(w), "the result of 20 shown as fresh although 22 is queued"
        assert bank.wait_trigger(2.0) == 22  # the latest wins
        bank.accept_trigger(22)
        assert not valid(words())
        bank.publish(PublishedResult(request_id=22, error=0, x=2.0))
        w = words()
        assert valid(w) and w[MAP["request_id"].address] == 22 and w[MAP["trigger_ack"].address] == 22
        assert bank.wait_trigger(0.2) is None  # 21 was replaced: never run, never acknowledged
    finally:
        client.close()


def test_at_stop_ready_falls_the_cycle_in_flight_publishes_and_later_triggers_are_answered_not_running(plc):
    """SIGTERM used to leave ready at 1 and a trigger written meanwhile queued for a cycle that
    never ran (never acknowledged). A real client: 30's cycle is in flight when the stop begins;
    ready falls at once and no mode write raises it; 31, written meanwhile, waits; 30 publishes;
    the close answers 31 with not_running, and 32, written after it, at once."""
    bank, port, _, _ = plc
    client = ModbusTcpClient("127.0.0.1", port=port, timeout=3)
    assert client.connect()
    try:
        a = {name: MAP[name].address for name in ("trigger_id", "trigger_ack", "request_id", "mode")}
        a.update(result_error=MAP["result_error"].address, sequence=MAP["sequence_id"].address)
        status, error_code = MAP["status"].address, MAP["error_code"].address
        not_running = MAP.error_code("not_running")

        def words() -> list[int]:
            reply = client.read_holding_registers(0, count=MAP.size, device_id=1)
            assert not reply.isError(), reply
            return reply.registers

        def bit(w: list[int], name: str) -> bool:
            return bool(w[status] & MAP.bit_mask(name))

        assert bit(words(), "ready")
        assert not client.write_register(a["trigger_id"], 30, device_id=1).isError()
        assert bank.wait_trigger(2.0) == 30
        bank.accept_trigger(30)
        bank.stopping()
        w = words()
        assert not bit(w, "ready") and bit(w, "busy")
        assert not client.write_register(a["mode"], int(MAP.mode.run), device_id=1).isError()
        assert not bit(words(), "ready"), "a mode write raised ready again while stopping"
        assert not client.write_register(a["trigger_id"], 31, device_id=1).isError()
        sequence = bank.publish(PublishedResult(request_id=30, error=0, x=1.0))  # the cycle in flight
        w = words()
        assert w[a["request_id"]] == 30 and w[a["sequence"]] == sequence and not bit(w, "busy")
        assert w[a["trigger_ack"]] == 30  # 31 is not taken by a cycle
        assert bank.close() == 31
        w = words()
        assert w[a["trigger_ack"]] == 31 and w[a["request_id"]] == 31
        assert w[a["result_error"]] == not_running and w[error_code] == not_running
        assert w[a["sequence"]] == sequence + 1
        assert not bit(w, "ready") and not bit(w, "busy") and not bit(w, "result_valid") and bit(w, "error")
        assert not client.write_register(a["trigger_id"], 32, device_id=1).isError()
        w = words()
        assert (w[a["trigger_ack"]], w[a["request_id"]], w[a["result_error"]]) == (32, 32, not_running)
        assert w[a["sequence"]] == sequence + 2 and not bit(w, "ready")
        assert bank.wait_trigger(0.05) is None  # answered, not left queued
    finally:
        client.close()


def test_on_the_rtu_bus_a_request_for_another_device_is_left_to_it(plc):
    """RS-485 is shared: an answer to device 7's request (even an exception) would collide with
    device 7's own. Ours (id 1) stays silent for it, and still answers its own id."""
    from pymodbus.client import ModbusSerialClient
    from pymodbus.exceptions import ModbusIOException

    bank, _, client_tty, _ = plc
    client = ModbusSerialClient(client_tty, baudrate=RTU_BAUDRATE, timeout=0.5, retries=0)
    assert client.connect()
    try:
        for request in (
            lambda: client.read_holding_registers(0, count=1, device_id=7),
            lambda: client.read_coils(0, count=1, device_id=7),
            lambda: client.write_register(MAP["trigger_id"].address, 5, device_id=7),
        ):
            with pytest.raises(ModbusIOException):  # no response at all, not an exception reply
                request()
        assert bank.rejected_writes == 0 and bank.value("trigger_id") == 0
        own = client.read_holding_registers(MAP["protocol_version"].address, count=1, device_id=1)
        assert not own.isError() and own.registers == [MAP.protocol_version]
    finally:
        client.close()


def rtu_frame(*body: int) -> bytes:
    """A Modbus RTU frame: `body` (device id, function code, data) and its CRC, computed here."""
    crc = 0xFFFF
    for byte in body:
        crc ^= byte
        for _ in range(8):
            crc = (crc >> 1) ^ 0xA001 if crc & 1 else crc >> 1
    return bytes(body) + crc.to_bytes(2, "little")


def test_the_rtu_line_follows_the_serial_line_rules_for_what_it_cannot_serve(plc):
    """Modbus over serial line: a frame whose CRC fails is discarded without a reply; a frame for
    another device gets none either, whatever it holds; a function we do not serve gets exception 1
    with the request's own function code, a malformed request exception 3. pymodbus' framer
    answered `80 01` (function 0) to a request it could not decode, for any device id (here a
    read of 0 registers for device 7), and nothing at all to a function code it does not know."""
    import serial

    bank, _, client_tty, _ = plc
    line = serial.Serial(client_tty, RTU_BAUDRATE, timeout=0.05)

    def reply(frame: bytes, quiet_s: float = 0.5) -> bytes:
        """Send `frame`; what comes back until the line has been quiet for `quiet_s`."""
        line.reset_input_buffer()
        line.write(frame)
        got, deadline = b"", time.monotonic() + quiet_s
        while time.monotonic() < deadline:
            if chunk := line.read(64):
                got, deadline = got + chunk, time.monotonic() + quiet_s
        return got

    read_version = rtu_frame(1, 3, 0, MAP["protocol_version"].address, 0, 1)
    answer = rtu_frame(1, 3, 2, 0, MAP.protocol_version)
    try:
        assert reply(read_version) == answer
        assert reply(read_version[:-1] + bytes([read_version[-1] ^ 0xFF])) == b""  # bad CRC
        assert reply(rtu_frame(1, 0x41, 0, 0, 0, 1)) == rtu_frame(1, 0xC1, 1)  # unknown function
        assert reply(rtu_frame(1, 9, 0, 0)) == rtu_frame(1, 0x89, 1)
        assert reply(rtu_frame(1, 8, 0, 99, 0, 0)) == rtu_frame(1, 0x88, 1)  # diagnostics
        assert reply(rtu_frame(1, 3, 0, 0, 0, 0)) == rtu_frame(1, 0x83, 3)  # a read of 0 registers
        assert reply(rtu_frame(1, 16, 0, 0, 0, 2, 3, 0, 1, 0)) == rtu_frame(1, 0x90, 3)  # byte count 3
        for body in ((7, 3, 0, 0, 0, 0), (7, 0x41, 0, 0, 0, 1), (7, 16, 0, 0, 0, 2, 3, 0, 1, 0)):
            assert reply(rtu_frame(*body)) == b"", f"answered device {body[0]}'s request {body}"
        assert reply(rtu_frame(1, 0x83, 2)) == b""  # an exception reply is not a request
        # noise, then a request for us in the same burst: the request is served
        assert reply(bytes([0x55, 0x01, 0xFF]) + read_version) == answer
        # a request arriving in two pieces, 5 ms apart (a USB adapter's packets)
        line.reset_input_buffer()
        line.write(read_version[:3])
        time.sleep(0.005)
        assert reply(read_version[3:]) == answer
        assert bank.rejected_writes == 0
    finally:
        line.close()
