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

from dataclasses import replace

import cv2
import numpy as np

from edge.ranking.native import rank
from edge.ranking.params import RankingParams
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
    unloaded from the top). The regions, their axes and extents are the hot path's own (`rank`
    on the raised mask's complement as a boundary map), as every network candidate's are. Their
    score is 0 (the network's score does not exist for them: the registers read the weakest a
    candidate scores)."""
    raised = off_floor & interior & np.isfinite(heights_mm)
    kernel = cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (_OPEN_PX, _OPEN_PX))
    raised = cv2.morphologyEx(raised.astype(np.uint8), cv2.MORPH_OPEN, kernel) > 0
    boundaries = np.where(raised, 0.0, 1.0).astype(np.float32)
    params = RankingParams(alpha=0.5, min_area=max(int(min_area_px), 1), max_area=np.inf)
    regions = rank(boundaries, np.zeros_like(boundaries), params, return_labels=True)
    labels = regions.labels

    def median_height(c: Candidate) -> float:
        x, y, w, h = c.bbox
        window = labels[y : y + h, x : x + w] == c.label
        return float(np.nanmedian(heights_mm[y : y + h, x : x + w][window]))

    # highest first; equal heights in raster order of the region's first pixel (its label)
    candidates = sorted(regions.candidates, key=lambda c: (-median_height(c), c.label))
    return Ranking([replace(c, score=0.0) for c in candidates], None, labels)
