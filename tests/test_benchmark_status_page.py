"""benchmarks.status_page: phases that finished no cycle are refused in one line, not summarised."""

from __future__ import annotations

from benchmarks.status_page import phases_problem


def phase(repeat: int, viewers: int, p50: float | None) -> dict:
    return {"repeat": repeat, "viewers": viewers, "p50_ms": p50}


def test_phases_without_cycles_on_one_side_are_named():
    """A --phase-s shorter than one cycle left one side without a median: the summary ended in
    statistics' 'no median for empty data' traceback after the whole run."""
    problem = phases_problem([phase(0, 0, 120.0), phase(0, 5, None)], 5, 0.05)
    assert problem is not None and "with 5 viewer(s)" in problem and "--phase-s 0.05" in problem
    assert "0 viewer(s)" in phases_problem([phase(0, 0, None), phase(0, 5, 130.0)], 5, 0.05)


def test_sides_timed_only_in_different_repeats_give_no_pair():
    problem = phases_problem(
        [phase(0, 0, 120.0), phase(0, 3, None), phase(1, 0, None), phase(1, 3, 125.0)], 3, 1
    )
    assert problem is not None and "no repeat" in problem


def test_phases_with_a_timed_pair_pass():
    assert (
        phases_problem([phase(0, 0, 120.0), phase(0, 3, 125.0), phase(1, 0, None), phase(1, 3, 126.0)], 3, 30)
        is None
    )
