"""registers.toml on the wire: the word order, the enumerations and the status bits the file
states are what a Modbus client sees (a real server on 127.0.0.1, pymodbus' client and Debian's
mbpoll), changing the file changes the wire, and the register image of a fixed sequence is
bit-identical to the one recorded before these became data (tests/data/register_bank_golden.json).

The expectations are read from the TOML with tomllib here, not through RegisterMap, so a map
that misread its own file would fail."""

from __future__ import annotations

import contextlib
import json
import struct
from pathlib import Path

import pytest
import tomllib
from appliance_helpers import free_port, mbpoll, wait_port
from pymodbus.client import ModbusTcpClient
from register_bank_sequence import RESULTS, dump

from edge.config import PlcSection
from edge.plc.bank import PublishedResult, RegisterBank
from edge.plc.register_map import DEFAULT_MAP_PATH, RegisterMap
from edge.plc.service import PlcService

pytestmark = pytest.mark.timeout(90)
GOLDEN = Path(__file__).resolve().parent / "data" / "register_bank_golden.json"
TOML = tomllib.loads(DEFAULT_MAP_PATH.read_text(encoding="utf-8"))
PYMODBUS_ORDER = {"ABCD": "big", "CDAB": "little"}  # pymodbus' name of each word order
ILLEGAL_VALUE = 3


@contextlib.contextmanager
def served(register_map: RegisterMap):
    """A PLC service on a free port with a fresh bank, and a connected pymodbus client."""
    port = free_port()
    bank = RegisterBank(register_map, triggered=True)
    service = PlcService(bank, PlcSection(tcp_port=port, heartbeat_period_s=3600.0))
    service.start()
    client = ModbusTcpClient("127.0.0.1", port=port)
    try:
        wait_port(port)
        assert client.connect()
        bank.mark_initialised(model_id=7)
        yield bank, client, port
    finally:
        client.close()
        service.stop()


def read(client: ModbusTcpClient, address: int, count: int = 1) -> list[int]:
    reply = client.read_holding_registers(address, count=count, device_id=1)
    assert not reply.isError(), reply
    return list(reply.registers)


def edited_map(tmp_path: Path, old: str, new: str) -> RegisterMap:
    text = DEFAULT_MAP_PATH.read_text(encoding="utf-8")
    assert old in text
    path = tmp_path / "registers.toml"
    path.write_text(text.replace(old, new, 1), encoding="utf-8")
    return RegisterMap.load(path)


def test_the_register_image_is_bit_identical_to_the_recorded_one():
    """Same addresses, word order and codes as before the map's meaning became data."""
    assert json.loads(json.dumps(dump())) == json.loads(GOLDEN.read_text(encoding="utf-8"))


@pytest.mark.parametrize("order", ["ABCD", "CDAB"])
def test_floats_go_out_in_the_word_order_the_toml_states(tmp_path, order):
    stated = TOML["map"]["float_word_order"]
    m = edited_map(tmp_path, f'float_word_order = "{stated}"', f'float_word_order = "{order}"')
    result = RESULTS[0]
    with served(m) as (bank, client, port):
        bank.publish(result)
        x = m["x"].address
        words = read(client, x, 2)
        high, low = struct.unpack(">HH", struct.pack(">f", result.x))
        assert words == ([high, low] if order == "ABCD" else [low, high])
        decoded = client.convert_from_registers(
            words, ModbusTcpClient.DATATYPE.FLOAT32, word_order=PYMODBUS_ORDER[order]
        )
        assert decoded == result.x
        big_endian_words = ["-B"] if order == "ABCD" else []  # mbpoll's -B: high word first
        floats = mbpoll("-m", "tcp", "-p", str(port), "-a", "1", "-r", str(x), "-c", "2",
                        "-t", "4:float", *big_endian_words, "127.0.0.1")  # fmt: skip
        assert floats[x] == result.x and floats[x + 2] == result.y


def test_changing_the_word_order_in_the_toml_changes_the_wire(tmp_path):
    swapped = edited_map(tmp_path, 'float_word_order = "ABCD"', 'float_word_order = "CDAB"')
    images = []
    for m in (RegisterMap.load(), swapped):
        with served(m) as (bank, client, _):
            bank.publish(RESULTS[0])
            images.append(read(client, m["x"].address, 2))
    assert images[0] != images[1] and images[0] == images[1][::-1]


def test_mode_values_written_per_the_toml_are_understood():
    entries = TOML["enum"]["mode"]
    with served(RegisterMap.load()) as (bank, client, _):
        address = next(r["address"] for r in TOML["register"] if r["name"] == "mode")
        for entry in entries:
            assert not client.write_register(address, entry["value"], device_id=1).isError()
            assert bank.mode == entry["name"]
            assert bank.flag("ready") == (entry["name"] == "run")
        unknown = max(e["value"] for e in entries) + 1
        reply = client.write_register(address, unknown, device_id=1)
        assert reply.isError() and reply.exception_code == ILLEGAL_VALUE
        assert bank.mode == entries[-1]["name"]  # the bad value never landed


def test_pick_outcome_codes_written_per_the_toml_are_understood():
    entries = TOML["enum"]["pick_outcome"]
    m = RegisterMap.load()
    with served(m) as (bank, client, _):
        address = m["pick_outcome"].address
        for entry in entries:
            sequence = bank.publish(PublishedResult(entry["value"], 0))  # a grasp to report on
            assert not client.write_registers(address, [entry["value"], sequence], device_id=1).isError()
            ((got_sequence, outcome),) = bank.take_pick_outcomes()
            assert (got_sequence, int(outcome), outcome.name) == (sequence, entry["value"], entry["name"])
        reply = client.write_registers(address, [max(e["value"] for e in entries) + 1, 999], device_id=1)
        assert reply.isError() and reply.exception_code == ILLEGAL_VALUE
        assert bank.take_pick_outcomes() == []


def test_status_bits_are_at_the_positions_the_toml_states(tmp_path):
    m = RegisterMap.load()
    with served(m) as (bank, client, port):
        status = m["status"].address
        for entry in TOML["bit"]:
            bank.set_flag(entry["name"], False)
            off = read(client, status)[0]
            bank.set_flag(entry["name"], True)
            on = int(mbpoll("-m", "tcp", "-p", str(port), "-a", "1", "-r", str(status), "-c", "1",
                            "127.0.0.1")[status])  # fmt: skip
            assert on ^ off == 1 << entry["bit"], entry
    busy = next(b["bit"] for b in TOML["bit"] if b["name"] == "busy")
    moved = edited_map(tmp_path, f'name = "busy"\nbit = {busy}', 'name = "busy"\nbit = 9')
    with served(moved) as (bank, client, _):
        bank.begin_cycle()  # raises busy
        assert read(client, moved["status"].address)[0] & (1 << 9)


def test_error_codes_on_the_wire_are_the_tomls():
    m = RegisterMap.load()
    with served(m) as (bank, client, _):
        for entry in TOML["enum"]["error"]:
            bank.set_error(m.error_code(entry["name"]))
            assert read(client, m["error_code"].address)[0] == entry["value"]
