"""A bin model from one frame of the empty bin: what `binpick bin` and the simulated cell's
per-pile commissioning both record."""

from __future__ import annotations

import cv2
import numpy as np

from edge.bin_model.floor import fit_floor_plane, height_above_floor_mm
from edge.bin_model.locate import MIN_RIM_MM, rim_band, rim_view
from edge.bin_model.model import BinModel, interior_mask


def commission_bin(rgb: np.ndarray, depth_m: np.ndarray | None, interior: np.ndarray) -> BinModel:
    """The empty bin's model: `interior` (N x 2 camera px), the grey reference and, with depth,
    the floor plane (fitted inside the interior shrunk by 4 px, off the walls' foot), the rim's
    median height (the band just outside the interior) and, for a rim of at least `MIN_RIM_MM`,
    the reference for locating the bin by its rim's height (`locate.rim_view`). ValueError naming
    the problem when the depth has too few valid floor pixels."""
    gray = cv2.cvtColor(rgb, cv2.COLOR_RGB2GRAY) if rgb.ndim == 3 else rgb
    interior = np.asarray(interior, float)
    if depth_m is None:
        return BinModel(interior, gray)
    inside = cv2.erode(
        interior_mask(interior, gray.shape).astype(np.uint8), np.ones((9, 9), np.uint8)
    ).astype(bool)
    floor = fit_floor_plane(depth_m, inside)
    height = height_above_floor_mm(depth_m, floor)
    h, w = gray.shape
    band = (rim_band(interior, gray.shape, max(8, int(0.03 * max(w, h)))) > 0) & ~inside
    rim_values = height[band & np.isfinite(height)]
    rim = float(np.median(rim_values)) if len(rim_values) else 0.0
    rim_reference = rim_view(height, rim) if rim >= MIN_RIM_MM else None  # located by its height
    return BinModel(interior, gray, floor, rim, rim_reference)
