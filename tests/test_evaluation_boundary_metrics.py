"""ODS/OIS/AP/AP60: pixel-exact counts against a direct computation, the tolerant matching
against the independent pyEdgeEval package (BSDS correspondPixels), and the aggregation rules."""

from __future__ import annotations

import cv2
import numpy as np
import pytest

from bicameral.evaluation.boundary_metrics import (
    THRESHOLDS,
    BoundaryAccumulator,
    match_counts,
    tolerance_px,
)
from mikado.ground_truth import boundaries_from_labels


def _pile(rng: np.random.Generator, height: int, width: int) -> tuple[np.ndarray, np.ndarray]:
    """A label image of overlapping ellipses and its boundary map (mikado.ground_truth, DESIGN.md)."""
    labels = np.zeros((height, width), np.int32)
    for k in range(1, 10):
        centre = (int(rng.integers(0, width)), int(rng.integers(0, height)))
        axes = (int(rng.integers(8, 30)), int(rng.integers(8, 25)))
        cv2.ellipse(labels, centre, axes, float(rng.uniform(0, 180)), 0, 360, k, -1)
    return labels, boundaries_from_labels(labels)


def _noisy_prediction(rng: np.random.Generator, gt: np.ndarray) -> np.ndarray:
    """Boundaries displaced by a pixel, some missed, plus clutter: tolerance matters here."""
    shifted = np.roll(np.roll(gt, 1, axis=1), int(rng.integers(-1, 2)), axis=0)
    pred = np.where(shifted, rng.uniform(0.2, 1, gt.shape), 0.0)
    pred += rng.uniform(0, 1, gt.shape) * (rng.random(gt.shape) < 0.08)
    pred = np.where(gt & (rng.random(gt.shape) < 0.3), rng.uniform(0, 1, gt.shape), pred)
    return np.clip(pred, 0, 1).astype(np.float32)


def test_pixel_exact_counts_equal_a_direct_computation():
    rng = np.random.default_rng(1)
    _, gt = _pile(rng, 64, 80)
    pred = _noisy_prediction(rng, gt)
    counts = match_counts(pred, gt, 0.0)
    for i, t in enumerate(THRESHOLDS):
        positive = pred >= t
        assert counts[i, 0] == np.sum(positive & gt)
        assert counts[i, 1] == gt.sum()
        assert counts[i, 2] == np.sum(positive & gt)
        assert counts[i, 3] == positive.sum()


def test_pixel_exact_scores_equal_a_direct_computation():
    rng = np.random.default_rng(2)
    acc = BoundaryAccumulator("pixel")
    images = []
    for _ in range(3):
        _, gt = _pile(rng, 48, 48)
        pred = _noisy_prediction(rng, gt)
        images.append((pred, gt))
        acc.add(pred, gt)
    scores = acc.scores()
    # Direct: dataset-level precision/recall per threshold; best F on the threshold grid is a
    # lower bound of the interpolated ODS and within a hair of it.
    f_best, ois_parts = 0.0, np.zeros(4)
    totals = np.zeros((len(THRESHOLDS), 4))
    for pred, gt in images:
        per = []
        for t in THRESHOLDS:
            tp = np.sum((pred >= t) & gt)
            per.append([tp, gt.sum(), tp, np.sum(pred >= t)])
        per = np.array(per, float)
        totals += per
        r = per[:, 0] / per[:, 1]
        p = per[:, 2] / np.maximum(per[:, 3], 1)
        f = np.where(p + r > 0, 2 * p * r / np.maximum(p + r, 1e-12), 0)
        ois_parts += per[int(np.argmax(f))]
    r = totals[:, 0] / totals[:, 1]
    p = totals[:, 2] / np.maximum(totals[:, 3], 1)
    f_best = np.max(2 * p * r / np.maximum(p + r, 1e-12))
    assert f_best - 1e-9 <= scores.ods <= f_best + 0.01
    r_o, p_o = ois_parts[0] / ois_parts[1], ois_parts[2] / ois_parts[3]
    assert scores.ois == pytest.approx(2 * p_o * r_o / (p_o + r_o), abs=1e-12)
    np.testing.assert_allclose(scores.recall, r)
    np.testing.assert_allclose(scores.precision, p)


