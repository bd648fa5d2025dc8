"""A geometric occlusion cue from depth: the nearer side of a depth step.

An instance that lies on another is nearer to the camera than the one it covers, all along the
part of its rim where it covers it. The network's occlusion map Z learns that side from RGB
alone; a depth camera measures it. This module turns one depth frame into a cue in [0, 1] with
Z's meaning (1 on the occluding side of an occlusion boundary) and fuses it with Z before the
ranking (`[inference] depth_cue = "off" | "fuse" | "only"`, docs/appliance.md "Depth").

Robust to what a stereo or structured-light camera delivers (`mikado.depth_noise` models it):
- holes (NaN or 0) never make a step: a hole is first given the farthest valid depth within
  `fill_px` (stereo shadows are the occluded background beside an edge, so the farther side is
  their true depth; inside a flat surface that is the surface itself), and what stays empty is
  invalid, for itself and its neighbours;
- noise of a millimetre or two is below the step (`step_mm`, default 4 mm) after a 3x3 median.

NumPy and OpenCV only (it runs every cycle on the appliance, which never imports torch); about
a millisecond per 512x512 frame.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

import cv2
import numpy as np

if TYPE_CHECKING:
    from edge.config import InferenceSection
    from edge.inference.predictor import Maps

MODES = ("off", "fuse", "only")
FUSIONS = ("max", "mean")


@dataclass(frozen=True)
class DepthCueParams:
    """How the cue is computed and fused (the `[inference] depth_cue*` keys)."""

    mode: str = "off"  # off | fuse (with the network's Z) | only (the cue replaces Z)
    fusion: str = "max"  # max(Z, cue) or (1 - weight) Z + weight cue
    weight: float = 0.5  # fusion "mean" only
    step_mm: float = 3.0  # smallest depth step that is an occlusion (products are a few mm thick)
    band_px: int = 2  # the cue marks the nearer side up to this far from the step
    fill_px: int = 4  # holes are filled with the farthest valid depth within this radius
    boundaries: bool = False  # also raise the boundary map Y to the two-sided step map
    inset: bool = True  # leave out the pixel touching the step (see depth_steps)
    ramp: float = 6.0  # the cue rises from step_mm / 2 to ramp x step_mm (a graded score)


def _fill_holes_far(depth_mm: np.ndarray, valid: np.ndarray, fill_px: int) -> tuple[np.ndarray, np.ndarray]:
    """Holes take the farthest valid depth within `fill_px`; returns (depth, still-valid mask)."""
    if fill_px <= 0 or valid.all():
        return depth_mm, valid
    kernel = cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (2 * fill_px + 1, 2 * fill_px + 1))
    far = cv2.dilate(np.where(valid, depth_mm, -1.0).astype(np.float32), kernel)
    filled = ~valid & (far > 0)
    return np.where(filled, far, depth_mm), valid | filled


def depth_steps(depth_m: np.ndarray, params: DepthCueParams) -> tuple[np.ndarray, np.ndarray]:
    """(near, far): per pixel, how much farther the farthest (near) and how much nearer the
    nearest (far) valid neighbour within `band_px` is, in millimetres; 0 on invalid pixels."""
    depth = np.asarray(depth_m, np.float32)
    if depth.ndim != 2:
        raise ValueError(f"depth map must be HxW, got shape {depth.shape}")
    valid = np.isfinite(depth) & (depth > 0)
    depth_mm = np.where(valid, depth * np.float32(1000.0), 0.0).astype(np.float32)
    depth_mm, valid = _fill_holes_far(depth_mm, valid, params.fill_px)
    depth_mm = cv2.medianBlur(np.where(valid, depth_mm, 0.0).astype(np.float32), 3)
    # A pixel next to an unfilled hole is not trusted either (its median saw the hole's zeros).
    cross = cv2.getStructuringElement(cv2.MORPH_RECT, (3, 3))
    valid = cv2.erode(valid.astype(np.uint8), cross, borderType=cv2.BORDER_REPLICATE).astype(bool)
    size = 2 * params.band_px + 1
    kernel = cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (size, size))
    farthest = cv2.dilate(np.where(valid, depth_mm, -1e9).astype(np.float32), kernel)
    nearest = cv2.erode(np.where(valid, depth_mm, 1e9).astype(np.float32), kernel)
    near = np.where(valid, np.maximum(farthest - depth_mm, 0.0), 0.0).astype(np.float32)
    far = np.where(valid, np.maximum(depth_mm - nearest, 0.0), 0.0).astype(np.float32)
    if params.inset:
        # The occluding side one pixel inside the occluder, as Mikado's ground truth and the
        # network's Z mark it: the pixel touching the step (its 4-neighbour is farther) is the
        # boundary itself, not the occluding side.
        adjacent = cv2.dilate(np.where(valid, depth_mm, -1e9).astype(np.float32), cross4())
        touching = np.where(valid, np.maximum(adjacent - depth_mm, 0.0), 0.0)
        near = np.where(touching > 0.5 * params.step_mm, 0.0, near).astype(np.float32)
    return near, far


def cross4() -> np.ndarray:
    return cv2.getStructuringElement(cv2.MORPH_CROSS, (3, 3))


def _soft(step_mm: np.ndarray, params: DepthCueParams) -> np.ndarray:
    """0 below half the threshold, 1 from `ramp` x the threshold, linear between: a graded
    score (larger steps are surer occlusions) for the ranking's beta and for precision-recall
    curves, not a hard mask."""
    lo, hi = 0.5 * params.step_mm, max(params.ramp, 0.75) * params.step_mm
    return np.clip((step_mm - lo) / (hi - lo), 0.0, 1.0).astype(np.float32)


def occlusion_cue(depth_m: np.ndarray, params: DepthCueParams = DepthCueParams()) -> np.ndarray:
    """HxW float32 in [0, 1]: high on the nearer side of a depth step larger than `step_mm`."""
    near, _ = depth_steps(depth_m, params)
    return _soft(near, params)


def boundary_cue(depth_m: np.ndarray, params: DepthCueParams = DepthCueParams()) -> np.ndarray:
    """HxW float32 in [0, 1]: high on both sides of a depth step (a boundary, whoever is on top)."""
    near, far = depth_steps(depth_m, params)
    return _soft(np.maximum(near, far), params)


def fuse(z: np.ndarray, cue: np.ndarray, params: DepthCueParams) -> np.ndarray:
    """The occlusion map the ranking sees: Z, the cue, or their fusion."""
    if params.mode == "only":
        return cue
    if params.fusion == "max":
        return np.maximum(z, cue)
    w = np.float32(params.weight)
    return ((1.0 - w) * z + w * cue).astype(np.float32)


def resized_depth(depth_m: np.ndarray, shape: tuple[int, int]) -> np.ndarray:
    """The depth frame at the maps' size (nearest neighbour: no depth is invented at an edge)."""
    h, w = shape
    if depth_m.shape[:2] == (h, w):
        return depth_m
    return cv2.resize(np.asarray(depth_m, np.float32), (w, h), interpolation=cv2.INTER_NEAREST)


