"""How full the bin is, and when it is empty (with hysteresis), for the PLC."""

from __future__ import annotations

import math
from dataclasses import dataclass

import cv2
import numpy as np


@dataclass(frozen=True)
class FillLevel:
    """`percent` of the interior covered by product; `mean_height_mm` of the covered part
    above the floor (None without depth); `largest_percent`, the largest connected covered
    region's share of the interior (what tells one small product from scattered specks)."""

    percent: float
    mean_height_mm: float | None = None
    largest_percent: float = 0.0


def fill_level(
    interior: np.ndarray,
    floor: np.ndarray,
    height_mm: np.ndarray | None = None,
    within: tuple[slice, slice] | None = None,
    core: np.ndarray | None = None,
) -> FillLevel:
    """The fill level from the interior mask and the floor mask (both H x W bool). The largest
    region is looked for inside `core` (H x W bool; None = the whole interior), in the window
    `within` (rows, columns) that holds the interior. The stage gives the interior shrunk a few
    px from its outline (a polygon a pixel or two onto a wall, a rounded corner or a slightly
    tilted bin make one covered strip along the whole outline, which is no product), eroded from
    the polygon itself, so that where the interior goes on past the picture its edge is no
    outline."""
    inside = int(interior.sum())
    if inside == 0:
        return FillLevel(0.0, None)
    covered = interior & ~floor
    percent = 100.0 * int(covered.sum()) / inside
    mean_height = None
    if height_mm is not None:
        heights = height_mm[covered]
        heights = heights[np.isfinite(heights)]
        mean_height = float(heights.mean()) if len(heights) else 0.0
    largest = 0.0
    if percent > 0.0:
        rows, cols = within if within is not None else (slice(None), slice(None))
        inner = (interior if core is None else core)[rows, cols]
        regions = (covered[rows, cols] & inner).astype(np.uint8)
        count, _, stats, _ = cv2.connectedComponentsWithStats(regions, connectivity=8)
        if count > 1:
            largest = 100.0 * float(stats[1:, cv2.CC_STAT_AREA].max()) / inside
    return FillLevel(percent, mean_height, largest)


class EmptyBinTracker:
    """`bin_empty` for the PLC: set after `cycles` consecutive observations that look empty,
    cleared by the first that does not. The asymmetry is the point: a product left in the bin
    clears the signal at once, noise on an empty bin has to last `cycles` cycles to set it.

    An observation looks empty when the fill level is under `empty_below_percent` and no
    connected covered region is `empty_max_region_percent` of the interior or more. The total
    alone let a product through: a stick sachet at the image's edge showed 1.5 % of the interior
    in the simulated cell, under the 2 % that a noisy camera's specks need, and bin_empty rose
    with three products in the bin. Specks are scattered; a product is one region.
    `empty_max_region_percent` 0 turns the region rule off; `empty_below_percent` 0 never lets
    the signal rise."""

    def __init__(
        self, cycles: int = 2, empty_below_percent: float = 2.0, empty_max_region_percent: float = 0.1
    ):
        if cycles < 1:
            raise ValueError(f"cycles: expected >= 1, got {cycles}")
        self.cycles = cycles
        self.empty_below_percent = empty_below_percent
        self.empty_max_region_percent = empty_max_region_percent
        self._run = 0
        self.empty = False

    def update(self, fill: FillLevel) -> bool:
        region = self.empty_max_region_percent > 0 and fill.largest_percent >= self.empty_max_region_percent
        if math.isnan(fill.percent) or fill.percent >= self.empty_below_percent or region:
            self._run = 0
            self.empty = False
        else:
            self._run += 1
            self.empty = self._run >= self.cycles
        return self.empty
