"""The register map, read from `firmware_config/registers.toml` (the one source of the protocol).

Everything that touches the protocol (servers, supervisor, simulated cell, docs, tests) goes
through `RegisterMap`: addresses, the float32 word order, the enumerations (modes, pick outcomes,
error codes) and the status bits are all data in the TOML file, so none of them is written a
second time in Python. A map's enumerations are `IntEnum` classes built from its file
(`m.mode.run`, `m.pick_outcome.failed`, `m.error.no_candidate`), its status bits an `IntFlag`
(`m.status.busy`).
"""

from __future__ import annotations

import enum
import struct
from dataclasses import dataclass
from pathlib import Path

from edge import toml_text

REGISTER_TYPES = {"uint16": 1, "bits": 1, "float32": 2}
# float32 word orders a map may state. Modbus sends the bytes of each word big-endian; only the
# order of the two words varies between devices.
WORD_ORDERS = {
    "ABCD": "high word first (ABCD)",
    "CDAB": "low word first (CDAB)",
}
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
    enum: str = ""  # name of the enumeration of the values it holds ("" = any 0..max)

    @property
    def size(self) -> int:
        return REGISTER_TYPES[self.type]


@dataclass(frozen=True)
class Bit:
    name: str
    bit: int
    description: str


@dataclass(frozen=True)
class EnumValue:
    """One value of an enumeration (a mode, a pick outcome, an error code)."""

    value: int
    name: str
    description: str


def float_to_words(value: float, word_order: str) -> tuple[int, int]:
    """float32 as the two registers the PLC reads first and second, in `word_order` (WORD_ORDERS)."""
    high, low = struct.unpack(">HH", struct.pack(">f", float(value)))
    return (high, low) if word_order == "ABCD" else (low, high)


def words_to_float(first: int, second: int, word_order: str) -> float:
    """The float32 in two registers (first = lower address) sent in `word_order`."""
    high, low = (first, second) if word_order == "ABCD" else (second, first)
    return struct.unpack(">f", struct.pack(">HH", high, low))[0]


