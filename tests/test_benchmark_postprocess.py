"""The post-processing benchmark times equal work only if its OpenCV + NumPy version scores as
the appliance does: it checks that before timing, and this test keeps that check true for every
score rule (it had drifted when "strict" became the default)."""

from __future__ import annotations

import dataclasses

import pytest

pytest.importorskip("edge._hotpath")

from benchmarks.postprocess import check_same_result  # noqa: E402
from edge.ranking import SCORES, RankingParams  # noqa: E402
from mikado.flat_piles import make_pile  # noqa: E402


@pytest.mark.parametrize("score", SCORES)
def test_the_user_version_scores_like_the_appliance(score: str) -> None:
    params = dataclasses.replace(RankingParams(), score=score)
    for seed in (1000, 1001):
        pile = make_pile(seed, 160, 160, 12, noise=0.03)
        check_same_result(pile.boundaries, pile.occlusions, params)


def test_the_check_fails_when_the_scores_differ(monkeypatch: pytest.MonkeyPatch) -> None:
    import benchmarks.postprocess as bench

    pile = make_pile(1000, 160, 160, 12, noise=0.03)
    strict, thesis = (dataclasses.replace(RankingParams(), score=s) for s in ("strict", "thesis"))
    original = bench.rank_opencv_numpy
    monkeypatch.setattr(bench, "rank_opencv_numpy", lambda y, z, p: original(y, z, thesis))
    with pytest.raises(bench.NotEqualWork, match="scores differ"):
        bench.check_same_result(pile.boundaries, pile.occlusions, strict)


@pytest.mark.parametrize("noise", ["-0.03", "nan", "inf", "lots"])
def test_a_noise_level_that_is_no_level_is_refused(noise: str, capsys: pytest.CaptureFixture) -> None:
    """The maps get noise only above 0 (mikado.flat_piles): -0.03 or NaN ran ideal maps under a
    header that said "noise -0.03" / "noise nan"."""
    import benchmarks.postprocess as bench

    with pytest.raises(SystemExit) as stop:
        bench.main(["--noise", noise, "--frames", "1", "--repeats", "1", "--size", "32"])
    assert stop.value.code == 2
    err = capsys.readouterr().err
    assert "argument --noise" in err and "Traceback" not in err


def test_noise_zero_is_ideal_maps_and_runs(capsys: pytest.CaptureFixture) -> None:
    import benchmarks.postprocess as bench

    assert bench.main(["--noise", "0", "--frames", "1", "--repeats", "1", "--size", "48", "--instances", "3",
                       "--all-cores"]) == 0  # fmt: skip
    out = capsys.readouterr().out
    assert "noise 0.0" in out and "| binpick rank() (native, one call) |" in out


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (lambda r: {**r, "grasp": (r["grasp"][0] + 2.0, r["grasp"][1])}, "grasps differ by 2 px"),
        (
            lambda r: {
                **r,
                "candidates": [{**c, "angle_deg": c["angle_deg"] + 5.0} for c in r["candidates"]],
            },
            "axes differ by 5 deg",
        ),
    ],
)
def test_the_check_fails_when_the_grasp_or_the_axes_differ(
    monkeypatch: pytest.MonkeyPatch, change, message
) -> None:
    """Only candidates and scores were compared (by `assert`, gone under `python -O`): a user
    version whose grasp or axes were wrong would have been timed as equal work."""
    import benchmarks.postprocess as bench

    pile = make_pile(1000, 160, 160, 12, noise=0.03)
    original = bench.rank_opencv_numpy
    monkeypatch.setattr(bench, "rank_opencv_numpy", lambda y, z, p: change(original(y, z, p)))
    with pytest.raises(bench.NotEqualWork, match=message):
        bench.check_same_result(pile.boundaries, pile.occlusions, RankingParams())
