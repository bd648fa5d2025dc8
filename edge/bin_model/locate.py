"""Where the bin is in this frame: ECC registration of its rim against the reference.

Bins are swapped and nudged between cycles. The rim is the part of the picture that moves with
the bin and that the product does not cover, so the frame's edge image is registered to the
reference's over a band around the interior's outline only (OpenCV's `findTransformECC`,
Euclidean motion: a bin slides and turns on its conveyor, it does not scale). A coarse pass on
a 4x smaller image first, so shifts of tens of pixels converge. No convergence, a correlation
below `min_correlation` or a shift beyond `max_shift_px` means no bin: the cycle fails with
`bin_missing` rather than picking from where the bin used to be.

With a depth camera the same registration runs on the rim itself (`rim_view`): the height map
turned into an image that is bright where the surface stands at the rim's commissioned height.
A lamp switched off, a shadow or a bin repainted does not change it, and a rim of the table's
colour is still a high closed contour.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import cv2
import numpy as np

_CRITERIA = (cv2.TERM_CRITERIA_EPS | cv2.TERM_CRITERIA_COUNT, 60, 1e-5)


@dataclass(frozen=True)
class BinPose:
    """The bin's motion since commissioning: `warp` maps reference pixels to this frame's."""

    warp: np.ndarray  # 2 x 3 float
    correlation: float
    source: str = "image"  # what found it: "image" (the rim's edges) or "depth" (the rim's height)

    @property
    def shift_px(self) -> tuple[float, float]:
        return float(self.warp[0, 2]), float(self.warp[1, 2])

    @property
    def angle_deg(self) -> float:
        return math.degrees(math.atan2(float(self.warp[1, 0]), float(self.warp[0, 0])))

    def apply(self, points: np.ndarray) -> np.ndarray:
        """Reference pixels (N x 2) in this frame."""
        p = np.asarray(points, np.float64)
        return p @ self.warp[:, :2].T.astype(np.float64) + self.warp[:, 2].astype(np.float64)

    def to_dict(self) -> dict:
        dx, dy = self.shift_px
        return {
            "dx_px": round(dx, 2), "dy_px": round(dy, 2), "angle_deg": round(self.angle_deg, 3),
            "correlation": round(self.correlation, 4), "source": self.source,
        }  # fmt: skip


IDENTITY = BinPose(np.eye(2, 3, dtype=np.float32), 1.0, "fixed")

# The smallest rim a depth camera can register on (a shallower tray's rim drowns in the noise).
MIN_RIM_MM = 10.0


def rim_view(height_mm: np.ndarray, rim_height_mm: float) -> np.ndarray:
    """uint8 image of the height map: 255 at the rim's height, falling to 0 at half of it and at
    one and a half times it (the floor, the table and a higher pile are dark); no depth is 0."""
    with np.errstate(invalid="ignore"):
        closeness = 1.0 - np.abs(height_mm - rim_height_mm) / (0.5 * rim_height_mm)
    return (np.clip(np.nan_to_num(closeness, nan=0.0), 0.0, 1.0) * 255.0).astype(np.uint8)


def edge_image(gray: np.ndarray) -> np.ndarray:
    """Gradient magnitude, lightly blurred: what ECC aligns (edges survive a change of light)."""
    g = cv2.GaussianBlur(gray.astype(np.float32), (5, 5), 1.2)
    return cv2.magnitude(cv2.Sobel(g, cv2.CV_32F, 1, 0), cv2.Sobel(g, cv2.CV_32F, 0, 1))


def rim_band(interior: np.ndarray, shape: tuple[int, int], width_px: int) -> np.ndarray:
    """uint8 mask of a band `width_px` wide centred on the interior's outline."""
    mask = np.zeros(shape, np.uint8)
    cv2.polylines(mask, [np.round(interior).astype(np.int32)], True, 255, max(3, width_px))
    return mask


def _ecc(
    template: np.ndarray, frame: np.ndarray, warp: np.ndarray, mask: np.ndarray
) -> tuple[float, np.ndarray]:
    return cv2.findTransformECC(template, frame, warp, cv2.MOTION_EUCLIDEAN, _CRITERIA, mask, 5)


def _agreement(template: np.ndarray, frame: np.ndarray, warp: np.ndarray, mask: np.ndarray) -> float:
    """ECC's correlation of `template` with `frame` brought back by `warp` (what `_ecc` maximises)."""
    size = (template.shape[1], template.shape[0])
    aligned = cv2.warpAffine(frame, warp, size, flags=cv2.INTER_LINEAR | cv2.WARP_INVERSE_MAP)
    return float(cv2.computeECC(template, aligned, mask))


