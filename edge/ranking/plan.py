"""From a ranking to the grasp the robot gets: one rule for the appliance, the simulated cell and
the benchmarks.

`plan_grasp` chooses the option (`edge.ranking.selection`: inside the ROI, occluding side first,
recently failed grasps last), brings it from the map's pixels to the camera's (the model may run
on a resized frame, so the axis angle and the extents are re-measured, not copied) and, with a
calibration, to the robot's millimetres on the pick plane. Without a calibration (pixel mode)
the robot fields are the camera's pixels and z is 0: what a cell commissioned in pixels reads.

The calibration is anything with `roi_polygon`, `pixel_to_robot` and `mm_per_pixel_at`
(`edge.calibration_file.Calibration`), so this core imports nothing of the appliance around it.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, replace
from typing import Protocol

import numpy as np

from edge.ranking.params import RankingParams
from edge.ranking.result import Grasp, Ranking
from edge.ranking.selection import Foot, Keep, Place, select_grasp
from edge.ranking.suction import SuctionPlacer

# How far along the grasp axis (camera pixels) a second point is taken to measure the axis'
# direction in the robot's frame.
_AXIS_PROBE_PX = 10.0


class PickGeometry(Protocol):
    """What planning needs of a calibration (`edge.calibration_file.Calibration`)."""

    roi_polygon: np.ndarray | None

    def pixel_to_robot(self, u: float, v: float, height_mm: float = 0.0) -> np.ndarray: ...

    def mm_per_pixel_at(self, u: float, v: float) -> float: ...


@dataclass(frozen=True)
class PlannedGrasp:
    """One grasp, in camera pixels (`u` ... `minor_px`) and in the robot's frame (`x` ...).

    Robot fields are millimetres and degrees in the robot's frame with a calibration; in pixel
    mode they repeat the camera pixels (z = 0). `candidate_index` is the candidate's place in the
    ranking, `method` the grasp rule used ("centroid", "inscribed", or "suction" where the cup
    seals, `edge.ranking.suction`)."""

    u: float
    v: float
    angle_deg: float
    major_px: float
    minor_px: float
    score: float
    x: float
    y: float
    z: float
    angle: float
    extent_major: float
    extent_minor: float
    pixel_mode: bool
    candidate_index: int
    method: str

    def pixel_dict(self) -> dict[str, float]:
        """The camera-pixel part, as the cycle's outcome reports it."""
        return {
            "u": self.u, "v": self.v, "score": self.score, "angle_deg": self.angle_deg,
            "major_px": self.major_px, "minor_px": self.minor_px,
        }  # fmt: skip


def plan_grasp(
    ranking: Ranking,
    boundaries: np.ndarray,
    occlusions: np.ndarray,
    params: RankingParams,
    *,
    calibration: PickGeometry | None = None,
    pick_height_mm: float = 0.0,
    scale: tuple[float, float] = (1.0, 1.0),
    prefer_occluding_side: bool = False,
    avoid: Sequence[tuple[float, float]] = (),
    avoid_radius_px: float = 0.0,
    roi_polygon: np.ndarray | None = None,
    keep: Keep | None = None,
    place: Place | None = None,
    foot: Foot | None = None,
) -> PlannedGrasp | None:
    """The grasp the robot gets for this ranking, or None when no candidate's grasp is in the ROI.

    `boundaries`/`occlusions` are the maps the ranking ran on; `scale` = (camera px per map px
    along u, along v). `avoid` (camera pixels) are recently failed grasps, `avoid_radius_px` their
    radius. `calibration` None is pixel mode (no ROI, pixel outputs). `roi_polygon` (camera
    pixels), when given, replaces the calibration's ROI (the bin model's interior, which moves
    with the bin); `keep(u, v, label)` is a caller's hard rule on each option (`Keep`); `place`
    moves each option to where the gripper holds (`Place`, map pixels); `foot` (`Foot`, with
    depth) is where a point stands on the floor, at which the ROI judges it."""
    sx, sy = scale
    roi = roi_polygon if roi_polygon is not None else None if calibration is None else calibration.roi_polygon
    if isinstance(place, SuctionPlacer):  # with depth: never a point on a product's side face
        keep = place.off_side_faces(keep, (sx, sy))
    option = select_grasp(
        ranking, boundaries, occlusions, params, prefer_occluding_side, roi, (sx, sy),
        avoid=[(u / sx, v / sy) for u, v in avoid],
        avoid_radius=avoid_radius_px / max(sx, sy), keep=keep, place=place, foot=foot,
        place_at_edge=place.at_picture_edge if isinstance(place, SuctionPlacer) else None,
    )  # fmt: skip
    return None if option is None else _planned(option, scale, calibration, pick_height_mm)