class RegisterMap:
    """Named registers, word order, enumerations and status bits, validated on load."""

    def __init__(
        self,
        registers: list[Register],
        bits: list[Bit],
        enums: dict[str, list[EnumValue]],
        protocol_version: int,
        word_order: str,
        source: str = "",
    ):
        self.registers = sorted(registers, key=lambda r: r.address)
        self.by_name = {r.name: r for r in self.registers}
        self.bits = {b.name: b for b in bits}
        self.enum_values = {name: sorted(values, key=lambda v: v.value) for name, values in enums.items()}
        self.enums: dict[str, type[enum.IntEnum]] = {
            name: enum.IntEnum(_class_name(name), {v.name: v.value for v in values})
            for name, values in self.enum_values.items()
        }
        self._names = {name: {v.value: v.name for v in values} for name, values in self.enum_values.items()}
        self.errors = {e.name: e for e in self.enum_values["error"]}
        self.status = enum.IntFlag("Status", {b.name: 1 << b.bit for b in bits})
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

    # The enumerations every appliance needs (their names are checked on load).
    @property
    def mode(self) -> type[enum.IntEnum]:
        """Values of register `mode`: idle, run, calibration."""
        return self.enums["mode"]

    @property
    def pick_outcome(self) -> type[enum.IntEnum]:
        """Values of register `pick_outcome`: not_reported, picked, failed."""
        return self.enums["pick_outcome"]

    @property
    def error(self) -> type[enum.IntEnum]:
        """Values of registers `error_code` and `result_error`."""
        return self.enums["error"]

    @property
    def word_order_text(self) -> str:
        """The word order in words, for docs and messages."""
        return WORD_ORDERS[self.word_order]

    def float_to_words(self, value: float) -> tuple[int, int]:
        """float32 as two registers in this map's word order."""
        return float_to_words(value, self.word_order)

    def words_to_float(self, first: int, second: int) -> float:
        """The float32 in two registers (lower address first) in this map's word order."""
        return words_to_float(first, second, self.word_order)

    def bit_mask(self, name: str) -> int:
        return int(self.status[name])

    def error_code(self, name: str) -> int:
        return int(self.error[name])

    def error_name(self, code: int) -> str:
        return self.enum_name("error", code) or f"unknown({code})"

    def enum_name(self, enum_name: str, value: int) -> str:
        """Name of `value` in enumeration `enum_name` ("" when it has none)."""
        return self._names[enum_name].get(value, "")

    def block(self, name: str) -> tuple[int, int]:
        """(first address, word count) of the registers tagged `block = name`."""
        regs = [r for r in self.registers if r.block == name]
        start = regs[0].address
        return start, regs[-1].address + regs[-1].size - start

    @classmethod
    def load(cls, path: str | Path = DEFAULT_MAP_PATH) -> RegisterMap:
        path = Path(path)
        try:
            data = toml_text.loads(path.read_text(encoding="utf-8"))
        except OSError as exc:
            raise RegisterMapError(f"{path}: cannot read the register map ({exc.strerror})") from exc
        except UnicodeDecodeError as exc:
            raise RegisterMapError(
                f"{path}: not a UTF-8 text file (byte 0x{exc.object[exc.start]:02x} at offset "
                f"{exc.start}): expected a TOML register map"
            ) from None
        except ValueError as exc:  # TOMLDecodeError, or an integer of more than 4300 digits
            raise RegisterMapError(f"{path}: not valid TOML ({exc})") from exc
        if "map" not in data:  # an empty file, the appliance config, any other TOML
            raise RegisterMapError(
                f"{path}: no [map] table: not a register map (expected [map] with float_word_order, "
                "[[register]], [[bit]] and [[enum.NAME]] tables, as in firmware_config/registers.toml)"
            )
        header = data["map"]
        if not isinstance(header, dict):
            raise RegisterMapError(f"{path}: map = {header!r}, expected a [map] table")
        _known_keys(f"{path}", "", data, TOP_LEVEL_KEYS, what="table")
        _known_keys(f"{path}", "map.", header, MAP_KEYS)
        expected = ", ".join(f"{k!r} ({v})" for k, v in WORD_ORDERS.items())
        if "float_word_order" not in header:
            raise RegisterMapError(f"{path}: map.float_word_order is missing, expected one of {expected}")
        word_order = header["float_word_order"]
        if not isinstance(word_order, str) or word_order not in WORD_ORDERS:  # a list is unhashable
            raise RegisterMapError(
                f"{path}: map.float_word_order = {word_order!r}, expected one of {expected}"
            )
        version = header.get("protocol_version", 1)
        if not _is_int(version) or not 0 <= version <= 65535:  # register protocol_version holds it
            raise RegisterMapError(
                f"{path}: map.protocol_version = {version!r}, expected an integer 0..65535 (a uint16)"
            )
        registers = [_register(path, i, entry) for i, entry in _entries(path, "register", data)]
        bits = [_bit(path, i, entry) for i, entry in _entries(path, "bit", data)]
        enum_tables = data.get("enum", {})
        if not isinstance(enum_tables, dict):
            raise RegisterMapError(f"{path}: enum = {enum_tables!r}, expected [[enum.NAME]] tables")
        enums = {name: _enum(path, name, entries) for name, entries in enum_tables.items()}
        _check_layout(path, registers, bits, enums)
        return cls(registers, bits, enums, version, word_order, str(path))


# The keys each part of a map may have, in the order the docs list them. Anything else is refused
# by name: a misspelt `maximum = 5` for `max` would otherwise drop the limit on a PLC write.
TOP_LEVEL_KEYS = ("map", "register", "bit", "enum")
MAP_KEYS = ("protocol_version", "float_word_order")
REGISTER_KEYS = ("name", "address", "type", "access", "description", "block", "unit", "max", "enum")
# The keys a register must have, with what each holds (for the message when one is missing).
REQUIRED_REGISTER_KEYS = {
    "name": "an identifier (letters, digits, _)",
    "address": "an integer 0..65534",
    "type": f"one of {sorted(REGISTER_TYPES)}",
    "access": "'r' or 'w'",
    "description": "a string",
}
BIT_KEYS = ("name", "bit", "description")
ENUM_KEYS = ("value", "name", "description")


def _known_keys(where: str, prefix: str, table: dict, known: tuple[str, ...], what: str = "key") -> None:
    """Refuse the first key of `table` not in `known`, naming it and the known ones."""
    for key in table:
        if key not in known:
            kind = what if isinstance(table[key], dict | list) else "key"
            raise RegisterMapError(f"{where}: unknown {kind} '{prefix}{key}' (known: {', '.join(known)})")


