"""Occluding-side evidence (edge.ranking.occluding_side) and the appliance's preference for it.

The scene is the simulated cell's failure in miniature: one product on the bin floor, a boundary
band several pixels wide (a network's Y > alpha), and an occlusion map that is high on the
product's half of the band but not zero on the floor's half (the bundled model's Z > beta covers
both). The plain ranking then picks the floor (larger, same s1 or better); the evidence tells
the two apart without touching s1, s2 or the score.
"""

from __future__ import annotations

import numpy as np
import pytest

from edge.ranking import RankingParams, plan_grasp, rank
from edge.ranking.occluding_side import occluding_side_evidence

# The thesis score, whose area term lets the floor win here (the failure the preference exists for).
PARAMS = RankingParams(max_area=1.0 - 1e-9, min_area=16, score="thesis")


def _scene(dtype=np.float32):
    n = 96
    y = np.zeros((n, n), np.float32)
    z = np.zeros((n, n), np.float32)
    a, b = 30, 62  # the product's square [a, b)
    outer = np.zeros((n, n), bool)
    outer[a - 2 : b + 2, a - 2 : b + 2] = True
    inner = np.zeros((n, n), bool)
    inner[a + 2 : b - 2, a + 2 : b - 2] = True
    square = np.zeros((n, n), bool)
    square[a:b, a:b] = True
    band = outer & ~inner
    y[band] = 0.9
    z[band & square] = 0.8  # the product's half of the band: its occluding side
    z[band & ~square] = 0.3  # the floor's half: a network's blur, ground truth would be 0
    if dtype == np.uint8:
        return (y * 255).astype(np.uint8), (z * 255).astype(np.uint8)
    return y, z


@pytest.mark.parametrize("dtype", [np.float32, np.uint8])
def test_evidence_is_positive_for_the_product_and_negative_for_the_floor(dtype):
    y, z = _scene(dtype)
    ranking = rank(y, z, PARAMS, return_labels=True)
    assert len(ranking.candidates) == 2
    floor = max(ranking.candidates, key=lambda c: c.area)
    product = min(ranking.candidates, key=lambda c: c.area)
    assert occluding_side_evidence(y, z, ranking.labels, product, PARAMS) > 0.05
    assert occluding_side_evidence(y, z, ranking.labels, floor, PARAMS) < -0.4


def test_exact_maps_one_pixel_occluding_line_is_sided_too():
    """Ground truth puts Z on the upper instance's own rim, outside the boundary band: the
    evidence must see it there (the simulated cell's exact-map ceiling relies on it)."""
    from mikado.ground_truth import ground_truth

    labels = np.zeros((96, 96), np.int32)
    labels[30:62, 30:62] = 1
    depth = np.where(labels == 1, 0.40, 0.43)
    y, z = (m.astype(np.float32) for m in ground_truth(labels, depth))
    ranking = rank(y, z, PARAMS, return_labels=True)
    floor = max(ranking.candidates, key=lambda c: c.area)
    product = min(ranking.candidates, key=lambda c: c.area)
    assert occluding_side_evidence(y, z, ranking.labels, product, PARAMS) > 0.1
    assert occluding_side_evidence(y, z, ranking.labels, floor, PARAMS) < -0.05


def test_plain_ranking_prefers_the_floor_here():
    """The failure the preference exists for: the floor region wins on area, s1 does not separate."""
    y, z = _scene()
    ranking = rank(y, z, PARAMS, return_labels=True)
    best = ranking.candidates[0]
    assert best.area == max(c.area for c in ranking.candidates)
    assert abs(best.s1 - ranking.candidates[1].s1) < 0.05  # s1 barely separates them


def _pick(prefer: bool, y: np.ndarray | None = None, z: np.ndarray | None = None):
    """The appliance's own grasp choice (`plan_grasp`, pixel mode, no ROI) on the scene or on given maps."""
    if y is None:
        y, z = _scene()
    ranking = rank(y, z, PARAMS, return_labels=True)
    grasp = plan_grasp(ranking, y, z, PARAMS, prefer_occluding_side=prefer)
    return grasp.pixel_dict(), ranking


def test_appliance_picks_the_product_when_preferring_the_occluding_side():
    pick, ranking = _pick(prefer=True)
    assert 30 <= pick["u"] < 62 and 30 <= pick["v"] < 62
    product = min(ranking.candidates, key=lambda c: c.area)
    assert pick["score"] == product.score


def test_appliance_without_the_preference_keeps_the_ranking_order():
    pick, ranking = _pick(prefer=False)
    assert pick["score"] == ranking.candidates[0].score
    inside_product = 30 <= pick["u"] < 62 and 30 <= pick["v"] < 62
    assert not inside_product


def test_no_candidate_with_evidence_falls_back_to_the_ranking():
    y, z = _scene()
    z[:] = 0.0  # no occlusion anywhere: no candidate qualifies
    pick, ranking = _pick(True, y, z)
    assert pick["score"] == ranking.candidates[0].score
