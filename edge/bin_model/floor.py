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

import math
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
    def from_dict(d: dict, key: str = "floor") -> FloorPlane:
        """The plane of a model file's `key` object; ValueError naming the key (floor.a, ...)."""
        if not isinstance(d, dict):
            raise ValueError(f"{key}: expected an object with a, b, c, got {type(d).__name__}")
        values = []
        for name in ("a", "b", "c", "rms_mm"):
            if name not in d and name != "rms_mm":  # rms_mm is informative only: 0 when absent
                raise ValueError(f"{key}.{name}: missing (expected a finite number)")
            value = d.get(name, 0.0)
            if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
                raise ValueError(f"{key}.{name}: expected a finite number, got {value!r:.80}")
            values.append(float(value))
        return FloorPlane(*values)


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


# The holes are judged on the window decimated to at most this many pixels a side: a shadow is
# several pixels wide, and full resolution cost 35 ms a 1280x720 frame on a 2-core EPYC.
_HOLE_GRID_PX = 400


def floor_from_height(
    height_mm: np.ndarray,
    tolerance_mm: float,
    fill_holes: bool = True,
    within: tuple[slice, slice] | None = None,
    hole_floor_share: float = 1 / 3,
    occluder_share: float = 0.1,
    looks_like_floor: np.ndarray | None = None,
) -> np.ndarray:
    """Floor pixels: within `tolerance_mm` of the floor plane. With `fill_holes`, the pixels
    without depth inside the window `within` (rows, columns; the bin's interior, None = all) are
    judged too (on the window decimated to at most 400 px a side):
    - a hole with raised product on at least `occluder_share` of the measured ring around it is a
      stereo shadow beside that product, which lies on the farther surface: floor as a whole when
      at least `hole_floor_share` of its ring is floor, else each pixel follows the nearer
      measured surface (floor or product);
    - any other hole is a dropout on the floor or a product that returns no depth (black,
      shiny): depth cannot tell which, the picture can. With `looks_like_floor` (the window's
      pixels that match the empty-bin reference, `floor_from_reference`) it follows that; else
      the measured pixels within 3 px, floor where most of them are.

    Why: counted as product, shadows let a grasp land beside the product, on the floor (the
    simulated cell's round-cookie floor pick, and a stick sachet's shadow 12 px wide), and the
    shadows and dropouts between tall boxes, merged into holes of a fifth of the image, raised a
    bin's fill level by up to 13.6 points. A shadow always borders its occluder; a product
    without depth lying alone on the floor borders none, so it stays (mostly) product."""
    with np.errstate(invalid="ignore"):
        floor = np.abs(height_mm) <= tolerance_mm
    if not fill_holes:
        return floor
    rows, cols = within if within is not None else (slice(None), slice(None))
    window = height_mm[rows, cols]
    holes = ~np.isfinite(window)
    if holes.all() or not holes.any():
        return floor
    step = max(1, -(-max(window.shape) // _HOLE_GRID_PX))
    looks = None if looks_like_floor is None else looks_like_floor[::step, ::step]
    judged = _judge_holes(
        window[::step, ::step], floor[rows, cols][::step, ::step], hole_floor_share, occluder_share, looks
    )
    if step > 1:
        judged = np.repeat(np.repeat(judged, step, axis=0), step, axis=1)[
            : window.shape[0], : window.shape[1]
        ]
    out = floor.copy()
    out[rows, cols] |= holes & judged
    return out


def _judge_holes(
    height_mm: np.ndarray,
    floor: np.ndarray,
    hole_floor_share: float,
    occluder_share: float,
    looks_like_floor: np.ndarray | None = None,
) -> np.ndarray:
    """Which pixels without depth are floor (see `floor_from_height`); `floor` is the measured
    pixels' own test."""
    measured = np.isfinite(height_mm)
    near = floor & measured
    product = measured & ~floor
    if looks_like_floor is not None:
        judged = looks_like_floor
    else:  # the 3 px rule: floor where most measured pixels within 3 px are
        size = (7, 7)
        near_floor = cv2.boxFilter(near.astype(np.float32), -1, size, normalize=False)
        near_measured = cv2.boxFilter(measured.astype(np.float32), -1, size, normalize=False)
        judged = near_floor > 0.5 * near_measured
    count, holes = cv2.connectedComponents((~measured).astype(np.uint8), connectivity=8)
    # The measured ring around each hole: its label spread 2 px outwards (where two holes' rings
    # meet, the larger label takes the pixel; either hole is then judged on the rest).
    ring = cv2.dilate(holes.astype(np.float32), np.ones((5, 5), np.uint8)).astype(np.int32)
    on_ring = measured & (ring > 0)
    labels = ring[on_ring]
    around = np.bincount(labels, minlength=count)
    on_floor = np.bincount(labels[near[on_ring]], minlength=count)
    shadow = ((around - on_floor) >= occluder_share * np.maximum(around, 1)) & (around > 0)
    shadow[0] = False
    if shadow.any():
        whole = shadow & (on_floor >= hole_floor_share * np.maximum(around, 1))
        to_floor = cv2.distanceTransform((~near).astype(np.uint8), cv2.DIST_L2, 3)
        to_product = cv2.distanceTransform((~product).astype(np.uint8), cv2.DIST_L2, 3)
        judged = np.where(shadow[holes], whole[holes] | (to_floor < to_product), judged)
    return judged


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
