"""2.5D piles without a renderer: flat shapes drawn in order, with `mikado.ground_truth` maps.

Why: the hot path's tests and benchmarks need boundary and occlusion maps with a known answer,
at any size, in milliseconds. A pile here is a list of flat shapes, each at a level (a later or
higher one lies on top); the visible label image is the shapes painted in order, the depth is
the level (`mikado.ground_truth.depth_from_order`) and the maps are DESIGN.md's ground truth,
computed by the one implementation (`mikado.ground_truth.ground_truth`), exactly as for a
rendered Mikado pile. Nothing in `edge/` imports this module: the appliance does not depend on
the factory.

Piles (all deterministic in their seed):
- `make_pile`: rounded packages (filled ellipses) in painter's order, the default test input;
- `shapes_pile`: ellipses, rectangles, triangles and polygons of very different sizes;
- `identical_pile`: a dense pile of one item (the same rounded sachet) in painter's order;
- `touching_pile`: layers of tiles that touch at one height (no occlusion between them), each
  layer on top of the one below.
"""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np

from mikado.ground_truth import depth_from_order, ground_truth

BACKGROUND = 0


@dataclass(frozen=True)
class FlatPile:
    labels: np.ndarray  # H x W int32, 0 = background, k = k-th drawn shape
    boundaries: np.ndarray  # H x W float32 in [0, 1]
    occlusions: np.ndarray  # H x W float32 in [0, 1]
    level: np.ndarray  # (K + 1,) level of each label (higher = nearer); level[0] = 0, the floor
    # (K + 1,) share of each shape's own silhouette that shows a nearer shape (0 = unoccluded);
    # index 0 (background) is 0.
    occluded_share: np.ndarray


def _finish(masks: list[np.ndarray], level: list[float], rng: np.random.Generator, noise: float) -> FlatPile:
    """Paint `masks` in order (a later one hides an earlier one where they overlap), compute the
    ground truth and each shape's occluded share; `noise` > 0 blurs the maps and adds noise like
    a network's output."""
    shape = masks[0].shape if masks else (0, 0)
    labels = np.zeros(shape, np.int32)
    for k, m in enumerate(masks, start=1):
        labels[m] = k
    levels = np.asarray([0.0, *level], np.float64)
    boundary, occlusion = ground_truth(labels, depth_from_order(labels, levels))
    share = np.zeros(len(masks) + 1, np.float64)
    for k, m in enumerate(masks, start=1):
        area = int(m.sum())
        if area:
            share[k] = float((levels[labels[m]] > levels[k]).sum()) / area
    y = boundary.astype(np.float32)
    z = occlusion.astype(np.float32)
    if noise > 0:
        y = cv2.GaussianBlur(y, (0, 0), 0.8) * 1.6 + rng.normal(0, noise, y.shape).astype(np.float32)
        z = cv2.GaussianBlur(z, (0, 0), 0.8) * 1.6 + rng.normal(0, noise, z.shape).astype(np.float32)
        y, z = np.clip(y, 0, 1), np.clip(z, 0, 1)
    return FlatPile(labels=labels, boundaries=y, occlusions=z, level=levels, occluded_share=share)


def _ellipse(
    height: int, width: int, centre: tuple[int, int], axes: tuple[int, int], angle: float
) -> np.ndarray:
    m = np.zeros((height, width), np.uint8)
    cv2.ellipse(m, centre, axes, angle, 0, 360, 1, thickness=-1)
    return m.astype(bool)


def _polygon(height: int, width: int, points: np.ndarray) -> np.ndarray:
    m = np.zeros((height, width), np.uint8)
    cv2.fillPoly(m, [np.round(points).astype(np.int32)], 1)
    return m.astype(bool)


def _rotated_rect(centre: tuple[float, float], size: tuple[float, float], angle_deg: float) -> np.ndarray:
    return cv2.boxPoints((centre, size, angle_deg))


def package_masks(rng: np.random.Generator, height: int, width: int, instances: int) -> list[np.ndarray]:
    """Ellipses of package-like sizes, in drawing order."""
    scale = min(height, width)
    masks = []
    for _ in range(instances):
        centre = (int(rng.integers(0, width)), int(rng.integers(0, height)))
        major = int(rng.uniform(0.10, 0.18) * scale)
        minor = max(2, int(major * rng.uniform(0.45, 0.95)))
        angle = float(rng.uniform(0, 180))
        masks.append(_ellipse(height, width, centre, (major, minor), angle))
    return masks


def make_pile(
    seed: int, height: int = 512, width: int = 512, instances: int = 30, noise: float = 0.0
) -> FlatPile:
    """A pile of `instances` rounded packages in painter's order (each one above all before it)."""
    rng = np.random.default_rng(seed)
    masks = package_masks(rng, height, width, instances)
    return _finish(masks, [float(k) for k in range(1, instances + 1)], rng, noise)