def _missing(where: str, key: str, entry: dict, expected: str) -> None:
    if key not in entry:
        raise RegisterMapError(f"{where}: {key} is missing, expected {expected}")


def _is_int(value: object) -> bool:
    """A TOML integer: `true` is a bool, which Python would take for 1."""
    return isinstance(value, int) and not isinstance(value, bool)


def _entries(path: Path, key: str, data: dict) -> list[tuple[int, dict]]:
    """The [[key]] tables of the map, numbered; anything else (`register = [1]`) is refused here,
    before a field of it is read."""
    entries = data.get(key, [])
    if not isinstance(entries, list):
        raise RegisterMapError(f"{path}: {key} = {entries!r}, expected [[{key}]] tables")
    for index, entry in enumerate(entries):
        if not isinstance(entry, dict):
            raise RegisterMapError(f"{path}: {key}[{index}] = {entry!r}, expected a [[{key}]] table")
    return list(enumerate(entries))


def _text(where: str, key: str, entry: dict, default: str | None = None) -> str:
    """entry[key] as a string (`default` when absent; None: the key is required)."""
    if default is None:
        _missing(where, key, entry, "a string")
    value = entry.get(key, default)
    if not isinstance(value, str):
        raise RegisterMapError(f"{where}: {key} = {value!r}, expected a string")
    return value


def _class_name(enum_name: str) -> str:
    return "".join(part.capitalize() for part in enum_name.split("_"))


def _entry_name(where: str, key: str, entry: dict) -> str:
    _missing(where, "name", entry, "an identifier (letters, digits, _)")
    name = entry["name"]
    if not isinstance(name, str) or not name.isidentifier():
        raise RegisterMapError(f"{where}: {key}.name = {name!r}, expected an identifier (letters, digits, _)")
    return name


def _bit(path: Path, index: int, entry: dict) -> Bit:
    key = f"bit[{index}]"
    where = f"{path}: {key} ({entry.get('name', '?')})"
    _known_keys(where, "", entry, BIT_KEYS)
    name = _entry_name(where, key, entry)
    _missing(where, "bit", entry, "an integer 0..15 (a bit of a uint16)")
    bit = entry["bit"]
    if not _is_int(bit) or not 0 <= bit <= 15:
        raise RegisterMapError(f"{where}: {key}.bit = {bit!r}, expected an integer 0..15 (a bit of a uint16)")
    return Bit(name=name, bit=bit, description=_text(where, "description", entry, ""))


def _enum(path: Path, enum_name: str, entries: object) -> list[EnumValue]:
    if not isinstance(entries, list) or not entries:
        raise RegisterMapError(
            f"{path}: enum.{enum_name} = {entries!r}, expected [[enum.{enum_name}]] entries"
        )
    values: list[EnumValue] = []
    seen_values: dict[int, str] = {}
    for index, entry in enumerate(entries):
        key = f"enum.{enum_name}[{index}]"
        if not isinstance(entry, dict):
            raise RegisterMapError(f"{path}: {key} = {entry!r}, expected an [[enum.{enum_name}]] table")
        where = f"{path}: {key} ({entry.get('name', '?')})"
        _known_keys(where, "", entry, ENUM_KEYS)
        name = _entry_name(where, key, entry)
        _missing(where, "value", entry, "an integer 0..65535")
        value = entry["value"]
        if not _is_int(value) or not 0 <= value <= 65535:
            raise RegisterMapError(f"{where}: {key}.value = {value!r}, expected an integer 0..65535")
        if value in seen_values:
            raise RegisterMapError(
                f"{where}: {key}.value = {value}, expected a value not used by another entry "
                f"(already {seen_values[value]!r})"
            )
        if name in {v.name for v in values}:
            raise RegisterMapError(
                f"{where}: {key}.name = {name!r}, expected a name not used twice in enum.{enum_name}"
            )
        seen_values[value] = name
        description = _text(where, "description", entry, "")
        values.append(EnumValue(value=value, name=name, description=description))
    return values


