"""Instance-level scores through the appliance's ranking, on hand-built piles with known answers."""

from __future__ import annotations

import numpy as np
import pytest

from bicameral.evaluation.instance_metrics import InstanceAccumulator, instance_ious
from mikado.ground_truth import ground_truth


def test_iou_matrix_equals_a_direct_computation():
    rng = np.random.default_rng(0)
    labels = rng.integers(0, 4, (30, 40))
    candidates = rng.integers(0, 6, (30, 40))
    chosen = [5, 2, 3]
    ious = instance_ious(labels, candidates, chosen)
    assert ious.shape == (3, 3)
    for i, c in enumerate(chosen):
        for j, k in enumerate([1, 2, 3]):
            a, b = candidates == c, labels == k
            assert ious[i, j] == pytest.approx((a & b).sum() / (a | b).sum())
    assert instance_ious(labels, candidates, []).shape == (0, 3)


def _pile():
    """Three rectangles on a floor: A (id 1) on top of B (id 2) and C (id 3) side by side below."""
    labels = np.zeros((200, 200), np.int32)
    depth = np.full((200, 200), 1.0)  # the floor: over half the frame, so not a candidate
    labels[20:120, 5:55], depth[20:120, 5:55] = 2, 0.95  # B, partly under A
    labels[20:120, 85:135], depth[20:120, 85:135] = 3, 0.95  # C, partly under A
    labels[30:110, 40:100], depth[30:110, 40:100] = 1, 0.90  # A on top of both, the largest
    boundaries, occlusions = ground_truth(labels, depth)
    instances = [
        {"id": 1, "occlusion_rate": 0.0},
        {"id": 2, "occlusion_rate": 0.2},
        {"id": 3, "occlusion_rate": 0.2},
    ]
    return labels, boundaries.astype(np.float32), occlusions.astype(np.float32), instances


def test_perfect_maps_pick_the_unoccluded_top_instance():
    pytest.importorskip("edge._hotpath", reason="native hot path not built (scripts/build_native_inplace.sh)")
    labels, b, o, instances = _pile()
    acc = InstanceAccumulator()
    acc.add(b, o, labels, instances)
    scores = acc.scores()
    assert scores.frames == 1 and scores.best_candidate_success == 1.0
    assert scores.mean_candidates_per_frame >= 3
    assert scores.mean_candidate_iou > 0.8  # candidates lose only their one-pixel boundary ring


def test_a_frame_without_an_unoccluded_instance_fails():
    pytest.importorskip("edge._hotpath", reason="native hot path not built (scripts/build_native_inplace.sh)")
    labels, b, o, instances = _pile()
    for inst in instances:
        inst["occlusion_rate"] = 0.3
    acc = InstanceAccumulator()
    acc.add(b, o, labels, instances)
    acc.add(np.ones_like(b), o, labels, instances)  # all boundary: no candidate at all
    scores = acc.scores()
    assert scores.best_candidate_success == 0.0
    assert scores.frames == 2 and scores.frames_without_candidate == 1
