"""Where the bin's floor shows: from depth (a plane) or from the empty-bin reference (looks).

Depth: a plane seen by a pinhole camera has an inverse depth that is affine in the pixel
coordinates, 1/z = a*u + b*v + c, exactly, whatever the camera's tilt; so the floor is fitted
in that form on the empty bin's interior and needs no intrinsics (pixel-mode cells have none).
A pixel's height above the floor is then the depth difference along its ray, z_floor - z, which
for a camera looking down is the height to within the cosine of the ray's angle.

Without depth: a floor pixel still looks like the empty bin. A raw difference fails on a
change of light, so patches are compared by zero-mean normalised cross-correlation (invariant to
gain and offset); a flat patch has no pattern to correlate, so flat patches are compared by their
means after the frame-wide gain between the frame and the reference is divided out.
"""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np


@dataclass(frozen=True)
class FloorPlane:
    """1/z = a*u + b*v + c (z in metres, u, v in camera pixels); `rms_mm` of the fit."""

    a: float
    b: float
    c: float
    rms_mm: float = 0.0

    def depth_m(self, width: int, height: int) -> np.ndarray:
        """The floor's depth at every pixel of a width x height frame."""
        v, u = np.mgrid[0:height, 0:width].astype(np.float64)
        inverse = self.a * u + self.b * v + self.c
        with np.errstate(divide="ignore"):
            return np.where(inverse > 0, 1.0 / inverse, np.inf)

    def to_dict(self) -> dict:
        return {"a": self.a, "b": self.b, "c": self.c, "rms_mm": round(self.rms_mm, 3)}

    @staticmethod
    def from_dict(d: dict) -> FloorPlane:
        return FloorPlane(float(d["a"]), float(d["b"]), float(d["c"]), float(d.get("rms_mm", 0.0)))


def fit_floor_plane(depth_m: np.ndarray, mask: np.ndarray, iterations: int = 4) -> FloorPlane:
    """The floor plane through the valid depth pixels of `mask` (the empty bin's interior), by
    least squares repeated on the pixels within 3 sigma of the last fit (a few bumps or holes do
    not tilt it). ValueError when fewer than 100 valid pixels remain."""
    valid = mask & np.isfinite(depth_m) & (depth_m > 0)
    v, u = np.nonzero(valid)
    if len(u) < 100:
        raise ValueError(f"floor: only {len(u)} valid depth pixels in the interior, need 100")
    z = depth_m[v, u].astype(np.float64)
    design = np.column_stack([u, v, np.ones_like(u)]).astype(np.float64)
    keep = np.ones(len(u), bool)
    for _ in range(iterations):
        coef, *_ = np.linalg.lstsq(design[keep], 1.0 / z[keep], rcond=None)
        residual_mm = (1.0 / (design @ coef) - z) * 1000.0
        sigma = max(float(np.std(residual_mm[keep])), 0.5)
        keep = np.abs(residual_mm) <= 3 * sigma
    rms = float(np.sqrt(np.mean(residual_mm[keep] ** 2)))
    return FloorPlane(float(coef[0]), float(coef[1]), float(coef[2]), rms)


def height_above_floor_mm(depth_m: np.ndarray, plane: FloorPlane) -> np.ndarray:
    """Height of every pixel above the floor, mm (NaN where the depth is missing)."""
    floor = plane.depth_m(depth_m.shape[1], depth_m.shape[0])
    height = (floor - depth_m.astype(np.float64)) * 1000.0
    height[~np.isfinite(depth_m) | (depth_m <= 0)] = np.nan
    return height


