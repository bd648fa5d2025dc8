"""The register map is one source: loads, is consistent, and docs/registers.md matches it."""

from __future__ import annotations

import os
import resource
import subprocess
import sys
from pathlib import Path

import pytest

from edge.plc.bank import PublishedResult, RegisterBank
from edge.plc.register_map import RegisterMap, RegisterMapError, float_to_words, words_to_float

ROOT = Path(__file__).resolve().parents[1]


def test_registers_doc_is_generated_from_the_map_and_up_to_date():
    proc = subprocess.run(
        [sys.executable, "-m", "edge", "registers-doc", "--check"],
        capture_output=True,
        text=True,
        timeout=60,
        cwd=ROOT,
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr


def test_every_register_of_the_issue_is_in_the_map():
    m = RegisterMap.load()
    wanted = (
        "protocol_version heartbeat mode status error_code trigger_id trigger_ack sequence_id "
        "x y z angle score candidate_count extent_major extent_minor latency model_id"
    )
    for name in wanted.split():
        assert name in m.by_name
    start, count = m.block("result")
    assert m["sequence_id"].address == start + count - 1  # written last, read last


def test_float32_words_follow_the_word_order():
    assert float_to_words(1.0, "ABCD") == (0x3F80, 0x0000)
    assert float_to_words(1.0, "CDAB") == (0x0000, 0x3F80)
    for order in ("ABCD", "CDAB"):
        assert words_to_float(*float_to_words(-87.25, order), order) == -87.25
    assert RegisterMap.load().float_to_words(1.0) == (0x3F80, 0x0000)  # the map states ABCD


def test_bank_decodes_what_it_published():
    bank = RegisterBank(RegisterMap.load())
    bank.publish(PublishedResult(request_id=3, error=0, x=1.5, y=2.5, z=-3.0, angle=45.0, score=0.5))
    snap = bank.snapshot()
    assert (snap["x"], snap["y"], snap["z"], snap["angle"], snap["request_id"]) == (1.5, 2.5, -3.0, 45.0, 3)


@pytest.mark.parametrize(
    ("edit", "message"),
    [
        (
            lambda t: t.replace('name = "heartbeat"\naddress = 1', 'name = "heartbeat"\naddress = 0'),
            "overlaps",
        ),
        (lambda t: t.replace('type = "float32"', 'type = "float64"', 1), "type = 'float64'"),
        (
            lambda t: t.replace('name = "latency"', 'name = "latency_ms"'),
            "missing register entries ['latency']",
        ),
        (lambda t: t.replace('access = "w"', 'access = "rw"', 1), "access = 'rw'"),
        (lambda t: t + "\n[[register]\n", "not valid TOML"),
        (
            lambda t: t.replace('float_word_order = "ABCD"', 'float_word_order = "BADC"'),
            "map.float_word_order = 'BADC', expected one of 'ABCD' (high word first (ABCD)), 'CDAB'",
        ),
        (
            lambda t: t.replace('value = 2\nname = "calibration"', 'value = 1\nname = "calibration"'),
            "enum.mode[2].value = 1, expected a value not used by another entry (already 'run')",
        ),
        (
            lambda t: t.replace('name = "triggered"\nbit = 6', 'name = "triggered"\nbit = 16'),
            "bit[6].bit = 16, expected an integer 0..15",
        ),
        (
            lambda t: t.replace('name = "triggered"\nbit = 6', 'name = "triggered"\nbit = 1'),
            "bit[6] (triggered): bit = 1, expected a bit not used by another status bit (already 'busy')",
        ),
        (
            lambda t: t.replace('name = "failed"', 'name = "dropped"'),
            "missing enum.pick_outcome entries ['failed']",
        ),
        (lambda t: t.replace('enum = "mode"', 'enum = "modes"'), "enum = 'modes', expected one of"),
    ],
)
def test_a_broken_map_is_rejected_with_a_message_naming_the_problem(tmp_path, edit, message):
    text = (ROOT / "firmware_config" / "registers.toml").read_text()
    bad = tmp_path / "registers.toml"
    bad.write_text(edit(text))
    with pytest.raises(RegisterMapError, match=None) as err:
        RegisterMap.load(bad)
    assert str(bad) in str(err.value) and message in str(err.value), str(err.value)


def test_the_enumerations_are_typed_and_read_from_the_map():
    m = RegisterMap.load()
    assert [(v.name, int(v)) for v in m.mode] == [("idle", 0), ("run", 1), ("calibration", 2)]
    assert (int(m.pick_outcome.picked), int(m.pick_outcome.failed)) == (1, 2)
    assert m.error_name(m.error_code("no_candidate")) == "no_candidate"
    assert m.error_name(999) == "unknown(999)"
    assert m.status.busy == m.bit_mask("busy") == 1 << m.bits["busy"].bit


SHIPPED = (ROOT / "firmware_config" / "registers.toml").read_text()


@pytest.mark.parametrize(
    ("text", "message"),
    [
        # wrong shapes and types: tracebacks (AttributeError, ValueError, TypeError) before
        (
            'register = [1]\n[map]\nfloat_word_order = "ABCD"\n',
            "register[0] = 1, expected a [[register]] table",
        ),
        ('register = 3\n[map]\nfloat_word_order = "ABCD"\n', "register = 3, expected [[register]] tables"),
        ('bit = ["ready"]\n[map]\nfloat_word_order = "ABCD"\n', "bit[0] = 'ready', expected a [[bit]] table"),
        ("map = 1\n", "map = 1, expected a [map] table"),
        ('[map]\nfloat_word_order = ["ABCD"]\n', "map.float_word_order = ['ABCD'], expected one of"),
        (
            SHIPPED.replace("protocol_version = 2", 'protocol_version = "two"'),
            "map.protocol_version = 'two', expected an integer 0..65535",
        ),
        (SHIPPED.replace('type = "uint16"', 'type = ["uint16"]', 1), "type = ['uint16'], expected one of"),
        (
            '[map]\nfloat_word_order = "ABCD"\n[enum]\nmode = [1]\n',
            "enum.mode[0] = 1, expected an [[enum.mode]] table",
        ),
        (
            SHIPPED.replace('description = "Version', "description = 3 #", 1),
            "description = 3, expected a string",
        ),
        (
            SHIPPED.replace('name = "protocol_version"', "name = 7", 1),
            "register[0].name = 7, expected an identifier",
        ),
        # accepted before, though no PLC could ever see them
        (
            SHIPPED.replace(
                'name = "protocol_version"\naddress = 0', 'name = "protocol_version"\naddress = true'
            ),
            "address = True, expected an integer 0..65534",
        ),
        (
            SHIPPED.replace("protocol_version = 2", "protocol_version = -7"),
            "map.protocol_version = -7, expected an integer 0..65535 (a uint16)",
        ),
        (SHIPPED.replace("protocol_version = 2", "protocol_version = true"), "map.protocol_version = True"),
        (
            SHIPPED.replace('name = "heartbeat"', 'name = "protocol_version"', 1),
            "register names ['protocol_version'] are used twice",
        ),
        (SHIPPED.replace('block = "result"', 'block = ""'), 'no register has block = "result"'),
        # unknown keys and tables: silently ignored before (a misspelt `maximum` dropped the limit)
        (
            SHIPPED.replace('name = "protocol_version"\n', 'name = "protocol_version"\nscale = 10\n', 1),
            "register[0] (protocol_version): unknown key 'scale' (known: name, address, type, access, "
            "description, block, unit, max, enum)",
        ),
        (
            SHIPPED.replace('name = "trigger_id"\n', 'name = "trigger_id"\nmaximum = 5\n', 1),
            "register[5] (trigger_id): unknown key 'maximum' (known: ",
        ),
        (
            SHIPPED.replace('float_word_order = "ABCD"', 'float_word_order = "ABCD"\nfoo = 1'),
            "unknown key 'map.foo' (known: protocol_version, float_word_order)",
        ),
        (
            SHIPPED + '\n[[registr]]\nname = "spare"\naddress = 60\n',
            "unknown table 'registr' (known: map, register, bit, enum)",
        ),
        ("version = 3\n" + SHIPPED, "unknown key 'version' (known: map, register, bit, enum)"),
        (
            SHIPPED.replace('name = "ready"\nbit = 0\n', 'name = "ready"\nbit = 0\nmask = 1\n'),
            "bit[0] (ready): unknown key 'mask' (known: name, bit, description)",
        ),
        (
            SHIPPED.replace('value = 0\nname = "idle"\n', 'value = 0\nname = "idle"\nlabel = "Idle"\n'),
            "enum.mode[0] (idle): unknown key 'label' (known: value, name, description)",
        ),
        # not a register map at all: "map.float_word_order = None" before
        ("", "no [map] table: not a register map"),
        ((ROOT / "firmware_config" / "embedded.toml").read_text(), "no [map] table: not a register map"),
        # a required key left out: "= None, expected ..." before
        (
            SHIPPED.replace('float_word_order = "ABCD"', ""),
            "map.float_word_order is missing, expected one of 'ABCD'",
        ),
        (
            SHIPPED.replace('name = "protocol_version"\naddress = 0\n', 'name = "protocol_version"\n'),
            "register[0] (protocol_version): address is missing, expected an integer 0..65534",
        ),
        (
            SHIPPED.replace('name = "protocol_version"\n', "", 1),
            "register[0] (?): name is missing, expected an identifier",
        ),
        (
            SHIPPED.replace('name = "ready"\nbit = 0\n', 'name = "ready"\n'),
            "bit[0] (ready): bit is missing, expected an integer 0..15",
        ),
        (
            SHIPPED.replace('value = 0\nname = "idle"\n', 'name = "idle"\n'),
            "enum.mode[0] (idle): value is missing, expected an integer 0..65535",
        ),
        # a description that is no string: turned into one with str() before
        (
            SHIPPED.replace('bit = 0\ndescription = "Initialised', "bit = 0\ndescription = 7 #"),
            "bit[0] (ready): description = 7, expected a string",
        ),
        # layout messages that named no value
        (
            SHIPPED.replace(
                'access = "r"\nblock = "result"\ndescription = "Increments',
                'access = "r"\ndescription = "Increments',
            ),
            'register latency (address 27) ends the block = "result", expected sequence_id last',
        ),
        (
            SHIPPED.replace('name = "bin_empty"', 'name = "ready"'),
            "bit names ['ready'] are used twice, expected distinct names",
        ),
    ],
)
def test_a_map_of_the_wrong_shape_is_refused_in_one_line(tmp_path, text, message):
    bad = tmp_path / "registers.toml"
    bad.write_text(text)
    with pytest.raises(RegisterMapError) as err:
        RegisterMap.load(bad)
    assert str(bad) in str(err.value) and message in str(err.value), str(err.value)


def test_a_map_that_is_not_utf8_is_named(tmp_path):
    bad = tmp_path / "registers.toml"
    bad.write_bytes(SHIPPED.encode()[:100] + b"\xff\xfe binary")
    with pytest.raises(RegisterMapError, match=r"not a UTF-8 text file \(byte 0xff at offset 100\)") as err:
        RegisterMap.load(bad)
    assert str(bad) in str(err.value)


def registers_doc(*args: str | Path, **run) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "edge", "registers-doc", *map(str, args)],
        capture_output=True,
        text=True,
        timeout=60,
        cwd=ROOT,
        **run,
    )


