"""The appliance on Python 3.10, JetPack 6's system Python (docs/appliance.md, "TensorRT").

The build machines have 3.11 only, so 3.10 is checked from here: vermin finds nothing in the
appliance's code (`edge/`, `binpick_core/`) that needs a newer Python; the TOML reader takes tomli
where 3.10 has no tomllib and reads the shipped files as tomllib does; the factory's commands
refuse 3.10 in one line before importing anything.
"""

from __future__ import annotations

import importlib.util
import subprocess
import sys
from pathlib import Path

import pytest
import tomllib

from edge import toml_text
from edge.cli import factory_python_error, main

ROOT = Path(__file__).resolve().parents[1]
SHIPPED_TOML = sorted((ROOT / "firmware_config").glob("*.toml"))


def test_the_appliances_code_needs_nothing_newer_than_python_3_10():
    vermin = str(Path(sys.executable).with_name("vermin"))
    proc = subprocess.run(
        [vermin, "--no-tips", "--violations", "--eval-annotations", "-t=3.10-", "edge", "binpick_core"],
        capture_output=True, text=True, timeout=240, cwd=ROOT,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "Minimum required versions: 3.10" in proc.stdout or "Minimum required versions: 3.0" in proc.stdout


def test_without_tomllib_the_reader_takes_tomli_and_reads_the_shipped_files_alike(monkeypatch):
    monkeypatch.setattr(sys, "version_info", (3, 10, 12, "final", 0))
    monkeypatch.setitem(sys.modules, "tomllib", None)  # `import tomllib` fails as on 3.10
    spec = importlib.util.spec_from_file_location("toml_text_310", Path(toml_text.__file__))
    as_on_310 = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(as_on_310)
    assert as_on_310.loads.__module__.startswith("tomli")
    assert len(SHIPPED_TOML) >= 4
    for path in SHIPPED_TOML:
        text = path.read_text(encoding="utf-8")
        assert as_on_310.loads(text) == tomllib.loads(text), path
    with pytest.raises(ValueError, match="line 1"):
        as_on_310.loads("[camera\n")


def test_the_factorys_commands_refuse_python_3_10_in_one_line(monkeypatch, capsys):
    assert factory_python_error("edge.commands.run", (3, 10, 12)) is None
    assert factory_python_error("mikado.commands.mikado", (3, 11, 7)) is None
    assert "needs Python 3.11 or newer, this is 3.10" in factory_python_error(
        "bicameral.commands.train", (3, 10)
    )
    monkeypatch.setattr(sys, "version_info", (3, 10, 12, "final", 0))
    monkeypatch.delitem(sys.modules, "simcell.commands.simcell", raising=False)
    assert main(["simcell", "run", "--help"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert err == [
        "binpick simcell: error: the model factory needs Python 3.11 or newer, this is 3.10; "
        "the appliance's commands (run, detect, calibrate, bin, hash-password, registers-doc) run here"
    ]
    assert "simcell.commands.simcell" not in sys.modules  # refused before importing it