def floor_from_height(
    height_mm: np.ndarray, tolerance_mm: float, fill_holes: bool = True, hole_floor_share: float = 1 / 3
) -> np.ndarray:
    """Floor pixels: within `tolerance_mm` of the floor plane. With `fill_holes`, a pixel without
    depth is floor when it is nearer to a measured floor pixel than to a measured product pixel,
    or when its hole (a connected region without depth) has at least `hole_floor_share` of the
    measured pixels around it on the floor.

    Why the holes: a stereo camera's shadow beside a product's edge falls on the farther surface,
    the floor, and reads as no depth there. Counted as product, such holes let a grasp land
    beside the product, on the floor (the simulated cell's round-cookie floor pick, and a stick
    sachet's shadow 12 px wide), and raised the fill level of a bin of tall boxes by up to 12
    points (their shadows and dropouts merge into holes of a fifth of the image, half of it floor
    in the simulator's truth). The nearer measured surface splits a hole between floor and
    product where it borders both; a hole that borders the floor widely is a shadow on it as a
    whole, its side against the product too; a dropout surrounded by product stays product."""
    with np.errstate(invalid="ignore"):
        floor = np.abs(height_mm) <= tolerance_mm
    measured = np.isfinite(height_mm)
    if not fill_holes or measured.all() or not measured.any():
        return floor
    product = measured & ~floor
    to_floor = cv2.distanceTransform((~(floor & measured)).astype(np.uint8), cv2.DIST_L2, 3)
    to_product = cv2.distanceTransform((~product).astype(np.uint8), cv2.DIST_L2, 3)
    floor = floor | (~measured & (to_floor < to_product))
    count, holes = cv2.connectedComponents((~measured).astype(np.uint8), connectivity=8)
    # The measured ring around each hole: its label spread 2 px outwards (where two holes' rings
    # meet, the larger label takes the pixel; either hole is then judged on the rest).
    ring = cv2.dilate(holes.astype(np.float32), np.ones((5, 5), np.uint8)).astype(np.int32)
    ring[~measured] = 0
    around = np.bincount(ring.ravel(), minlength=count)
    on_floor = np.bincount(ring.ravel(), weights=floor.ravel().astype(np.float64), minlength=count)
    hole_is_floor = (on_floor >= hole_floor_share * np.maximum(around, 1)) & (around > 0)
    hole_is_floor[0] = False
    return floor | hole_is_floor[holes]


def floor_from_reference(
    gray: np.ndarray, reference: np.ndarray, patch: int = 15, min_ncc: float = 0.7, flat_std: float = 4.0
) -> np.ndarray:
    """Floor pixels by comparison with the (registered) empty-bin reference: patches whose
    zero-mean normalised cross-correlation with the reference is at least `min_ncc`, or, where
    both are flat (standard deviation under `flat_std` grey levels), whose gain-corrected means
    agree within 15 %."""
    f = gray.astype(np.float32)
    r = reference.astype(np.float32)
    k = (patch, patch)
    mean_f, mean_r = cv2.blur(f, k), cv2.blur(r, k)
    var_f = np.maximum(cv2.blur(f * f, k) - mean_f * mean_f, 0.0)
    var_r = np.maximum(cv2.blur(r * r, k) - mean_r * mean_r, 0.0)
    cov = cv2.blur(f * r, k) - mean_f * mean_r
    std_f, std_r = np.sqrt(var_f), np.sqrt(var_r)
    textured = (std_f >= flat_std) & (std_r >= flat_std)
    ncc = cov / np.maximum(std_f * std_r, 1e-6)
    gain = float(np.median(f)) / max(float(np.median(r)), 1.0)  # the frame-wide change of light
    flat = (std_f < flat_std) & (std_r < flat_std)
    same_level = np.abs(mean_f - gain * mean_r) <= 0.15 * np.maximum(gain * mean_r, 8.0)
    floor = (textured & (ncc >= min_ncc)) | (flat & same_level)
    # A patch that overlaps a product enough fails the comparison, so the non-floor region comes
    # out grown all round (by up to the patch's half-width, about half of it in practice): shrink
    # it back by a quarter of the patch.
    grown = (~floor).astype(np.uint8)
    shrink = max(1, patch // 4) * 2 + 1
    return ~cv2.erode(grown, np.ones((shrink, shrink), np.uint8)).astype(bool)
