"""The depth camera's own candidates: what stands off the bin floor, when the network's fail.

The network's candidates are components of its boundary map. A product whose contour it leaves
open merges with the floor around it into a region larger than any product (the area bound
drops it), and a thin product lying flat on the floor is partly within the floor's depth
tolerance, so its grasp point may read as floor. Both happen most to the last products of a
bin, lying alone on the floor, and then every candidate is refused: the cell gets no grasp
while the depth camera plainly sees a product.

So, only when no candidate of the ranking gave a grasp, the regions of the bin's interior that
stand off its floor (the bin model's floor mask, inverted) become candidates of their own,
highest first, and each is offered to the seal check: a region gets a grasp only where a cup's
disc lies level on it, never a plain point (a region of depth alone may be two products
touching, or a product and the wall's foot). The bin model's rules (`keep`, the ROI at each
point's foot) judge that place as they judge the network's.
"""

from __future__ import annotations

import cv2
import numpy as np

from edge.ranking.result import Candidate, Ranking

# Opening of the raised mask (map pixels): a stereo camera's speckle and a product's one-pixel
# rim on the floor tolerance's edge are no region.
_OPEN_PX = 3


def raised_ranking(
    off_floor: np.ndarray, interior: np.ndarray, heights_mm: np.ndarray, min_area_px: int
) -> Ranking:
    """Candidates from depth alone, at the map's size: the connected regions of `off_floor &
    interior` (bool masks) with measured `heights_mm` above the floor (NaN where unmeasured), of
    at least `min_area_px` pixels, ordered by their median height (highest first, as a pile is
    unloaded from the top). Their score is 0 (the network's score does not exist for them: the
    registers read the weakest a candidate scores)."""
    raised = off_floor & interior & np.isfinite(heights_mm)
    kernel = cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (_OPEN_PX, _OPEN_PX))
    raised = cv2.morphologyEx(raised.astype(np.uint8), cv2.MORPH_OPEN, kernel)
    n, labels, stats, centroids = cv2.connectedComponentsWithStats(raised, connectivity=4)
    found: list[tuple[float, Candidate]] = []
    for label in range(1, n):
        x, y, w, h, area = (int(s) for s in stats[label])
        if area < min_area_px:
            continue
        ys, xs = np.nonzero(labels[y : y + h, x : x + w] == label)
        height = float(np.nanmedian(heights_mm[y + ys, x + xs]))
        angle, major, minor = _axes(xs.astype(np.float64), ys.astype(np.float64))
        u, v = (float(c) for c in centroids[label])
        candidate = Candidate(label, area, (x, y, w, h), (u, v), 0, 0.0, 0.0, 0.0, 0.0, angle, major, minor)
        found.append((height, candidate))
    found.sort(key=lambda item: -item[0])
    candidates = [c for _, c in found]
    return Ranking(candidates, None, labels.astype(np.int32))


def _axes(xs: np.ndarray, ys: np.ndarray) -> tuple[float, float, float]:
    """Major axis angle (degrees from +u towards +v) and the full extents along both axes."""
    if len(xs) < 2:
        return 0.0, 1.0, 1.0
    cov = np.cov(np.stack([xs, ys]))
    values, vectors = np.linalg.eigh(cov)
    major_axis = vectors[:, 1]
    angle = float(np.degrees(np.arctan2(major_axis[1], major_axis[0])))
    if angle <= -90.0:
        angle += 180.0
    elif angle > 90.0:
        angle -= 180.0
    pts = np.stack([xs - xs.mean(), ys - ys.mean()], axis=-1)
    along, across = pts @ vectors[:, 1], pts @ vectors[:, 0]
    return angle, float(np.ptp(along) + 1.0), float(np.ptp(across) + 1.0)