def plan_raised_grasp(
    ranking: Ranking,
    place: SuctionPlacer,
    params: RankingParams,
    *,
    calibration: PickGeometry | None = None,
    pick_height_mm: float = 0.0,
    scale: tuple[float, float] = (1.0, 1.0),
    avoid: Sequence[tuple[float, float]] = (),
    avoid_radius_px: float = 0.0,
    roi_polygon: np.ndarray | None = None,
    keep: Keep | None = None,
    foot: Foot | None = None,
) -> PlannedGrasp | None:
    """The grasp on a candidate of depth alone (`edge.ranking.raised.raised_ranking`, whose
    order it keeps), or None: only where the seal check (`place`, on that ranking's labels)
    finds the cup a place that `keep` and the ROI accept; never a region's plain point. The
    method reads "raised". Arguments as `plan_grasp`'s."""
    sx, sy = scale
    roi = roi_polygon if roi_polygon is not None else None if calibration is None else calibration.roi_polygon
    empty = np.zeros(ranking.labels.shape, np.float32)  # no network maps: no occluding side
    option = select_grasp(
        ranking, empty, empty, params, False, roi, (sx, sy),
        avoid=[(u / sx, v / sy) for u, v in avoid], avoid_radius=avoid_radius_px / max(sx, sy),
        keep=place.off_side_faces(keep, (sx, sy)), place=place, foot=foot, plain=False,
    )  # fmt: skip
    if option is None:
        return None
    return _planned(replace(option, method="raised"), scale, calibration, pick_height_mm)


def _planned(
    option: Grasp, scale: tuple[float, float], calibration: PickGeometry | None, pick_height_mm: float
) -> PlannedGrasp:
    """The chosen option (map pixels) in camera pixels and, calibrated, in the robot's frame."""
    sx, sy = scale
    rad = math.radians(option.angle_deg)  # the axis direction, re-measured in camera pixels
    cos, sin = math.cos(rad), math.sin(rad)
    u, v = option.u * sx, option.v * sy
    angle = math.degrees(math.atan2(sin * sy, cos * sx))
    major = option.major_px * math.hypot(sx * cos, sy * sin)
    minor = option.minor_px * math.hypot(sx * sin, sy * cos)
    if calibration is None:
        robot = (u, v, 0.0, angle, major, minor)
    else:
        robot = to_robot(calibration, u, v, angle, major, minor, pick_height_mm)
    return PlannedGrasp(
        u, v, angle, major, minor, option.score, *robot,
        pixel_mode=calibration is None, candidate_index=option.candidate_index, method=option.method,
    )  # fmt: skip


def to_robot(
    calibration: PickGeometry,
    u: float,
    v: float,
    angle_deg: float,
    major_px: float,
    minor_px: float,
    pick_height_mm: float,
) -> tuple[float, float, float, float, float, float]:
    """(x, y, z, angle, extent_major, extent_minor) in the robot's frame for a grasp at camera
    pixel (u, v) on the plane `pick_height_mm` above the calibrated pick plane. The angle is
    measured by mapping a second point along the axis (the camera may be tilted), the extents
    with the local scale at the grasp."""
    xyz = np.asarray(calibration.pixel_to_robot(u, v, height_mm=pick_height_mm), float)
    rad = math.radians(angle_deg)
    ahead = np.asarray(
        calibration.pixel_to_robot(
            u + _AXIS_PROBE_PX * math.cos(rad), v + _AXIS_PROBE_PX * math.sin(rad), height_mm=pick_height_mm
        ),
        float,
    )
    robot_angle = math.degrees(math.atan2(ahead[1] - xyz[1], ahead[0] - xyz[0]))
    mm_per_px = float(calibration.mm_per_pixel_at(u, v))
    x, y, z = xyz[:3].tolist()
    return x, y, z, robot_angle, major_px * mm_per_px, minor_px * mm_per_px
