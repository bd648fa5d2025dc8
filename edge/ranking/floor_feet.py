"""Where a seen point stands on the bin floor, in camera pixels.

The bin's outline (its interior, the walls' clearance, a region of interest drawn on the empty
bin) is a polygon of the *floor's* image. A cup that comes down onto a product touches the wall
where the product's point is close to the wall horizontally, whatever its height; the image shows
that point displaced from the floor point under it, away from the point straight below the
camera, by height / (camera height - height) of its distance from there. With the camera 0.4 m
above the floor, the top of a box 60 mm high and 150 mm off that point is seen 26 mm farther out
than where it stands: judged by its own pixel, a product near a wall looks closer to it than it
is (refused with room to spare), and with the camera beside the bin, a product near the wall
under the camera looks farther from it than it is (a collision). Judged by its foot, neither.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

from edge.ranking.suction import SurfacePoints


class FloorFeet:
    """The feet of a frame's surface points, computed per window of the ranking's map when asked
    (a whole map's feet take tens of milliseconds; a candidate's window a fraction of that).

    `make_points` gives the frame's `SurfacePoints` (the same the seal check uses);
    `camera_per_depth` = (camera px per depth-map px, along u, along v); `map_scale` = (camera
    px per map px, along u, along v), the ranking's map being the points' grid."""

    def __init__(
        self,
        make_points: Callable[[], SurfacePoints],
        camera_per_depth: tuple[float, float],
        map_scale: tuple[float, float],
    ):
        self._make_points = make_points
        self.camera_per_depth = np.asarray(camera_per_depth, np.float64)
        self.map_scale = map_scale
        self._at: dict[tuple[int, int], tuple[float, float] | None] = {}  # per map pixel

    @property
    def map_shape(self) -> tuple[int, int]:
        return self._make_points().depth_mm.shape

    def window(self, rows: slice, cols: slice) -> np.ndarray:
        """(h, w, 2): the feet of a window of map pixels in camera pixels, NaN where the depth
        camera measured nothing."""
        return self._make_points().feet(rows, cols) * self.camera_per_depth

    def at(self, u: float, v: float) -> tuple[float, float]:
        """The foot of camera pixel (u, v) (camera pixels): the pixel itself where its depth is
        unknown (or it lies off the map), as the rules judged every point before. Kept per map
        pixel: the ROI test and the bin's `keep` ask for the same option's foot in turn."""
        sx, sy = self.map_scale
        key = (int(v / sy), int(u / sx))
        if key not in self._at:
            self._at[key] = self._foot(*key)
        foot = self._at[key]
        return (u, v) if foot is None else foot

    def _foot(self, row: int, col: int) -> tuple[float, float] | None:
        h, w = self.map_shape
        if not (0 <= row < h and 0 <= col < w):
            return None
        fu, fv = self.window(slice(row, row + 1), slice(col, col + 1))[0, 0]
        if not (np.isfinite(fu) and np.isfinite(fv)):
            return None
        return float(fu), float(fv)
