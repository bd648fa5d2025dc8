"""Boundary/occlusion map scores of thesis Section 4.1.3: ODS, OIS, AP and AP60.

The protocol is BSDS's (`edgesEvalImg` / `edgesEvalDir` of the structured-edge toolbox) without
non-maximum suppression and without thinning, as the thesis evaluates:

- 99 thresholds 0.01 … 0.99; a pixel is positive when its probability is >= the threshold.
- Per image and threshold we count matched ground-truth pixels (cntR of sumR) and matched
  predicted pixels (cntP of sumP). With tolerance 0 (synthetic, pixel-exact ground truth) a
  prediction matches only the ground-truth pixel under it. With a tolerance (hand-labelled data,
  0.0075 × image diagonal) predicted and ground-truth pixels are paired one-to-one within that
  radius by a maximum bipartite matching, which is what BSDS `correspondPixels` achieves (it
  solves a min-cost assignment with outlier costs; the cardinality is what the counts use).
- ODS: best F over thresholds on counts summed over the dataset, with BSDS's linear
  interpolation between neighbouring thresholds. OIS: each image at its own best threshold,
  counts summed. AP: precision interpolated at recall 0, .01, …, 1, unreachable recalls
  counting 0, summed / 100 (BSDS). AP60: the same precision averaged over recall .60 … 1.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field

import numpy as np
from scipy.sparse import csr_matrix
from scipy.sparse.csgraph import maximum_bipartite_matching
from scipy.spatial import cKDTree

THRESHOLDS = np.linspace(0.01, 0.99, 99)
BSDS_TOLERANCE = 0.0075  # fraction of the image diagonal


def tolerance_px(shape: tuple[int, int], fraction: float = BSDS_TOLERANCE) -> float:
    """Matching radius in pixels for an image of `shape` (H, W)."""
    return fraction * math.hypot(shape[0], shape[1])


def match_counts(
    probability: np.ndarray, truth: np.ndarray, max_dist_px: float = 0.0, thresholds: np.ndarray = THRESHOLDS
) -> np.ndarray:
    """Counts (cntR, sumR, cntP, sumP) per threshold for one image: a (T, 4) int64 array.

    `probability` is HxW in [0, 1] (or uint8 0..255); `truth` HxW, non-zero on ground truth.
    """
    if probability.shape != truth.shape or probability.ndim != 2:
        raise ValueError(
            f"probability {probability.shape} and truth {truth.shape} must be the same HxW shape"
        )
    prob = probability.astype(np.float32)
    if probability.dtype == np.uint8:
        prob = prob / 255.0
    gt = truth > 0
    counts = np.zeros((len(thresholds), 4), np.int64)
    counts[:, 1] = gt.sum()
    if max_dist_px < 1.0:  # no other pixel centre lies within the radius: pixel-exact
        on_truth = np.sort(prob[gt])
        everywhere = np.sort(prob.ravel())
        hits = on_truth.size - np.searchsorted(on_truth, thresholds, side="left")
        counts[:, 0] = hits
        counts[:, 2] = hits
        counts[:, 3] = everywhere.size - np.searchsorted(everywhere, thresholds, side="left")
        return counts
    return _match_counts_tolerant(prob, gt, max_dist_px, thresholds, counts)


def _match_counts_tolerant(
    prob: np.ndarray, gt: np.ndarray, radius: float, thresholds: np.ndarray, counts: np.ndarray
) -> np.ndarray:
    """Bipartite matching of predicted to ground-truth pixels within `radius`, per threshold.

    The candidate pairs are found once (KD-tree over all pixels predicted at the lowest
    threshold); each threshold then keeps the pairs whose predicted pixel survives it.
    """
    pred_y, pred_x = np.nonzero(prob >= thresholds.min())
    pred_p = prob[pred_y, pred_x]
    gt_y, gt_x = np.nonzero(gt)
    for i, t in enumerate(thresholds):
        counts[i, 3] = int((pred_p >= t).sum())
    if pred_y.size == 0 or gt_y.size == 0:
        return counts
    pred_tree = cKDTree(np.column_stack([pred_y, pred_x]))
    gt_tree = cKDTree(np.column_stack([gt_y, gt_x]))
    pairs = pred_tree.sparse_distance_matrix(gt_tree, radius + 1e-9, output_type="ndarray")
    pair_pred, pair_gt = pairs["i"], pairs["j"]
    for i, t in enumerate(thresholds):
        keep = pred_p[pair_pred] >= t
        if not keep.any():
            continue
        rows, cols = pair_pred[keep], pair_gt[keep]
        graph = csr_matrix((np.ones(rows.size, np.int8), (rows, cols)), shape=(pred_y.size, gt_y.size))
        matched_pred = maximum_bipartite_matching(graph, perm_type="column")
        n = int((matched_pred >= 0).sum())
        counts[i, 0] = n
        counts[i, 2] = n
    return counts


def _rpf(
    cnt_r: np.ndarray | float, sum_r: np.ndarray | float, cnt_p: np.ndarray | float, sum_p: np.ndarray | float
) -> tuple[np.ndarray | float, np.ndarray | float, np.ndarray]:
    recall = cnt_r / np.maximum(sum_r, 1)
    precision = cnt_p / np.maximum(sum_p, 1)  # BSDS: no prediction scores precision 0
    f = np.where(recall + precision > 0, 2 * recall * precision / np.maximum(recall + precision, 1e-12), 0.0)
    return recall, precision, f


def _best_interpolated(
    thresholds: np.ndarray, recall: np.ndarray, precision: np.ndarray
) -> tuple[float, float, float, float]:
    """BSDS `findBestRPF`: best F on the PR curve, interpolating linearly between thresholds."""
    if len(thresholds) == 1:
        f = 2 * recall * precision / max(recall[0] + precision[0], 1e-12)
        return float(thresholds[0]), float(recall[0]), float(precision[0]), float(f[0])
    d = np.linspace(0, 1, 101)[None, :]
    t = thresholds[:-1, None] * (1 - d) + thresholds[1:, None] * d
    r = recall[:-1, None] * (1 - d) + recall[1:, None] * d
    p = precision[:-1, None] * (1 - d) + precision[1:, None] * d
    f = np.where(r + p > 0, 2 * p * r / np.maximum(p + r, 1e-12), 0.0)
    k = np.unravel_index(int(np.argmax(f)), f.shape)
    return float(t[k]), float(r[k]), float(p[k]), float(f[k])


def _interpolated_precision(recall: np.ndarray, precision: np.ndarray, grid: np.ndarray) -> np.ndarray:
    """BSDS's `interp1(R, P, grid)` on the unique recalls; NaN (out of range) becomes 0."""
    r, first = np.unique(recall, return_index=True)
    if r.size < 2:
        return np.zeros_like(grid)
    return np.interp(grid, r, precision[first], left=0.0, right=0.0) * ((grid >= r[0]) & (grid <= r[-1]))


