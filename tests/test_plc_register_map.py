"""The register map is one source: loads, is consistent, and docs/registers.md matches it."""

from __future__ import annotations

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