def apply_to_maps(
    boundaries: np.ndarray, occlusions: np.ndarray, depth_m: np.ndarray, params: DepthCueParams
) -> tuple[np.ndarray, np.ndarray]:
    """The (Y, Z) pair the ranking sees, given the network's maps and the frame's depth."""
    depth = resized_depth(depth_m, occlusions.shape)
    near, far = depth_steps(depth, params)
    z = fuse(occlusions, _soft(near, params), params)
    y = boundaries
    if params.boundaries:
        y = np.maximum(boundaries, _soft(np.maximum(near, far), params))
    return y, z


class DepthCueStage:
    """The supervisor's step between inference and ranking: the maps the ranking sees.

    Maps left on the GPU come to the host first (the cue is NumPy/OpenCV), so with the cue on
    the ranking runs on the CPU. A frame without depth keeps the network's maps (counted in
    `frames_without_depth` on the status page: a depth camera that drops frames shows there).
    """

    def __init__(self, params: DepthCueParams):
        self.params = params
        self.frames = 0
        self.frames_without_depth = 0
        self.last_ms = 0.0

    @classmethod
    def from_config(cls, inference: InferenceSection) -> DepthCueStage:
        """From the `[inference] depth_cue*` keys (validated in edge.config)."""
        return cls(
            DepthCueParams(
                mode=inference.depth_cue,
                fusion=inference.depth_cue_fusion,
                weight=inference.depth_cue_weight,
                step_mm=inference.depth_cue_step_mm,
                boundaries=inference.depth_cue_boundaries,
            )
        )

    @property
    def enabled(self) -> bool:
        return self.params.mode != "off"

    def apply(self, maps: Maps, depth_m: np.ndarray | None) -> Maps:
        """`maps` (edge.inference.predictor.Maps) with the cue fused in, or unchanged."""
        if not self.enabled:
            return maps
        self.frames += 1
        if depth_m is None:
            self.frames_without_depth += 1
            return maps
        import time

        from edge.inference.predictor import Maps

        started = time.perf_counter()
        y, z = apply_to_maps(maps.boundaries, maps.occlusions, depth_m, self.params)
        self.last_ms = (time.perf_counter() - started) * 1000.0
        return Maps(y, z, maps.scale_x, maps.scale_y, maps.model_rgb, maps.preprocess_ms)

    def status(self) -> dict:
        return {
            "mode": self.params.mode,
            "fusion": self.params.fusion,
            "frames": self.frames,
            "frames_without_depth": self.frames_without_depth,
            "last_ms": round(self.last_ms, 2),
        }
