"""The ranking of `edge.ranking.native`, written plainly in NumPy/SciPy for readability and for the tests.

Same definitions as the native hot path (docs/hotpath.md), one candidate at a
time with full-image masks: slow, but each step reads like its definition.
Two details are written the way the native code does them on purpose, so the
two agree exactly rather than approximately:
- thresholds compare float64 values (`edge.ranking.binarise`, shared with the overlay);
- the principal angle comes from exact integer moments (Python ints), so
  symmetric shapes get angle 0 instead of atan2 of rounding noise.
"""

from __future__ import annotations

import math

import numpy as np
from scipy import ndimage

from edge.ranking.native import binarise
from edge.ranking.params import AREA_GATE, OCCLUDED_SIDE_BELOW, RankingParams
from edge.ranking.result import Candidate, Grasp, Ranking

FOUR_CONNECTED = ndimage.generate_binary_structure(2, 1)
# The largest image: labels are int32 (src_cpp/hotpath/ranking.hpp kMaxPixels, edge._hotpath.MAX_PIXELS).
MAX_PIXELS = 2**31 - 1


def _check_map(name: str, value: object) -> np.ndarray:
    if not isinstance(value, np.ndarray) or value.dtype not in (np.float32, np.uint8) or value.ndim != 2:
        raise ValueError(f"{name}: expected a 2-D numpy array of float32 or uint8")
    return value


def candidate_labels(non_boundary: np.ndarray, params: RankingParams) -> np.ndarray:
    """4-connected components within the area bounds, numbered 1..N in raster order of their first pixel."""
    raw, count = ndimage.label(non_boundary, structure=FOUR_CONNECTED)
    image_px = non_boundary.size
    min_px = params.min_area if params.min_area >= 1 else params.min_area * image_px
    max_px = params.max_area if params.max_area >= 1 else params.max_area * image_px
    labels = np.zeros(raw.shape, np.int32)
    flat = raw.ravel()
    first_pixel = {int(k): int(i) for k, i in zip(*np.unique(flat, return_index=True), strict=True) if k != 0}
    next_label = 1
    for k in sorted(first_pixel, key=first_pixel.get):
        area = int(np.count_nonzero(raw == k))
        if min_px <= area <= max_px:
            labels[raw == k] = next_label
            next_label += 1
    return labels


def exact_dot(a: np.ndarray, b: np.ndarray) -> int:
    """sum(a * b) as a Python int: in int64 it wraps past 2^63 (the sum of x^2 over a row of
    2,000,000 pixels is 2.7e18, over a column of 3,100,000 pixels 9.9e18)."""
    if len(a) == 0:
        return 0
    if len(a) * int(np.abs(a).max()) * int(np.abs(b).max()) < 2**63:
        return int(np.dot(a, b))
    return int(np.dot(a.astype(object), b.astype(object)))


def principal_angle_deg(xs: np.ndarray, ys: np.ndarray) -> float:
    """Major-axis angle from +u towards +v in (-90, 90], from exact moments n*mu (Python ints)."""
    n = len(xs)
    sx, sy = int(xs.sum()), int(ys.sum())
    sxx, syy, sxy = exact_dot(xs, xs), exact_dot(ys, ys), exact_dot(xs, ys)
    m20, m02, m11 = n * sxx - sx * sx, n * syy - sy * sy, n * sxy - sx * sy
    return math.degrees(0.5 * math.atan2(float(2 * m11), float(m20 - m02)))


def contour_score(
    mask: np.ndarray, non_boundary: np.ndarray, occluding: np.ndarray, patch: int
) -> tuple[float, int, float]:
    """s1, the contour length and b: over the boundary pixels 4-adjacent to the candidate, the
    mean of the in-image part of each PxP patch of XNOR(in candidate, occluding), and the share of
    those pixels whose mean is below OCCLUDED_SIDE_BELOW (the candidate on the occluded side there)."""
    contour = ndimage.binary_dilation(mask, structure=FOUR_CONNECTED) & ~non_boundary
    r = patch // 2
    h, w = mask.shape
    means = []
    for y, x in zip(*np.nonzero(contour), strict=True):
        window = np.s_[max(0, y - r) : min(h, y + r + 1), max(0, x - r) : min(w, x + r + 1)]
        means.append(np.mean(mask[window] == occluding[window]))
    if not means:
        return 0.0, 0, 0.0
    return sum(means) / len(means), len(means), sum(m < OCCLUDED_SIDE_BELOW for m in means) / len(means)