def one_line(proc: subprocess.CompletedProcess, *needles: str) -> None:
    assert proc.returncode == 2, proc.stdout + proc.stderr
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("binpick registers-doc: error:"), proc.stderr
    for needle in needles:
        assert needle in lines[0], lines[0]


def test_registers_doc_names_a_broken_map_and_bad_output_paths(tmp_path):
    bad = tmp_path / "bad.toml"
    bad.write_text('register = [1]\n[map]\nfloat_word_order = "ABCD"\n')
    one_line(registers_doc("--map", bad, "--out", "-"), str(bad), "register[0] = 1")
    folder = tmp_path / "docs"
    folder.mkdir()
    one_line(registers_doc("--out", folder), f"--out {folder}: is a folder")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["bad.toml", "docs"]  # no docs.md.tmp left
    (tmp_path / "file").write_text("")
    one_line(registers_doc("--out", tmp_path / "file" / "x.md"), f"{tmp_path / 'file'} is a file")


def test_registers_doc_refuses_a_file_that_is_no_register_map(tmp_path):
    """The appliance config or an empty file: named as such, not 'map.float_word_order = None'."""
    config = ROOT / "firmware_config" / "embedded.toml"
    one_line(registers_doc("--map", config, "--out", "-"), str(config), "no [map] table: not a register map")
    empty = tmp_path / "empty.toml"
    empty.write_text("")
    one_line(registers_doc("--map", empty, "--out", "-"), str(empty), "no [map] table")
    spare = tmp_path / "r9.toml"
    spare.write_text(
        SHIPPED.replace('name = "protocol_version"\n', 'name = "protocol_version"\nscale = 10\n', 1)
    )
    one_line(
        registers_doc("--map", spare, "--out", "-"),
        f"{spare}: register[0] (protocol_version): unknown key 'scale'",
    )


