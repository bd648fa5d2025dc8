"""The register map, read from `firmware_config/registers.toml` (the one source of addresses).

Everything that touches a register address (servers, supervisor, docs, tests) goes through
`RegisterMap`, so moving a register is a one-line change in the TOML file.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass
from pathlib import Path

import tomllib

REGISTER_TYPES = {"uint16": 1, "bits": 1, "float32": 2}
DEFAULT_MAP_PATH = Path(__file__).resolve().parents[2] / "firmware_config" / "registers.toml"


class RegisterMapError(ValueError):
    """The register map file is malformed; the message names the file, entry and field."""


@dataclass(frozen=True)
class Register:
    name: str
    address: int
    type: str
    access: str  # "r": appliance writes, PLC may only read; "w": the PLC writes
    description: str
    block: str = ""
    unit: str = ""
    max: int = 65535

    @property
    def size(self) -> int:
        return REGISTER_TYPES[self.type]


@dataclass(frozen=True)
class Bit:
    name: str
    bit: int
    description: str


@dataclass(frozen=True)
class ErrorCode:
    code: int
    name: str
    description: str


def float_to_words(value: float) -> tuple[int, int]:
    """float32 as two registers, high word first (the word order documented in the map)."""
    high, low = struct.unpack(">HH", struct.pack(">f", float(value)))
    return high, low


def words_to_float(high: int, low: int) -> float:
    return struct.unpack(">f", struct.pack(">HH", high, low))[0]


class RegisterMap:
    """Named registers, status bits and error codes, validated on load."""

    def __init__(
        self,
        registers: list[Register],
        bits: list[Bit],
        errors: list[ErrorCode],
        protocol_version: int,
        word_order: str,
        source: str = "",
    ):
        self.registers = sorted(registers, key=lambda r: r.address)
        self.by_name = {r.name: r for r in self.registers}
        self.bits = {b.name: b for b in bits}
        self.errors = {e.name: e for e in errors}
        self.protocol_version = protocol_version
        self.word_order = word_order
        self.source = source
        self.size = max(r.address + r.size for r in self.registers)
        self._owner: list[Register | None] = [None] * self.size
        for reg in self.registers:
            for offset in range(reg.size):
                self._owner[reg.address + offset] = reg

    def __getitem__(self, name: str) -> Register:
        return self.by_name[name]

    def owner(self, address: int) -> Register | None:
        """The register covering `address` (None for a gap or beyond the map)."""
        return self._owner[address] if 0 <= address < self.size else None

    def bit_mask(self, name: str) -> int:
        return 1 << self.bits[name].bit

    def error_code(self, name: str) -> int:
        return self.errors[name].code

    def error_name(self, code: int) -> str:
        return next((e.name for e in self.errors.values() if e.code == code), f"unknown({code})")

    def block(self, name: str) -> tuple[int, int]:
        """(first address, word count) of the registers tagged `block = name`."""
        regs = [r for r in self.registers if r.block == name]
        start = regs[0].address
        return start, regs[-1].address + regs[-1].size - start

    @classmethod
    def load(cls, path: str | Path = DEFAULT_MAP_PATH) -> RegisterMap:
        path = Path(path)
        try:
            data = tomllib.loads(path.read_text(encoding="utf-8"))
        except OSError as exc:
            raise RegisterMapError(f"{path}: cannot read the register map ({exc.strerror})") from exc
        except tomllib.TOMLDecodeError as exc:
            raise RegisterMapError(f"{path}: not valid TOML ({exc})") from exc
        header = data.get("map", {})
        registers = [_register(path, i, entry) for i, entry in enumerate(data.get("register", []))]
        bits = [
            Bit(name=e["name"], bit=int(e["bit"]), description=e["description"]) for e in data.get("bit", [])
        ]
        errors = [
            ErrorCode(code=int(e["code"]), name=e["name"], description=e["description"])
            for e in data.get("error", [])
        ]
        _check_layout(path, registers, bits, errors)
        return cls(
            registers,
            bits,
            errors,
            int(header.get("protocol_version", 1)),
            str(header.get("float_word_order", "")),
            str(path),
        )


def _register(path: Path, index: int, entry: dict) -> Register:
    where = f"{path}: register[{index}] ({entry.get('name', '?')})"
    for key in ("name", "address", "type", "access", "description"):
        if key not in entry:
            raise RegisterMapError(f"{where}: missing key '{key}'")
    if entry["type"] not in REGISTER_TYPES:
        raise RegisterMapError(f"{where}: type = {entry['type']!r}, expected one of {sorted(REGISTER_TYPES)}")
    if entry["access"] not in ("r", "w"):
        raise RegisterMapError(f"{where}: access = {entry['access']!r}, expected 'r' or 'w'")
    address = entry["address"]
    if not isinstance(address, int) or not 0 <= address <= 65534:
        raise RegisterMapError(f"{where}: address = {address!r}, expected an integer 0..65534")
    return Register(
        name=entry["name"],
        address=address,
        type=entry["type"],
        access=entry["access"],
        description=entry["description"],
        block=entry.get("block", ""),
        unit=entry.get("unit", ""),
        max=int(entry.get("max", 65535)),
    )


REQUIRED_REGISTERS = [
    "protocol_version",
    "heartbeat",
    "mode",
    "status",
    "error_code",
    "trigger_id",
    "trigger_ack",
    "result_ack",
    "model_id",
    "request_id",
    "result_error",
    "x",
    "y",
    "z",
    "angle",
    "score",
    "candidate_count",
    "extent_major",
    "extent_minor",
    "latency",
    "sequence_id",
]
REQUIRED_BITS = ["ready", "busy", "result_valid", "error", "pixel_mode", "camera_ok", "triggered"]
REQUIRED_ERRORS = [
    "ok",
    "no_image",
    "no_candidate",
    "empty_roi",
    "camera_lost",
    "calibration_missing",
    "model_error",
    "invalid_plc_write",
    "not_running",
    "internal",
]


def _check_layout(path: Path, registers: list[Register], bits: list[Bit], errors: list[ErrorCode]) -> None:
    names = {r.name for r in registers}
    for group, have, need in (
        ("register", names, REQUIRED_REGISTERS),
        ("bit", {b.name for b in bits}, REQUIRED_BITS),
        ("error", {e.name for e in errors}, REQUIRED_ERRORS),
    ):
        missing = [n for n in need if n not in have]
        if missing:
            raise RegisterMapError(f"{path}: missing {group} entries {missing}")
    used: dict[int, str] = {}
    for reg in registers:
        for address in range(reg.address, reg.address + reg.size):
            if address in used:
                raise RegisterMapError(
                    f"{path}: register {reg.name} overlaps {used[address]} at address {address}"
                )
            used[address] = reg.name
    result = sorted((r for r in registers if r.block == "result"), key=lambda r: r.address)
    if result[-1].name != "sequence_id":
        raise RegisterMapError(f"{path}: sequence_id must be the last register of the result block")
    if len({b.bit for b in bits}) != len(bits) or any(not 0 <= b.bit <= 15 for b in bits):
        raise RegisterMapError(f"{path}: status bits must be distinct and in 0..15")
    if len({e.code for e in errors}) != len(errors):
        raise RegisterMapError(f"{path}: error codes must be distinct")