def _coarse_to_fine(
    template: np.ndarray, frame: np.ndarray, mask: np.ndarray, warp: np.ndarray
) -> np.ndarray:
    """`warp` refined on 4x and 2x smaller images first (a wider convergence radius). A level
    keeps its result only where it agrees better with the template than the warp it started
    from: on small images ECC can settle on a worse optimum (seen with a 4x level that walked a
    good phase-correlation start off the rim, depending on the last bits of the edge image,
    which OpenCV's vector code does not fix across runs); a level that does not converge
    leaves the warp as it was too."""
    h, w = template.shape
    for factor in (4, 2):
        size = (w // factor, h // factor)
        if min(size) < 40:
            continue
        small_mask = cv2.dilate(
            cv2.resize(mask, size, interpolation=cv2.INTER_NEAREST), np.ones((3, 3), np.uint8)
        )
        scaled = warp.copy()
        scaled[:, 2] /= factor
        small_template = cv2.resize(template, size, interpolation=cv2.INTER_AREA)
        small_frame = cv2.resize(frame, size, interpolation=cv2.INTER_AREA)
        before = _agreement(small_template, small_frame, scaled, small_mask)
        try:
            _, refined = _ecc(small_template, small_frame, scaled.copy(), small_mask)
        except cv2.error:
            continue
        # ECC's own figure is on blurred copies; compare on what `before` measured
        if not _agreement(small_template, small_frame, refined, small_mask) > before:
            continue
        warp = refined.copy()
        warp[:, 2] *= factor
    return warp


@dataclass(frozen=True)
class RimTemplate:
    """The reference side of the registration: the same for every frame of one commissioned bin,
    so the per-cycle stage computes it once (`RimTemplate.of`)."""

    template: np.ndarray  # the reference's edge image
    mask: np.ndarray  # uint8, the band around the interior's outline ECC compares over
    window: np.ndarray  # the Hanning window phase correlation weighs both images with
    windowed_band: np.ndarray  # the template inside the band, windowed (phase correlation's input)

    @staticmethod
    def of(reference: np.ndarray, interior: np.ndarray) -> RimTemplate:
        band_px = max(16, int(0.08 * max(reference.shape)))  # both edges of a rim, some floor and outside
        template = edge_image(reference)
        mask = rim_band(interior, reference.shape, band_px)
        window = cv2.createHanningWindow((reference.shape[1], reference.shape[0]), cv2.CV_32F)
        return RimTemplate(template, mask, window, template * (mask > 0) * window)


def locate_bin(
    reference: np.ndarray,
    interior: np.ndarray,
    gray: np.ndarray,
    min_correlation: float = 0.5,
    max_shift_px: float = 80.0,
    rim: RimTemplate | None = None,
) -> BinPose | None:
    """The bin's pose in `gray` relative to the `reference` frame whose interior is `interior`,
    or None when it cannot be found (see the module's docstring). `rim`: the reference's
    `RimTemplate` when the caller keeps it (else it is computed here)."""
    if gray.shape != reference.shape:
        raise ValueError(f"frame: expected {reference.shape[1]}x{reference.shape[0]} (the bin model's), "
                         f"got {gray.shape[1]}x{gray.shape[0]}")  # fmt: skip
    rim = RimTemplate.of(reference, interior) if rim is None else rim
    template, mask, frame = rim.template, rim.mask, edge_image(gray)
    # Starts: where the bin was commissioned, and the rim's translation by phase correlation of
    # the rim band's edges against the frame's (the table around the bin does not move, so only
    # the band is kept in the template). ECC refines translation and rotation from each, within
    # its small convergence radius; the better correlation wins.
    (dx, dy), _ = cv2.phaseCorrelate(rim.windowed_band, frame * rim.window)
    best: tuple[float, np.ndarray] | None = None
    for start in ((0.0, 0.0), (dx, dy)):
        warp = _coarse_to_fine(
            template, frame, mask, np.array([[1, 0, start[0]], [0, 1, start[1]]], np.float32)
        )
        try:
            correlation, warp = _ecc(template, frame, warp, mask)
        except cv2.error:  # no convergence from this start
            continue
        if best is None or correlation > best[0]:
            best = (float(correlation), warp)
    if best is None:  # nothing like the rim where it should be
        return None
    correlation, warp = best
    pose = BinPose(warp, float(correlation))
    if correlation < min_correlation or math.hypot(*pose.shift_px) > max_shift_px:
        return None
    return pose