def grasp_point(mask: np.ndarray, centroid: tuple[float, float], margin: float) -> tuple[float, float, str]:
    """The centroid, or the inscribed-circle centre (first maximum of the distance transform in
    raster order) when the centroid's pixel is outside the candidate or within `margin` of its border.
    Pixels outside the image count as outside the candidate."""
    ys, xs = np.nonzero(mask)
    y0, x0 = ys.min(), xs.min()
    crop = np.pad(mask[y0 : ys.max() + 1, x0 : xs.max() + 1], 1)
    distance = ndimage.distance_transform_edt(crop)
    cu, cv = centroid
    cx, cy = math.floor(cu + 0.5), math.floor(cv + 0.5)
    if distance[cy - y0 + 1, cx - x0 + 1] > margin:
        return cu, cv, "centroid"
    iy, ix = np.unravel_index(int(np.argmax(distance)), distance.shape)
    return float(ix + x0 - 1), float(iy + y0 - 1), "inscribed"


def contour_term(score: str, s1: float, b: float) -> float:
    """The contour term of the score: s1 ("thesis", "contour"), or max(0, s1 - b) ("strict")."""
    return max(0.0, s1 - b) if score == "strict" else s1


def area_term(score: str, s2: float) -> float:
    """The area term of the score: s2 itself ("thesis") or its gate ("contour": 1 when the
    candidate is at least AREA_GATE of the largest one, else 0)."""
    if score == "thesis":
        return s2
    return 1.0 if s2 >= AREA_GATE else 0.0


def rank_reference(
    boundaries: np.ndarray,
    occlusions: np.ndarray,
    params: RankingParams | None = None,
    return_labels: bool = False,
) -> Ranking:
    """Same contract as `edge.ranking.rank`."""
    params = RankingParams() if params is None else params
    boundaries = _check_map("boundaries", boundaries)
    occlusions = _check_map("occlusions", occlusions)
    if boundaries.shape != occlusions.shape:
        raise ValueError(
            f"occlusions: expected the shape of boundaries {boundaries.shape}, got {occlusions.shape}"
        )
    if boundaries.size > MAX_PIXELS:
        raise ValueError(
            f"boundaries: expected at most {MAX_PIXELS} pixels (labels are int32), got {boundaries.shape}"
        )
    non_boundary, occluding = binarise(boundaries, occlusions, params)
    labels = candidate_labels(non_boundary, params)
    count = int(labels.max()) if labels.size else 0

    unscored = []
    for k in range(1, count + 1):
        mask = labels == k
        ys, xs = np.nonzero(mask)
        area = len(xs)
        centroid = (int(xs.sum()) / area, int(ys.sum()) / area)
        angle = principal_angle_deg(xs.astype(np.int64), ys.astype(np.int64))
        c, s = math.cos(math.radians(angle)), math.sin(math.radians(angle))
        along, across = xs * c + ys * s, -xs * s + ys * c
        s1, contour_length, occluded_side = contour_score(mask, non_boundary, occluding, params.patch)
        unscored.append(
            dict(
                label=k,
                area=area,
                bbox=(
                    int(xs.min()),
                    int(ys.min()),
                    int(xs.max() - xs.min() + 1),
                    int(ys.max() - ys.min() + 1),
                ),
                centroid=centroid,
                contour_length=contour_length,
                s1=s1,
                b=occluded_side,
                angle_deg=angle,
                major_px=float(along.max() - along.min() + 1),
                minor_px=float(across.max() - across.min() + 1),
            )
        )
    largest = max((c["area"] for c in unscored), default=1)
    candidates = []
    for c in unscored:
        s2 = c["area"] / largest
        b = c.pop("b")
        score = params.w1 * contour_term(params.score, c["s1"], b) + params.w2 * area_term(params.score, s2)
        candidates.append(Candidate(**c, s2=s2, occluded_share=b, score=score))
    candidates.sort(key=lambda c: (-c.score, c.label))

    grasp = None
    if candidates:
        best = candidates[0]
        u, v, method = grasp_point(labels == best.label, best.centroid, params.margin)
        grasp = Grasp(u, v, best.angle_deg, best.major_px, best.minor_px, best.score, 0, method)
    return Ranking(candidates=candidates, grasp=grasp, labels=labels if return_labels else None)
