"""edge.ranking.selection: the one rule the appliance and the simulated cell's ceiling choose by."""

import numpy as np
import pytest

pytest.importorskip("edge._hotpath")

from edge.ranking import RankingParams, grasp_point, rank  # noqa: E402
from edge.ranking.selection import ranked_options, select_grasp  # noqa: E402

# The thesis score: these scenes are built so the area term decides the order.
PARAMS = RankingParams(min_area=10, max_area=np.inf, margin=3.0, score="thesis")


def _two_regions() -> tuple[np.ndarray, np.ndarray]:
    """A large L-shaped region (its centroid is outside it) left, a small square right."""
    y = np.ones((64, 96), np.float32)
    y[4:60, 4:14] = 0.0
    y[50:60, 4:44] = 0.0  # L: centroid outside
    y[20:40, 60:80] = 0.0
    return y, np.zeros_like(y)


def test_every_option_uses_the_rankings_grasp_rule():
    y, z = _two_regions()
    ranking = rank(y, z, PARAMS, return_labels=True)
    options = list(ranked_options(ranking, y, z, PARAMS, prefer_occluding_side=False))
    assert [o.candidate_index for o in options] == list(range(len(ranking.candidates)))
    for option, candidate in zip(options, ranking.candidates, strict=True):
        u, v, _ = grasp_point(ranking.labels, candidate, PARAMS.margin)
        assert (option.u, option.v) == pytest.approx((u, v))
        assert ranking.labels[round(option.v), round(option.u)] == candidate.label


def test_roi_skips_to_the_next_candidates_own_grasp():
    y, z = _two_regions()
    ranking = rank(y, z, PARAMS, return_labels=True)
    best = ranking.candidates[0]
    assert best.area > 400  # the L wins on area
    roi = np.array([[50, 0], [95, 0], [95, 63], [50, 63]], np.float32)  # the right half only
    option = select_grasp(ranking, y, z, PARAMS, False, roi)
    assert option is not None and option.candidate_index == 1
    assert 60 <= option.u < 80 and 20 <= option.v < 40
    nowhere = np.array([[90, 0], [95, 0], [95, 3], [90, 3]], np.float32)
    assert select_grasp(ranking, y, z, PARAMS, False, nowhere) is None


def test_place_moves_options_and_candidates_with_a_place_go_first():
    from dataclasses import replace

    y, z = _two_regions()
    ranking = rank(y, z, PARAMS, return_labels=True)
    small = ranking.candidates[1].label  # the square: the only candidate with a place

    def place(option, label):
        return replace(option, u=70.0, v=30.0, method="suction") if label == small else None

    option = select_grasp(ranking, y, z, PARAMS, False, None, place=place)
    assert option.candidate_index == 1 and (option.u, option.v, option.method) == (70.0, 30.0, "suction")
    # nothing has a place: exactly the plain order and grasp rule
    plain = select_grasp(ranking, y, z, PARAMS, False, None)
    assert select_grasp(ranking, y, z, PARAMS, False, None, place=lambda o, label: None) == plain
    # a recently failed grasp on the placed candidate: a fresh candidate without a place goes first
    failed = select_grasp(ranking, y, z, PARAMS, False, None, avoid=[(70.0, 30.0)], avoid_radius=5.0,
                          place=place)  # fmt: skip
    assert failed.candidate_index == 0 and failed.method != "suction"
    # the keep rule judges the moved point
    refused = select_grasp(ranking, y, z, PARAMS, False, None, place=place,
                           keep=lambda u, v, label: (u, v) != (70.0, 30.0))  # fmt: skip
    assert refused == plain
