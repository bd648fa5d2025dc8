"""The appliance's side of the seal check ([suction], `edge.ranking.suction`): per cycle, a placer
for the grasp selection when the frame has depth and a calibration is loaded, and why not when
it cannot run (shown on the status page, counted per cycle).

The core works in the camera's frame at the ranking's map resolution; this stage hands it the
calibration's intrinsics (scaled to the depth map's size) and the bin floor's plane moved from
the robot's frame into the camera's.
"""

from __future__ import annotations

import functools
from collections.abc import Callable

import numpy as np

from edge.calibration_file import Calibration
from edge.config import SuctionSection
from edge.ranking.floor_feet import FloorFeet
from edge.ranking.suction import SuctionParams, SuctionPlacer, SurfacePoints, WindowMask


def surface_points(
    depth_m: np.ndarray | None, calibration: Calibration | None, map_shape: tuple[int, int] | None
) -> Callable[[], SurfacePoints] | None:
    """The frame's depth as floor-frame points at the ranking's map size, made the first time they
    are asked and then kept (the seal check and the floor feet share them); None without depth,
    a calibration (pixel mode) or a map."""
    if depth_m is None or calibration is None or map_shape is None:
        return None
    k = np.asarray(calibration.camera_matrix, np.float64).copy()
    width, height = calibration.image_size
    dh, dw = depth_m.shape[:2]
    k[0] *= dw / width  # the calibration's intrinsics at the depth map's size
    k[1] *= dh / height
    normal, offset = SurfacePoints.floor_in_camera(
        calibration.robot_from_camera, calibration.plane_normal, calibration.plane_offset_mm
    )
    dist = calibration.dist_coeffs
    return functools.cache(lambda: SurfacePoints(depth_m, k, dist, normal, offset, map_shape))


def floor_feet(
    points: Callable[[], SurfacePoints],
    depth_shape: tuple[int, ...],
    calibration: Calibration,
    map_scale: tuple[float, float],
) -> FloorFeet:
    """Where this frame's points stand on the bin floor (`edge.ranking.floor_feet`).
    `depth_shape`: the depth map's; `map_scale`: camera px per map px."""
    width, height = calibration.image_size
    dh, dw = depth_shape[:2]
    return FloorFeet(points, (width / dw, height / dh), map_scale)


class SuctionStage:
    def __init__(self, enabled: bool, params: SuctionParams):
        self.enabled = enabled
        self.params = params
        self.placed = 0  # cycles whose grasp was moved to where the cup seals
        self.unplaced = 0  # cycles with the check on where no examined candidate had such a place
        self.inactive = ""  # why the last cycle ran without the check ("" = it ran, or it is off)
        self.last: dict | None = None  # the last placed grasp's fit

    @staticmethod
    def from_config(section: SuctionSection) -> SuctionStage:
        return SuctionStage(section.enabled, section.params())

    def placer(
        self,
        depth_m: np.ndarray | None,
        calibration: Calibration | None,
        labels: np.ndarray | None,
        make_reachable: Callable[[], WindowMask] | None = None,
        points: Callable[[], SurfacePoints] | None = None,
    ) -> SuctionPlacer | None:
        """This cycle's placer, or None (off, no depth this frame, pixel mode, no labels).
        `make_reachable`: where the cup's centre may go, at the labels' size (the bin model's),
        computed only if a candidate is examined. `points`: the frame's `surface_points` when
        the caller made them already (shared, made once)."""
        if not self.enabled:
            return None
        reason = ""
        if depth_m is None:
            reason = "no depth with this frame"
        elif calibration is None:
            reason = "pixel mode: no calibration (camera intrinsics and bin floor)"
        elif labels is None:
            reason = "the ranking returned no labels"
        self.inactive = reason
        if reason:
            return None
        points = points or surface_points(depth_m, calibration, labels.shape)
        return SuctionPlacer(points, labels, self.params, make_reachable)

    def record(self, placer: SuctionPlacer | None, method: str | None, label: int | None) -> dict | None:
        """Count the cycle's outcome; the published grasp's fit (for the cycle's detail) or None."""
        if placer is None:
            return None
        fits = placer.edge_fits if method == "suction_edge" else placer.fits
        placed = label is not None and method in ("suction", "suction_edge", "raised")
        fit = fits.get(label) if placed else None
        if fit is not None:
            self.placed += 1
            self.last = {
                "tilt_deg": round(fit.tilt_deg, 1),
                "residual_mm": round(fit.residual_mm, 2),
                "clearance_mm": round(fit.clearance_mm, 1),
                "candidates_examined": len(placer.fits),
                "method": method,  # suction, suction_edge (beyond the picture's edge), raised (depth alone)
            }
            return self.last
        self.unplaced += 1
        return None

    def status(self) -> dict:
        return {
            "enabled": self.enabled,
            "cup_radius_mm": self.params.cup_radius_mm,
            "placed": self.placed,
            "unplaced": self.unplaced,
            "inactive": self.inactive,
            "last": self.last,
        }
