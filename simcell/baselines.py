"""Gripper-oriented baselines on the depth map, as an industrial suction cell would run them.

None of them knows what an instance is; all see the calibrated depth camera and the bin ROI. The
depth map may have holes (NaN, a stereo camera's shadows): a cup-sized window touching one is
never planar, a hole is never the highest point.
- `planar`: the industrial baseline of thesis Section 5.3.4 / Table C.5: planar patches the size
  of the suction cup (plane fitted to the 3-D points under a cup-sized window: small residual,
  small tilt), grouped into connected planar regions; regions where the cup fits are ranked by
  size, planarity and height; the grasp is the region's most inward point.
- `highest`: the highest point above the bin floor (median-filtered against single-pixel spikes).
- `random`: a uniformly random pixel of the bin's floor polygon.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import cv2
import numpy as np

from edge.calibration_file import Calibration
from edge.ranking.pick_feedback import waits

MIN_OBJECT_HEIGHT_MM = 3.0  # below this a point is the bin floor
Avoid = Sequence[tuple[float, float]]  # camera pixels of recently failed grasps


@dataclass(frozen=True)
class PlanarParams:
    cup_radius_mm: float = 7.5
    max_residual_mm: float = 1.0
    max_tilt_deg: float = 30.0
    w_area: float = 1.0
    w_planarity: float = 0.5
    w_height: float = 0.5


def roi_mask(cal: Calibration, shape: tuple[int, int]) -> np.ndarray:
    mask = np.zeros(shape, np.uint8)
    if cal.roi_polygon is None:
        mask[:] = 1
    else:
        cv2.fillPoly(mask, [np.round(cal.roi_polygon).astype(np.int32)], 1)
    return mask.astype(bool)


def robot_points(depth_m: np.ndarray, cal: Calibration) -> np.ndarray:
    """HxWx3 robot-frame millimetres of every depth pixel (pinhole, no distortion in the sim)."""
    h, w = depth_m.shape
    k = cal.camera_matrix
    u, v = np.meshgrid(np.arange(w, dtype=np.float64), np.arange(h, dtype=np.float64))
    z = depth_m.astype(np.float64) * 1000.0
    cam = np.stack([(u - k[0, 2]) * z / k[0, 0], (v - k[1, 2]) * z / k[1, 1], z], axis=-1)
    t = cal.robot_from_camera
    return cam @ t[:3, :3].T + t[:3, 3]


def height_map(points_mm: np.ndarray, cal: Calibration) -> np.ndarray:
    """Height above the bin floor (mm), positive towards the camera."""
    normal = np.asarray(cal.plane_normal, float)
    normal = normal / np.linalg.norm(normal)
    height = points_mm @ normal - cal.plane_offset_mm
    camera_side = float(cal.robot_from_camera[:3, 3] @ normal - cal.plane_offset_mm)
    return height if camera_side > 0 else -height


def cup_radius_px(cal: Calibration, radius_mm: float) -> float:
    w, h = cal.image_size
    return radius_mm / cal.mm_per_pixel_at((w - 1) / 2, (h - 1) / 2)


def _discs(shape: tuple[int, int], points: Avoid, radius: float) -> np.ndarray:
    """Boolean mask of the discs of `radius` px around `points` (recently failed grasps)."""
    mask = np.zeros(shape, np.uint8)
    for u, v in points:
        cv2.circle(mask, (round(u), round(v)), max(1, round(radius)), 1, -1)
    return mask.astype(bool)


def highest_point(
    depth_m: np.ndarray, cal: Calibration, avoid: Avoid = (), avoid_radius: float = 0.0
) -> tuple[float, float] | None:
    """The highest ROI point, away from `avoid` (failed grasps) unless nothing else is left."""
    height = height_map(robot_points(depth_m, cal), cal).astype(np.float32)
    height = np.nan_to_num(height, nan=-1e6)  # a sensor's holes: never the highest point
    height = cv2.medianBlur(height, 5)
    height[(height < -1e5) | ~roi_mask(cal, height.shape)] = -np.inf
    if avoid:
        away = np.where(_discs(height.shape, avoid, avoid_radius), -np.inf, height)
        if np.isfinite(away).any():
            height = away
    v, u = np.unravel_index(int(np.argmax(height)), height.shape)
    return (float(u), float(v)) if np.isfinite(height[v, u]) else None


def random_point(
    depth_m: np.ndarray, cal: Calibration, rng: np.random.Generator
) -> tuple[float, float] | None:
    vs, us = np.nonzero(roi_mask(cal, depth_m.shape))
    if len(us) == 0:
        return None
    i = int(rng.integers(len(us)))
    return float(us[i]), float(vs[i])


def planar_region(
    depth_m: np.ndarray,
    cal: Calibration,
    params: PlanarParams = PlanarParams(),
    avoid: Avoid = (),
    avoid_radius: float = 0.0,
) -> tuple[float, float] | None:
    """The industrial planar-region grasp, or None when no planar patch exists.

    Regions holding a recently failed grasp (`avoid`, with `avoid_radius` px) go last, as the
    appliance's candidates do (`edge.ranking.selection`)."""
    pts = robot_points(depth_m, cal).astype(np.float64)
    height = height_map(pts, cal)  # NaN in holes: never above the floor
    radius = max(2, round(cup_radius_px(cal, params.cup_radius_mm)))
    size = (2 * radius + 1, 2 * radius + 1)

    def box(a: np.ndarray) -> np.ndarray:
        return cv2.boxFilter(a, cv2.CV_64F, size, borderType=cv2.BORDER_REPLICATE)

    hole = ~np.isfinite(pts).all(axis=-1)
    touches_hole = box(hole.astype(np.float64)) > 0  # no plane is fitted across missing data
    pts = np.where(hole[..., None], 0.0, pts)

    mean = np.stack([box(pts[..., i]) for i in range(3)], axis=-1)
    cov = np.empty(pts.shape[:2] + (3, 3))
    for i in range(3):
        for j in range(i, 3):
            cov[..., i, j] = cov[..., j, i] = box(pts[..., i] * pts[..., j]) - mean[..., i] * mean[..., j]
    eigval, eigvec = np.linalg.eigh(cov)
    residual = np.sqrt(np.maximum(eigval[..., 0], 0.0))
    normal = np.asarray(cal.plane_normal, float) / np.linalg.norm(cal.plane_normal)
    cos_tilt = np.abs(eigvec[..., :, 0] @ normal)
    planar = (
        (residual <= params.max_residual_mm)
        & (cos_tilt >= math.cos(math.radians(params.max_tilt_deg)))
        & (height >= MIN_OBJECT_HEIGHT_MM)
        & ~touches_hole
        & roi_mask(cal, depth_m.shape)
    ).astype(np.uint8)
    count, labels, stats, _ = cv2.connectedComponentsWithStats(planar, connectivity=4)
    if count <= 1:
        return None
    inward = cv2.distanceTransform(np.pad(planar, 1), cv2.DIST_L2, 5)[1:-1, 1:-1]
    regions = []
    for label in range(1, count):
        mask = labels == label
        reach = float(inward[mask].max())
        regions.append((label, float(stats[label, cv2.CC_STAT_AREA]), reach, float(residual[mask].mean()),
                        float(height[mask].mean())))  # fmt: skip
    fitting = [r for r in regions if r[2] >= radius] or [max(regions, key=lambda r: r[2])]
    area_max = max(r[1] for r in fitting)
    height_max = max(max(r[4] for r in fitting), 1e-6)

    def score(r: tuple[int, float, float, float, float]) -> float:
        planarity = 1.0 - r[3] / params.max_residual_mm
        return (
            params.w_area * r[1] / area_max
            + params.w_planarity * planarity
            + params.w_height * r[4] / height_max
        )

    def point(label: int) -> tuple[float, float]:
        masked = np.where(labels == label, inward, -1.0)
        v, u = np.unravel_index(int(np.argmax(masked)), masked.shape)
        return float(u), float(v)

    for region in sorted(fitting, key=score, reverse=True):
        u, v = point(region[0])
        if not waits(u, v, region[0], labels, avoid, avoid_radius):
            return u, v
    return point(max(fitting, key=score)[0])