def small_files_only() -> None:
    """In the child: a write past 1000 bytes fails with EFBIG (Python ignores SIGXFSZ)."""
    resource.setrlimit(resource.RLIMIT_FSIZE, (1000, 1000))


def test_registers_doc_writes_atomically_and_checks_any_file(tmp_path):
    out = tmp_path / "new" / "registers.md"
    proc = registers_doc("--out", out)
    assert proc.returncode == 0, proc.stderr
    assert out.read_text() == (ROOT / "docs" / "registers.md").read_text()
    assert registers_doc("--check", "--out", out).returncode == 0
    out.write_bytes(b"\xff\xfe not UTF-8")  # a traceback (UnicodeDecodeError) before: now just out of date
    proc = registers_doc("--check", "--out", out)
    assert proc.returncode == 1 and "is out of date" in proc.stdout, proc.stdout + proc.stderr
    # a write that fails half-way (the doc is larger than the file size limit) keeps the old file
    out.write_text("old doc\n")
    env = {**os.environ, "PYTHONDONTWRITEBYTECODE": "1"}
    proc = registers_doc("--out", out, preexec_fn=small_files_only, env=env)
    one_line(proc, f"--out {out}: cannot write it")
    assert out.read_text() == "old doc\n"
    assert [p.name for p in out.parent.iterdir()] == ["registers.md"]  # no temporary left behind
