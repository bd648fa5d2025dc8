"""benchmarks/boundary_metrics.py times our boundary scoring against pyEdgeEval: each side's
first run (imports, first-call set-up) stays out of the figure, and the two alternate so that
other load hits both sides of the ratio alike. It timed all of ours, cold first run included,
then all of theirs."""

from __future__ import annotations

import pytest

from benchmarks.boundary_metrics import time_side_by_side


class Clock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def scorer(clock: Clock, calls: list, name: str, first_s: float, then_s: float):
    """A fake scorer: its first call costs `first_s` on the clock, every later one `then_s`."""

    def run() -> tuple[float, float]:
        clock.now += first_s if name not in calls else then_s
        calls.append(name)
        return (0.5, 0.4)

    return run


def test_the_first_run_of_each_side_is_not_timed() -> None:
    clock, calls = Clock(), []
    fns = {"ours": scorer(clock, calls, "ours", 5.0, 0.1), "theirs": scorer(clock, calls, "theirs", 9.0, 2.0)}
    timed = time_side_by_side(fns, repeats=1, clock=clock)
    assert timed["ours"] == (pytest.approx(0.1), (0.5, 0.4))
    assert timed["theirs"][0] == pytest.approx(2.0)


def test_the_two_sides_alternate() -> None:
    clock, calls = Clock(), []
    fns = {"ours": scorer(clock, calls, "ours", 0.1, 0.1), "theirs": scorer(clock, calls, "theirs", 1.0, 1.0)}
    time_side_by_side(fns, repeats=3, clock=clock)
    assert calls == ["ours", "theirs"] * 4  # the warm-up round, then three timed rounds


@pytest.mark.parametrize("size", ["16x16", "44x200", "200x44", "0x0", "160"])
def test_a_size_the_images_cannot_be_drawn_at_is_one_line(size: str, capsys: pytest.CaptureFixture) -> None:
    """16x16 to 44x44 passed the check (16 or more) and ended in numpy's 'low >= high' traceback
    when the ellipses were drawn."""
    from benchmarks.boundary_metrics import main

    with pytest.raises(SystemExit) as stop:
        main(["--size", size])
    assert stop.value.code == 2
    assert f"--size {size}" in capsys.readouterr().err


def test_the_smallest_size_draws() -> None:
    import numpy as np

    from benchmarks.boundary_metrics import MIN_SIDE, sample

    pred, gt = sample(np.random.default_rng(0), MIN_SIDE, MIN_SIDE)
    assert pred.shape == gt.shape == (MIN_SIDE, MIN_SIDE)
