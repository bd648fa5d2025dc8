"""benchmarks/cycle.py's speed-up column: a ratio of equal work. A cycle that failed before the
network (camera lost, bin missing, calibration) took a few milliseconds and did none of the work
the backends differ in; counting it made a backend whose cycles failed look fast."""

from __future__ import annotations

from types import SimpleNamespace

from benchmarks.cycle import speedup_cell, summarise


def outcome(error: str = "ok", **stages_ms: float) -> SimpleNamespace:
    return SimpleNamespace(error=error, stages_ms=stages_ms)


def ran(inference_ms: float) -> SimpleNamespace:
    return outcome(capture=500.0, preprocess=5.0, inference=inference_ms, ranking=1.0)


def failed_at_capture() -> SimpleNamespace:
    return outcome("camera_lost", capture=2.0)


def test_the_speedup_is_the_ratio_of_the_p50_without_capture() -> None:
    reference = summarise([ran(394.0), ran(394.0), ran(394.0)])
    row = summarise([ran(94.0), ran(94.0), ran(94.0)])
    assert speedup_cell(reference, row) == "4.00x"
    assert speedup_cell(reference, reference) == "1.00x"


def test_cycles_that_never_ran_the_network_are_left_out_of_the_speedup() -> None:
    reference = summarise([ran(394.0)] * 3)
    # two of three cycles failed at capture: their p50 without capture would be ~0 ms
    row = summarise([ran(194.0), failed_at_capture(), failed_at_capture()])
    assert row["compute"][0] == 0.0  # what the column divided by before
    assert speedup_cell(reference, row) == "2.00x (over the cycles that ran the network: 1 of 3)"


def test_a_row_with_no_cycle_through_the_network_gets_no_ratio() -> None:
    reference = summarise([ran(394.0)] * 2)
    row = summarise([failed_at_capture(), failed_at_capture()])
    assert speedup_cell(reference, row) == "– (no cycle ran the network)"
    assert speedup_cell(row, reference) == "– (no cycle ran the network)"