def shapes_pile(
    seed: int, height: int = 512, width: int = 512, instances: int = 30, noise: float = 0.0
) -> FlatPile:
    """Flat shapes of many kinds and sizes (3-30 % of the image side) in painter's order: large
    shapes drawn early and half hidden compete with small ones on top."""
    rng = np.random.default_rng(seed)
    scale = min(height, width)
    masks = []
    for _ in range(instances):
        cx, cy = float(rng.uniform(0, width)), float(rng.uniform(0, height))
        size = float(rng.uniform(0.03, 0.30)) * scale
        angle = float(rng.uniform(0, 180))
        kind = int(rng.integers(0, 4))
        if kind == 0:
            minor = max(2, int(size * rng.uniform(0.3, 1.0) / 2))
            masks.append(_ellipse(height, width, (int(cx), int(cy)), (max(2, int(size / 2)), minor), angle))
        elif kind == 1:
            box = _rotated_rect((cx, cy), (size, size * float(rng.uniform(0.2, 1.0))), angle)
            masks.append(_polygon(height, width, box))
        else:  # a triangle (kind 2) or a convex polygon of 5-8 corners (kind 3)
            corners = 3 if kind == 2 else int(rng.integers(5, 9))
            phi = np.sort(rng.uniform(0, 2 * np.pi, corners))
            radius = size / 2 * rng.uniform(0.7, 1.0, corners)
            pts = np.stack([cx + radius * np.cos(phi), cy + radius * np.sin(phi)], axis=1)
            masks.append(_polygon(height, width, cv2.convexHull(pts.astype(np.float32))[:, 0, :]))
    return _finish(masks, [float(k) for k in range(1, instances + 1)], rng, noise)


def identical_pile(
    seed: int, height: int = 512, width: int = 512, instances: int = 60, noise: float = 0.0
) -> FlatPile:
    """A dense pile of identical sachets (one size, rounded ends), in painter's order."""
    rng = np.random.default_rng(seed)
    scale = min(height, width)
    length, breadth = 0.22 * scale, 0.09 * scale
    masks = []
    for _ in range(instances):
        cx, cy = float(rng.uniform(0, width)), float(rng.uniform(0, height))
        angle = float(rng.uniform(0, 180))
        m = np.zeros((height, width), np.uint8)
        body = _rotated_rect((cx, cy), (length - breadth, breadth), angle)
        cv2.fillPoly(m, [np.round(body).astype(np.int32)], 1)
        dx, dy = np.cos(np.radians(angle)), np.sin(np.radians(angle))
        for sign in (-1, 1):
            end = (cx + sign * dx * (length - breadth) / 2, cy + sign * dy * (length - breadth) / 2)
            cv2.circle(m, (round(end[0]), round(end[1])), round(breadth / 2), 1, -1)
        masks.append(m.astype(bool))
    return _finish(masks, [float(k) for k in range(1, instances + 1)], rng, noise)


def touching_pile(
    seed: int, height: int = 512, width: int = 512, layers: int = 3, noise: float = 0.0
) -> FlatPile:
    """Layers of tiles that touch their neighbours at one height (no occlusion between them).

    The first layer covers the image with a grid of tiles (a few cells left empty); each next
    layer is a smaller block of touching tiles, turned and shifted at random, lying on the one
    below. Tiles of a layer share its level, so only a higher layer occludes.
    """
    rng = np.random.default_rng(seed)
    scale = min(height, width)
    masks: list[np.ndarray] = []
    level: list[float] = []
    for layer in range(layers):
        tile_w = float(rng.uniform(0.12, 0.25)) * scale
        tile_h = float(rng.uniform(0.10, 0.20)) * scale
        if layer == 0:
            cols, rows = int(np.ceil(width / tile_w)), int(np.ceil(height / tile_h))
            origin, angle = (0.0, 0.0), 0.0
        else:
            cols, rows = int(rng.integers(1, 4)), int(rng.integers(1, 4))
            origin = (float(rng.uniform(0, width - tile_w)), float(rng.uniform(0, height - tile_h)))
            angle = float(rng.uniform(-40, 40))
        c, s = np.cos(np.radians(angle)), np.sin(np.radians(angle))
        for r in range(rows):
            for q in range(cols):
                if layer == 0 and rng.random() < 0.1:
                    continue  # an empty cell shows the floor
                corners = np.array([[q, r], [q + 1, r], [q + 1, r + 1], [q, r + 1]], np.float64)
                corners *= (tile_w, tile_h)
                rotated = corners @ np.array([[c, s], [-s, c]]) + origin
                masks.append(_polygon(height, width, rotated))
                level.append(float(layer + 1))
    return _finish(masks, level, rng, noise)
