"""Synthetic top-down photos of a bin for the bin-model tests: a textured table, a bin with a
bright rim and a textured floor, products drawn inside, and the matching depth (metres)."""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np

SIZE = (320, 240)  # width, height
INTERIOR = np.array([[70, 50], [250, 50], [250, 190], [70, 190]], float)
RIM_PX = 10
FLOOR_M = 0.80  # camera to the bin floor (with a tilt, see depth)
RIM_MM = 60.0
PRODUCT_MM = 25.0


@dataclass
class BinScene:
    rgb: np.ndarray
    depth_m: np.ndarray
    products: np.ndarray  # bool, product pixels
    interior: np.ndarray  # N x 2 in this frame


def _texture(rng: np.random.Generator, shape: tuple[int, int], base: int, amplitude: int) -> np.ndarray:
    noise = rng.normal(0.0, 1.0, (shape[0] // 4 + 1, shape[1] // 4 + 1)).astype(np.float32)
    noise = cv2.resize(noise, (shape[1], shape[0]), interpolation=cv2.INTER_CUBIC)
    return np.clip(base + amplitude * noise, 0, 255)


def bin_scene(
    products: int = 5, shift: tuple[float, float] = (0.0, 0.0), angle_deg: float = 0.0, seed: int = 0,
    gain: float = 1.0, offset: float = 0.0, with_bin: bool = True,
) -> BinScene:  # fmt: skip
    """The bin (moved by `shift` px and turned by `angle_deg` about the image centre) with
    `products` ellipses on its floor; `gain`/`offset` change the light."""
    w, h = SIZE
    rng = np.random.default_rng(1000 + seed)
    table = _texture(np.random.default_rng(7), (h, w), 120, 25)  # the table does not move
    image = table.copy()
    height_mm = np.zeros((h, w), np.float32) - 40.0  # the table is below the bin floor
    turn = cv2.getRotationMatrix2D((w / 2, h / 2), -angle_deg, 1.0)
    turn[:, 2] += shift
    interior = INTERIOR @ turn[:, :2].T + turn[:, 2]
    product_mask = np.zeros((h, w), bool)
    if with_bin:
        floor_layer = _texture(np.random.default_rng(11), (h, w), 70, 30)  # the bin's own floor print
        floor_layer = cv2.warpAffine(floor_layer, turn, (w, h))
        inside = np.zeros((h, w), np.uint8)
        cv2.fillPoly(inside, [np.round(interior).astype(np.int32)], 1)
        outer = np.zeros((h, w), np.uint8)
        cv2.polylines(outer, [np.round(interior).astype(np.int32)], True, 1, 2 * RIM_PX)
        rim = outer.astype(bool) & ~inside.astype(bool)
        image[inside.astype(bool)] = floor_layer[inside.astype(bool)]
        image[rim] = 215
        height_mm[inside.astype(bool)] = 0.0
        height_mm[rim] = RIM_MM
        for _ in range(products):
            centre = interior.mean(axis=0) + rng.uniform(-50, 50, 2) * [1.0, 0.6]
            axes = (int(rng.integers(12, 22)), int(rng.integers(7, 12)))
            mask = np.zeros((h, w), np.uint8)
            cv2.ellipse(mask, tuple(int(c) for c in centre), axes, float(rng.uniform(0, 180)), 0, 360, 1, -1)
            mask = mask.astype(bool) & inside.astype(bool)
            image[mask] = rng.uniform(170, 250)
            height_mm[mask] = PRODUCT_MM
            product_mask |= mask
    v, u = np.mgrid[0:h, 0:w]
    floor_depth = FLOOR_M + 0.0002 * (u - w / 2) + 0.0001 * (v - h / 2)  # a slightly tilted floor
    depth = (floor_depth - height_mm / 1000.0).astype(np.float32)
    gray = np.clip(gain * image + offset, 0, 255).astype(np.uint8)
    rgb = np.dstack([gray, gray, gray])
    return BinScene(rgb, depth, product_mask, interior)
