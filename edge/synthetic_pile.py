"""Synthetic piles of rounded packages as ideal network outputs (benchmarks, tests, bundled example).

Why here and not Mikado: the hot path needs boundary and occlusion maps with a
known answer, at any size, in milliseconds and without a renderer. Instances
are filled ellipses drawn in painter's order (a later instance lies on top),
and the maps follow DESIGN.md's ground truth on that label image: a boundary
pixel is 4-adjacent to a pixel of another label (background counts as one);
the occluding side is the upper instance's non-boundary pixels next to a
boundary pixel where exactly two labels meet.
"""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np

BACKGROUND = 0


@dataclass(frozen=True)
class SyntheticPile:
    labels: np.ndarray  # H x W int32, 0 = background, k = k-th drawn instance (higher = upper)
    boundaries: np.ndarray  # H x W float32 in [0, 1]
    occlusions: np.ndarray  # H x W float32 in [0, 1]


def _shifted(a: np.ndarray, dy: int, dx: int, fill: int) -> np.ndarray:
    """a shifted so that out[y, x] = a[y + dy, x + dx] (fill outside the image)."""
    out = np.full_like(a, fill)
    h, w = a.shape
    out[max(0, -dy) : h - max(0, dy), max(0, -dx) : w - max(0, dx)] = a[
        max(0, dy) : h - max(0, -dy), max(0, dx) : w - max(0, -dx)
    ]
    return out


NEIGHBOURS = ((0, -1), (0, 1), (-1, 0), (1, 0))


def paint_labels(rng: np.random.Generator, height: int, width: int, instances: int) -> np.ndarray:
    """Ellipses of package-like sizes drawn in painter's order; returns the visible label image."""
    labels = np.zeros((height, width), np.int32)
    scale = min(height, width)
    for k in range(1, instances + 1):
        centre = (int(rng.integers(0, width)), int(rng.integers(0, height)))
        major = int(rng.uniform(0.10, 0.18) * scale)
        minor = max(2, int(major * rng.uniform(0.45, 0.95)))
        angle = float(rng.uniform(0, 180))
        cv2.ellipse(labels, centre, (major, minor), angle, 0, 360, int(k), thickness=-1)
    return labels


def ground_truth_maps(labels: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Boundary and occlusion maps (bool) of a label image whose higher labels lie on top."""
    neighbours = [_shifted(labels, dy, dx, -1) for dy, dx in NEIGHBOURS]
    boundary = np.zeros(labels.shape, bool)
    for n in neighbours:
        boundary |= (n != -1) & (n != labels)
    # Labels meeting at each boundary pixel (itself and its in-image 4-neighbours): the upper one
    # occludes when exactly two meet.
    stack = np.stack([labels, *neighbours])
    upper = stack.max(axis=0)
    valid = stack != -1
    lower = np.where(valid, stack, np.iinfo(np.int32).max).min(axis=0)
    two_labels = np.all(~valid | (stack == upper) | (stack == lower), axis=0) & (upper != lower)
    occluding_boundary = boundary & two_labels & (upper != BACKGROUND)
    occlusion = np.zeros(labels.shape, bool)
    for dy, dx in NEIGHBOURS:
        # q gets 1 when its neighbour p = q + (dy, dx) is such a boundary pixel and q has the upper label.
        p_occ = _shifted(occluding_boundary.astype(np.int32), dy, dx, 0).astype(bool)
        p_upper = _shifted(upper, dy, dx, -1)
        occlusion |= p_occ & ~boundary & (labels == p_upper)
    return boundary, occlusion


def make_pile(
    seed: int, height: int = 512, width: int = 512, instances: int = 30, noise: float = 0.0
) -> SyntheticPile:
    """A pile of `instances` packages; `noise` > 0 blurs the maps and adds noise like a network's output."""
    rng = np.random.default_rng(seed)
    labels = paint_labels(rng, height, width, instances)
    boundary, occlusion = ground_truth_maps(labels)
    y = boundary.astype(np.float32)
    z = occlusion.astype(np.float32)
    if noise > 0:
        y = cv2.GaussianBlur(y, (0, 0), 0.8) * 1.6 + rng.normal(0, noise, y.shape).astype(np.float32)
        z = cv2.GaussianBlur(z, (0, 0), 0.8) * 1.6 + rng.normal(0, noise, z.shape).astype(np.float32)
        y, z = np.clip(y, 0, 1), np.clip(z, 0, 1)
    return SyntheticPile(labels=labels, boundaries=y, occlusions=z)