def _register(path: Path, index: int, entry: dict) -> Register:
    where = f"{path}: register[{index}] ({entry.get('name', '?')})"
    _known_keys(where, "", entry, REGISTER_KEYS)
    for key, expected in REQUIRED_REGISTER_KEYS.items():
        _missing(where, key, entry, expected)
    name = _entry_name(where, f"register[{index}]", entry)
    kind = entry["type"]
    if not isinstance(kind, str) or kind not in REGISTER_TYPES:  # a list is unhashable
        raise RegisterMapError(f"{where}: type = {kind!r}, expected one of {sorted(REGISTER_TYPES)}")
    if entry["access"] not in ("r", "w"):
        raise RegisterMapError(f"{where}: access = {entry['access']!r}, expected 'r' or 'w'")
    address = entry["address"]
    if not _is_int(address) or not 0 <= address <= 65534:
        raise RegisterMapError(f"{where}: address = {address!r}, expected an integer 0..65534")
    if "enum" in entry and "max" in entry:
        raise RegisterMapError(f"{where}: both enum and max, expected one (an enumeration sets the values)")
    top = entry.get("max", 65535)
    if not _is_int(top) or not 0 <= top <= 65535:
        raise RegisterMapError(f"{where}: max = {top!r}, expected an integer 0..65535")
    return Register(
        name=name,
        address=address,
        type=kind,
        access=entry["access"],
        description=_text(where, "description", entry),
        block=_text(where, "block", entry, ""),
        unit=_text(where, "unit", entry, ""),
        max=top,
        enum=_text(where, "enum", entry, ""),
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
# The enumeration values the code names (edge.plc.bank, edge.supervisor, simcell).
REQUIRED_ENUMS = {
    "mode": ["idle", "run", "calibration"],
    "pick_outcome": ["not_reported", "picked", "failed"],
    "error": [
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
    ],
}
# Registers whose values the code interprets through an enumeration.
REQUIRED_REGISTER_ENUMS = {
    "mode": "mode",
    "error_code": "error",
    "result_error": "error",
    "pick_outcome": "pick_outcome",
}


def _check_layout(
    path: Path, registers: list[Register], bits: list[Bit], enums: dict[str, list[EnumValue]]
) -> None:
    names = {r.name for r in registers}
    if len(names) != len(registers):
        twice = sorted({r.name for r in registers if [s.name for s in registers].count(r.name) > 1})
        raise RegisterMapError(f"{path}: register names {twice} are used twice, expected distinct names")
    groups = [("register", names, REQUIRED_REGISTERS), ("bit", {b.name for b in bits}, REQUIRED_BITS)]
    groups += [(f"enum.{e}", {v.name for v in enums.get(e, [])}, need) for e, need in REQUIRED_ENUMS.items()]
    for group, have, need in groups:
        missing = [n for n in need if n not in have]
        if missing:
            raise RegisterMapError(f"{path}: missing {group} entries {missing}")
    for reg in registers:
        expected = REQUIRED_REGISTER_ENUMS.get(reg.name)
        if reg.enum and reg.enum not in enums:
            raise RegisterMapError(
                f"{path}: register {reg.name}: enum = {reg.enum!r}, expected one of {sorted(enums)}"
            )
        if expected and reg.enum != expected:
            raise RegisterMapError(f"{path}: register {reg.name}: enum = {reg.enum!r}, expected {expected!r}")
    used: dict[int, str] = {}
    for reg in registers:
        for address in range(reg.address, reg.address + reg.size):
            if address in used:
                raise RegisterMapError(
                    f"{path}: register {reg.name} overlaps {used[address]} at address {address}"
                )
            used[address] = reg.name
    result = sorted((r for r in registers if r.block == "result"), key=lambda r: r.address)
    if not result:
        raise RegisterMapError(f'{path}: no register has block = "result", expected the result block')
    if result[-1].name != "sequence_id":
        last = result[-1]
        raise RegisterMapError(
            f'{path}: register {last.name} (address {last.address}) ends the block = "result", '
            "expected sequence_id last (the PLC reads it to know the block is complete)"
        )
    seen: dict[int, str] = {}
    for index, b in enumerate(bits):
        if b.bit in seen:
            raise RegisterMapError(
                f"{path}: bit[{index}] ({b.name}): bit = {b.bit}, expected a bit not used by another "
                f"status bit (already {seen[b.bit]!r})"
            )
        seen[b.bit] = b.name
    if len({b.name for b in bits}) != len(bits):
        twice = sorted({b.name for b in bits if [c.name for c in bits].count(b.name) > 1})
        raise RegisterMapError(f"{path}: bit names {twice} are used twice, expected distinct names")