def test_perfect_and_empty_predictions():
    rng = np.random.default_rng(3)
    _, gt = _pile(rng, 40, 40)
    perfect = BoundaryAccumulator("pixel")
    perfect.add(gt.astype(np.float32), gt)
    s = perfect.scores()
    assert s.ods == pytest.approx(1.0) and s.ois == pytest.approx(1.0)
    # Every positive is right, confidence spread out over the thresholds (each boundary pixel is
    # found at the lowest one, so the curve reaches recall 1).
    graded = BoundaryAccumulator("pixel")
    graded.add(np.where(gt, rng.uniform(THRESHOLDS[0], 1.0, gt.shape), 0.0).astype(np.float32), gt)
    s = graded.scores()
    assert s.ap60 == pytest.approx(1.0)
    assert s.ap > 0.95
    nothing = BoundaryAccumulator("pixel")
    nothing.add(np.zeros(gt.shape, np.float32), gt)
    s = nothing.scores()
    assert s.ods == 0.0 and s.ap == 0.0 and s.ap60 == 0.0


def test_uint8_maps_are_probabilities_times_255():
    rng = np.random.default_rng(4)
    _, gt = _pile(rng, 32, 32)
    pred = _noisy_prediction(rng, gt)
    as_u8 = np.round(pred * 255).astype(np.uint8)
    np.testing.assert_array_equal(match_counts(as_u8, gt), match_counts(as_u8.astype(np.float32) / 255, gt))


def test_tolerance_matches_within_the_radius_one_to_one():
    gt = np.zeros((20, 20), bool)
    gt[10, 5:15] = True
    pred = np.zeros((20, 20), np.float32)
    pred[11, 5:15] = 1.0  # one pixel off: no exact hit, all hits within 1.5 px
    pred[12, 5:15] = 1.0  # a second parallel line: must not match the same ground-truth pixels
    exact = match_counts(pred, gt, 0.0)
    assert exact[0, 0] == 0
    tolerant = match_counts(pred, gt, 1.5)
    assert tolerant[0, 0] == 10 and tolerant[0, 2] == 10 and tolerant[0, 3] == 20
    assert tolerance_px((300, 400)) == pytest.approx(0.0075 * 500)


def test_bad_inputs_are_named():
    with pytest.raises(ValueError, match="same HxW"):
        match_counts(np.zeros((4, 4)), np.zeros((4, 5)))
    with pytest.raises(ValueError, match="tolerance"):
        BoundaryAccumulator("loose")
    with pytest.raises(ValueError, match="no image"):
        BoundaryAccumulator().scores()


def test_bsds_tolerance_agrees_with_pyedgeeval():
    """Independent cross-check: pyEdgeEval wraps BSDS's C++ correspondPixels (min-cost matching
    with outliers). No thinning, no NMS on both sides; 19 thresholds keep it fast."""
    pytest.importorskip("pyEdgeEval")
    from pyEdgeEval.common.binary_label.calculate_metrics import calculate_metrics
    from pyEdgeEval.common.binary_label.evaluate_boundaries import evaluate_boundaries_threshold

    rng = np.random.default_rng(0)
    thresholds = np.linspace(0.05, 0.95, 19)
    samples = []
    for _ in range(2):
        _, gt = _pile(rng, 120, 140)
        samples.append((_noisy_prediction(rng, gt), gt))
    ours = BoundaryAccumulator("bsds", thresholds)
    for pred, gt in samples:
        ours.add(pred, gt)
    scores = ours.scores()
    theirs = [
        evaluate_boundaries_threshold(thresholds, pred, gt, max_dist=0.0075, apply_thinning=False)
        for pred, gt in samples
    ]
    _, _, overall = calculate_metrics(
        lambda sample: theirs[sample["index"]],
        list(thresholds),
        [{"index": i, "name": str(i)} for i in range(len(samples))],
        nproc=1,
    )
    assert 0.3 < scores.ods < 0.9  # a sample where tolerance and thresholds both matter
    assert scores.ods == pytest.approx(float(overall["ODS_f1"]), abs=0.005)
    assert scores.ap == pytest.approx(float(overall["AUC"]), abs=0.005)  # their AUC is BSDS's AP
    assert scores.ois == pytest.approx(float(overall["OIS_f1"]), abs=0.005)
