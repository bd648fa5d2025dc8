"""Benchmarks that render Mikado piles refuse a size Mikado cannot render (under 16 px) when the
arguments are read: ranking_domains --size 8 and mikado_throughput --size 8 ended in
mikado.pile's ValueError traceback (ranking_domains after the flat domains had run)."""

from __future__ import annotations

import importlib

import pytest

pytest.importorskip("mujoco")


@pytest.mark.parametrize("module", ["benchmarks.ranking_domains", "benchmarks.mikado_throughput"])
def test_a_size_below_mikados_least_is_one_line(
    module: str, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture
) -> None:
    bench = importlib.import_module(module)

    def must_not_run(*args, **kwargs):
        raise AssertionError("the run started with a size Mikado cannot render")

    # each run's first step: never reached when the size is refused
    monkeypatch.setattr(bench, "evaluate" if module.endswith("ranking_domains") else "machine", must_not_run)
    with pytest.raises(SystemExit) as stop:
        bench.main(["--size", "8"])
    assert stop.value.code == 2
    err = capsys.readouterr().err.strip().splitlines()[-1]
    assert "argument --size: 8: expected 16 or more" in err


def test_the_least_size_ranks(capsys: pytest.CaptureFixture) -> None:
    from benchmarks.ranking_domains import main

    assert main(["--size", "16", "--frames", "1", "--domains", "mikado", "packages"]) == 0
    assert "| mikado | 1 |" in capsys.readouterr().out
