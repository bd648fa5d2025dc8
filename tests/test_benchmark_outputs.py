"""The benchmarks that write their figures to a file at the end of a run (mikado_throughput
--json, status_page --json, depth_cue --out, real_bins --json) check that file at the start:
a run of minutes ended in a FileNotFoundError traceback when the file's folder was missing, or
an IsADirectoryError when it named a folder, with the JSON lost. Now: one line naming the option
(exit 2) before any work, and a missing folder is made."""

from __future__ import annotations

import argparse
import importlib
from pathlib import Path

import pytest

from benchmarks.arguments import output_file, write_output


def test_output_file_refuses_a_folder_and_a_path_under_a_file(tmp_path: Path) -> None:
    (tmp_path / "a_file").write_text("x")
    for bad in (str(tmp_path), str(tmp_path / "a_file" / "out.json"), ""):
        with pytest.raises(argparse.ArgumentTypeError):
            output_file(bad)
    target = output_file(str(tmp_path / "new" / "deeper" / "out.json"))
    write_output(target, "{}\n")
    assert target.read_text() == "{}\n"


# module, its output option, the function its run starts with (replaced: never reached here),
# the other arguments a run needs
SCRIPTS = [
    ("benchmarks.mikado_throughput", "--json", "throughput", []),
    ("benchmarks.status_page", "--json", "machine_info", []),
    ("benchmarks.depth_cue", "--out", "OnnxPredictor", ["--data", "."]),
    ("benchmarks.real_bins", "--json", "load_manifest", []),
]


@pytest.mark.parametrize(("module", "option", "work", "extra"), SCRIPTS, ids=[s[0] for s in SCRIPTS])
def test_a_bad_output_file_is_refused_before_the_run(
    module: str, option: str, work: str, extra: list[str], tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture,
) -> None:  # fmt: skip
    if module == "benchmarks.mikado_throughput":
        pytest.importorskip("mujoco")
    bench = importlib.import_module(module)
    if module == "benchmarks.status_page":  # the appliance starts before anything is measured
        import edge.supervisor

        bench, work = edge.supervisor, "Supervisor"

    def must_not_run(*args, **kwargs):
        raise AssertionError("the run started before the output file was checked")

    monkeypatch.setattr(bench, work, must_not_run)
    (tmp_path / "a_file").write_text("x")
    for bad in (tmp_path, tmp_path / "a_file" / "out.json"):
        with pytest.raises(SystemExit) as stop:
            importlib.import_module(module).main([*extra, option, str(bad)])
        assert stop.value.code == 2
        err = capsys.readouterr().err.strip().splitlines()[-1]
        assert f"argument {option}" in err and "Traceback" not in err
