"""Occluding-side evidence of a candidate: is the occlusion map Z higher on ITS side of its contour?

The ranking's s1 (DESIGN "Candidates and ranking", unchanged here) rewards a candidate whose
9x9 contour patches agree with XNOR(C, Z > beta). It assumes Z marks a thin line on the upper
instance's side, inside C. A network's Z is not that thin: the bundled model's Z > beta covers the
whole boundary band (Y > alpha, several pixels wide), on both sides of a product's edge, and a
third of the bin floor's pixels next to a product (ground truth: none). Then s1 is about the same
for a product on top and for the gap of bin floor between products (measured in the simulated
cell: floor candidates s1 0.39 on average, products 0.35), and the area term decides: the floor
gap, often the largest region, wins (docs/simcell.md, "Why the floor wins").

Inside the band the network's Z is still sided: it is higher next to the instance that occludes.
This module measures that, for one candidate C:

    evidence(C) = mean Z over C's own side  -  mean Z over the far side

C's own side is its rim (C's pixels within r/2 of its border) and the boundary pixels (Y > alpha)
within r/2 of C; the far side is every pixel at a distance in (r/2, r] of C (4-connected
distances, r = patch // 2, the ranking's own patch radius; uint8 maps are scaled to [0, 1]).
Both kinds of Z are covered: a network's, spread over the band, and the ground truth's, a one-pixel
line on the upper instance's non-boundary pixels (DESIGN "Ground truth"), which lies in C's rim
when C is on top and on the neighbour's rim, in the far side, when C is the floor between them.
A product on top has its occluding side next to itself (evidence > 0); the bin floor between
products, or an instance under others, has it on the far side (evidence <= 0).
The appliance uses it to order grasps (`prefer_occluding_side`), not to change s1, s2 or score.
"""

from __future__ import annotations

import cv2
import numpy as np

from edge.ranking.params import RankingParams
from edge.ranking.result import Candidate

_CROSS = cv2.getStructuringElement(cv2.MORPH_CROSS, (3, 3))


def occluding_side_evidence(
    boundaries: np.ndarray,
    occlusions: np.ndarray,
    labels: np.ndarray,
    candidate: Candidate,
    params: RankingParams,
) -> float:
    """Mean Z on the near half of C's boundary band minus mean Z on its far half (see module doc).

    0.0 when C has no boundary pixel on one of the two sides (nothing to compare)."""
    r = max(2, params.patch // 2)
    near = max(1, r // 2)
    x, y, w, h = candidate.bbox
    height, width = labels.shape
    x0, y0 = max(0, x - r - 1), max(0, y - r - 1)
    x1, y1 = min(width, x + w + r + 1), min(height, y + h + r + 1)
    mask = (labels[y0:y1, x0:x1] == candidate.label).astype(np.uint8)
    ys = boundaries[y0:y1, x0:x1].astype(np.float64)
    zs = occlusions[y0:y1, x0:x1].astype(np.float64)
    if boundaries.dtype == np.uint8:
        ys = ys / 255.0
    if occlusions.dtype == np.uint8:
        zs = zs / 255.0
    band = ~(ys <= params.alpha)  # NaN counts as boundary, as in `binarise`
    zs = np.nan_to_num(zs, nan=0.0)
    near_zone = cv2.dilate(mask, _CROSS, iterations=near).astype(bool)
    far_zone = cv2.dilate(mask, _CROSS, iterations=r).astype(bool)
    rim = mask.astype(bool) & ~cv2.erode(
        mask, _CROSS, iterations=near, borderType=cv2.BORDER_REPLICATE
    ).astype(bool)
    own = (band & near_zone) | rim
    far = far_zone & ~near_zone
    if not own.any() or not far.any():
        return 0.0
    return float(zs[own].mean() - zs[far].mean())
