"""What a depth camera does to a perfect depth map: the stereo-like degradation of the thesis.

Training uses it for depth models (thesis appendix C.1.2 renders two views and runs stereo) and
the simulated cell and the appliance's simulated camera use it as their depth camera by default
(`binpick simcell --depth stereo`, `[camera] simulated_depth = "stereo"`): an industrial cell's
depth comes from stereo or laser triangulation, never exact.
NumPy and OpenCV only, so the appliance side (no torch) can use it.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import cv2
import numpy as np


@dataclass(frozen=True)
class DepthNoise:
    """Stereo-like depth degradation (thesis appendix C.1.2 renders two views and runs stereo).

    We model what such a reconstruction does to a perfect depth map, without rendering a second
    view: disparity noise and sub-pixel quantisation (so the error grows with z²), holes where the
    second camera cannot see (the shadow to the side of every foreground edge, along the
    baseline), and a few dropout blobs and speckles (low texture, specularities). Holes are NaN.
    """

    baseline_m: float = 0.06
    disparity_sigma_px: float = 0.15
    subpixel: float = 1.0 / 8.0
    blobs_max: int = 3
    blob_radius_frac: tuple[float, float] = (0.01, 0.05)
    speckle_probability: float = 0.002


def degrade_depth(depth_m: np.ndarray, fx: float, noise: DepthNoise, rng: np.random.Generator) -> np.ndarray:
    """Apply the stereo-like noise and hole model of `DepthNoise` to a perfect depth map."""
    valid = depth_m > 0
    z = np.where(valid, depth_m, 1.0).astype(np.float64)
    disparity = fx * noise.baseline_m / z
    noisy = disparity + rng.normal(0.0, noise.disparity_sigma_px, disparity.shape)
    noisy = np.maximum(np.round(noisy / noise.subpixel) * noise.subpixel, noise.subpixel)
    out = (fx * noise.baseline_m / noisy).astype(np.float32)
    # Stereo shadow: the second camera sits at +baseline along u, so a point is hidden when a
    # nearer point k pixels to its left shifts over it (disparity[u-k] - k > disparity[u]).
    hidden = np.zeros(depth_m.shape, bool)
    max_shift = int(math.ceil(disparity.max() - disparity.min())) if valid.any() else 0
    for k in range(1, min(max_shift, depth_m.shape[1] - 1) + 1):
        hidden[:, k:] |= disparity[:, :-k] - k > disparity[:, k:] + 0.5
    height, width = depth_m.shape
    for _ in range(int(rng.integers(0, noise.blobs_max + 1))):
        radius = rng.uniform(*noise.blob_radius_frac) * max(height, width)
        axes = (max(1, int(radius)), max(1, int(radius * rng.uniform(0.3, 1.0))))
        centre = (int(rng.integers(0, width)), int(rng.integers(0, height)))
        blob = np.zeros(depth_m.shape, np.uint8)
        cv2.ellipse(blob, centre, axes, float(rng.uniform(0, 180)), 0, 360, 1, -1)
        hidden |= blob.astype(bool)
    hidden |= rng.random(depth_m.shape) < noise.speckle_probability
    out[hidden | ~valid] = np.nan
    return out