@dataclass
class BoundaryScores:
    """Scores and the dataset-level curve, JSON-ready through `to_dict`."""

    ods: float
    ods_threshold: float
    ods_recall: float
    ods_precision: float
    ois: float
    ap: float
    ap60: float
    images: int
    tolerance_px: float | str
    thresholds: list[float] = field(default_factory=list)
    recall: list[float] = field(default_factory=list)
    precision: list[float] = field(default_factory=list)

    def to_dict(self) -> dict:
        return asdict(self)


class BoundaryAccumulator:
    """Accumulates per-image counts so a dataset can be scored in one pass, image by image."""

    def __init__(self, tolerance: str | float = "pixel", thresholds: np.ndarray = THRESHOLDS) -> None:
        """`tolerance`: "pixel" (0 px), "bsds" (0.0075 × diagonal) or a radius in pixels."""
        if isinstance(tolerance, str) and tolerance not in ("pixel", "bsds"):
            raise ValueError(f"tolerance must be 'pixel', 'bsds' or a number of pixels, got {tolerance!r}")
        self.tolerance = tolerance
        self.thresholds = np.asarray(thresholds, np.float64)
        self.per_image: list[np.ndarray] = []
        self.radii: list[float] = []

    def radius_for(self, shape: tuple[int, int]) -> float:
        if self.tolerance == "pixel":
            return 0.0
        if self.tolerance == "bsds":
            return tolerance_px(shape)
        return float(self.tolerance)

    def add(self, probability: np.ndarray, truth: np.ndarray) -> None:
        radius = self.radius_for(truth.shape)
        self.radii.append(radius)
        self.per_image.append(match_counts(probability, truth, radius, self.thresholds))

    def scores(self) -> BoundaryScores:
        if not self.per_image:
            raise ValueError("no image was added")
        counts = np.stack(self.per_image).astype(np.float64)  # (N, T, 4)
        total = counts.sum(axis=0)
        recall, precision, _ = _rpf(*total.T)
        threshold, ods_r, ods_p, ods = _best_interpolated(self.thresholds, recall, precision)
        best = np.array([c[int(np.argmax(_rpf(*c.T)[2]))] for c in counts]).sum(axis=0)
        ois = float(_rpf(*best)[2])
        ap = float(_interpolated_precision(recall, precision, np.linspace(0, 1, 101)).sum() / 100.0)
        ap60 = float(_interpolated_precision(recall, precision, np.linspace(0.6, 1, 41)).mean())
        radius = "0.0075*diagonal" if self.tolerance == "bsds" else float(self.radius_for((1, 1)))
        return BoundaryScores(
            ods=ods,
            ods_threshold=threshold,
            ods_recall=ods_r,
            ods_precision=ods_p,
            ois=ois,
            ap=ap,
            ap60=ap60,
            images=len(self.per_image),
            tolerance_px=radius,
            thresholds=self.thresholds.tolist(),
            recall=recall.tolist(),
            precision=precision.tolist(),
        )
