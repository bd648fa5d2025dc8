"""How full the bin is, and when it is empty (with hysteresis), for the PLC."""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class FillLevel:
    """`percent` of the interior covered by product; `mean_height_mm` of the covered part
    above the floor (None without depth)."""

    percent: float
    mean_height_mm: float | None = None


def fill_level(interior: np.ndarray, floor: np.ndarray, height_mm: np.ndarray | None = None) -> FillLevel:
    """The fill level from the interior mask and the floor mask (both H x W bool)."""
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
    return FillLevel(percent, mean_height)


class EmptyBinTracker:
    """`bin_empty` for the PLC: set after `cycles` consecutive observations under
    `empty_below_percent`, cleared by the first observation at or above it. The asymmetry is the
    point: a product left in the bin clears the signal at once, noise on an empty bin has to last
    `cycles` cycles to set it."""

    def __init__(self, cycles: int = 2, empty_below_percent: float = 2.0):
        if cycles < 1:
            raise ValueError(f"cycles: expected >= 1, got {cycles}")
        self.cycles = cycles
        self.empty_below_percent = empty_below_percent
        self._run = 0
        self.empty = False

    def update(self, fill: FillLevel) -> bool:
        if math.isnan(fill.percent) or fill.percent >= self.empty_below_percent:
            self._run = 0
            self.empty = False
        else:
            self._run += 1
            self.empty = self._run >= self.cycles
        return self.empty
