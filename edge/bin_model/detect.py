"""Finding the bin's interior in one frame of the empty bin, for `binpick bin` when no polygon is
given: the floor the cup may reach, whose edges the wall clearance is kept from and over which
the fill level is measured.

The picture alone finds the rim: the largest convex quadrilateral outline covering 10-95 % of
the frame (`rim_outline`). That outline lies on the rim, outside the floor (8 px out in the
synthetic test scene), so the interior it makes holds rim and walls, and the empty bin read
14 % full. With depth, the floor is then found inside that outline (`floor_outline`): the plane
most of its pixels lie on (a sampled start, refined by `floor.fit_floor_plane`), its pixels
within the floor tolerance (`floor.floor_from_height`), their largest connected region, and the
quadrilateral fitted to its outline, shrunk edge by edge until it holds that region only.
"""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np

from edge.bin_model.floor import fit_floor_plane, floor_from_height, height_above_floor_mm
from edge.bin_model.model import interior_mask


@dataclass(frozen=True)
class DetectedInterior:
    """`polygon` (4 x 2 camera px) and how it was found: `on_floor` when fitted to the floor seen
    in depth, else the rim's outline from the picture (which may hold rim and walls); `note` says
    which, for the command's output."""

    polygon: np.ndarray
    on_floor: bool
    note: str


def detect_interior(
    gray: np.ndarray, depth_m: np.ndarray | None = None, tolerance_mm: float = 4.0
) -> DetectedInterior | None:
    """The bin's interior in a frame of the empty bin (None when no rim outline is found): with
    depth the floor inside the rim's outline (`floor_outline`), else, or where the floor cannot be
    found, the rim's outline itself."""
    rim = rim_outline(gray)
    if rim is None:
        return None
    if depth_m is None:
        note = "the rim's outline in the picture; without depth it may hold the rim and walls"
        return DetectedInterior(rim, False, note)
    floor = floor_outline(depth_m, interior_mask(rim, gray.shape), tolerance_mm)
    if floor is None:
        note = "the rim's outline in the picture; no floor found in the depth inside it"
        return DetectedInterior(rim, False, note)
    return DetectedInterior(floor, True, "the floor, from depth, inside the rim's outline")


def rim_outline(gray: np.ndarray) -> np.ndarray | None:
    """The largest convex quadrilateral outline covering 10-95 % of the image (a bin seen from
    above: its rim), or None."""
    edges = cv2.Canny(cv2.GaussianBlur(gray, (5, 5), 0), 40, 120)
    edges = cv2.dilate(edges, np.ones((3, 3), np.uint8))
    contours, _ = cv2.findContours(edges, cv2.RETR_LIST, cv2.CHAIN_APPROX_SIMPLE)
    image_area = gray.shape[0] * gray.shape[1]
    best, best_area = None, 0.0
    for contour in contours:
        quad = cv2.approxPolyDP(contour, 0.02 * cv2.arcLength(contour, True), True)
        area = cv2.contourArea(quad)
        plausible = len(quad) == 4 and cv2.isContourConvex(quad) and 0.1 <= area / image_area <= 0.95
        if plausible and area > best_area:
            best, best_area = quad.reshape(4, 2).astype(float), area
    return best


# The floor must be at least this share of the rim's outline: a plane found on less is some
# other surface (a rim, a neighbouring bin), and the rim's outline is kept.
MIN_FLOOR_SHARE = 0.25


def floor_outline(
    depth_m: np.ndarray, within: np.ndarray, tolerance_mm: float = 4.0, seed: int = 0
) -> np.ndarray | None:
    """The floor's quadrilateral (4 x 2 px) inside `within` (H x W bool, the rim's outline), or
    None. The plane is started from the sampled plane with the most pixels within the tolerance
    (rim and walls can be a large share of the outline, and pull a least-squares fit off the
    floor), then refitted by `fit_floor_plane` on those pixels; the floor is its pixels within
    the tolerance (or 2.5 times the fit's RMS, for a noisier camera), specks closed, their
    largest connected region; the quadrilateral fitted to that region's convex hull is shrunk
    edge by edge until at most 1 % of the pixels along each edge lie outside the hull."""
    valid = within & np.isfinite(depth_m) & (depth_m > 0)
    if valid.sum() < 100:
        return None
    start = _plane_start(depth_m, valid, tolerance_mm, seed)
    if start is None:
        return None
    try:
        plane = fit_floor_plane(depth_m, start)
    except ValueError:
        return None
    height = height_above_floor_mm(depth_m, plane)
    floor = floor_from_height(height, max(tolerance_mm, 2.5 * plane.rms_mm), fill_holes=False) & within
    # specks of noise and dropouts closed (5 px), so that a noisy floor stays one region
    floor = cv2.morphologyEx(floor.astype(np.uint8), cv2.MORPH_CLOSE, np.ones((5, 5), np.uint8))
    floor &= within.astype(np.uint8)
    count, labels, stats, _ = cv2.connectedComponentsWithStats(floor, connectivity=8)
    if count < 2:
        return None
    largest = 1 + int(np.argmax(stats[1:, cv2.CC_STAT_AREA]))
    if stats[largest, cv2.CC_STAT_AREA] < MIN_FLOOR_SHARE * within.sum():
        return None
    region = (labels == largest).astype(np.uint8)
    contours, _ = cv2.findContours(region, cv2.RETR_EXTERNAL, cv2.CHAIN_APPROX_NONE)
    outline = max(contours, key=len).reshape(-1, 2).astype(float)
    hull = cv2.convexHull(outline.astype(np.float32))
    hull_mask = interior_mask(hull.reshape(-1, 2), region.shape)
    quad = _quadrilateral(hull)
    if quad is None:
        return None
    quad = _fit_edges(quad, outline)
    return _shrink_to_fit(quad, hull_mask)


def _plane_start(depth_m: np.ndarray, valid: np.ndarray, tolerance_mm: float, seed: int) -> np.ndarray | None:
    """The pixels of `valid` within `tolerance_mm` of the plane (1/z affine in u, v) through three
    sampled pixels that has the most of them, of 200 samples (fixed seed: the same frame gives the
    same interior)."""
    v, u = np.nonzero(valid)
    z = depth_m[v, u].astype(np.float64)
    rng = np.random.default_rng(seed)
    pick = rng.choice(len(u), min(len(u), 4000), replace=False)
    design = np.column_stack([u[pick], v[pick], np.ones(len(pick))]).astype(np.float64)
    target = 1.0 / z[pick]
    best, best_count = None, 0
    for _ in range(200):
        three = rng.choice(len(pick), 3, replace=False)
        try:
            coef = np.linalg.solve(design[three], target[three])
        except np.linalg.LinAlgError:
            continue
        inverse = design @ coef
        with np.errstate(divide="ignore", invalid="ignore"):
            inliers = np.abs(1.0 / inverse - z[pick]) * 1000.0 <= tolerance_mm
        inliers &= inverse > 0
        if inliers.sum() > best_count:
            best, best_count = coef, int(inliers.sum())
    if best is None or best_count < 30:
        return None
    inverse = np.column_stack([u, v, np.ones(len(u))]) @ best
    with np.errstate(divide="ignore", invalid="ignore"):
        near = (inverse > 0) & (np.abs(1.0 / inverse - z) * 1000.0 <= tolerance_mm)
    mask = np.zeros(valid.shape, bool)
    mask[v[near], u[near]] = True
    return mask


def _quadrilateral(hull: np.ndarray) -> np.ndarray | None:
    """Four corners approximating a convex hull (approxPolyDP with a growing tolerance; the
    minimum-area rectangle where no tolerance gives four)."""
    perimeter = cv2.arcLength(hull, True)
    for share in (0.01, 0.02, 0.03, 0.05, 0.08):
        approx = cv2.approxPolyDP(hull, share * perimeter, True).reshape(-1, 2)
        if len(approx) == 4:
            return approx.astype(float)
        if len(approx) < 4:
            break
    return cv2.boxPoints(cv2.minAreaRect(hull)).astype(float)


def _fit_edges(quad: np.ndarray, outline: np.ndarray) -> np.ndarray:
    """Each edge refitted as the line through the region's outline points near it (within 3 px,
    away from the corners: a product or a rounded corner bends the outline off the wall there),
    the corners as the refitted lines' intersections. An edge with too few points keeps its own."""
    lines = []
    for i in range(4):
        p, q = quad[i], quad[(i + 1) % 4]
        length = float(np.linalg.norm(q - p))
        direction = (q - p) / max(length, 1e-9)
        normal = np.array([-direction[1], direction[0]])
        along = (outline - p) @ direction
        across = (outline - p) @ normal
        near = (np.abs(across) <= 3.0) & (along > 0.1 * length) & (along < 0.9 * length)
        if near.sum() >= 10:
            points = outline[near].astype(np.float32)
            vx, vy, x0, y0 = cv2.fitLine(points, cv2.DIST_HUBER, 0, 0.01, 0.01).ravel()
            lines.append((np.array([x0, y0], float), np.array([vx, vy], float)))
        else:
            lines.append((p, direction))
    corners = _corners(lines)
    return quad if corners is None else corners


def _shrink_to_fit(
    quad: np.ndarray, region: np.ndarray, allowed: float = 0.01, step: float = 0.5
) -> np.ndarray | None:
    """The quadrilateral with each edge moved inwards, half a pixel at a time, until at most
    `allowed` of the interior's pixels within a pixel of that edge lie outside `region` (as
    `interior_mask` draws it: the interior the stage will use). None when an edge would move
    more than a fifth of the quadrilateral's size."""
    if _signed_area(quad) < 0:  # the inward normal of `_offset` needs a positive area
        quad = quad[::-1].copy()
    size = float(np.ptp(quad, axis=0).min())
    (u0, v0), (u1, v1) = np.floor(quad.min(axis=0)).astype(int) - 2, np.ceil(quad.max(axis=0)).astype(int) + 2
    u0, v0 = max(u0, 0), max(v0, 0)
    window = region[v0:v1, u0:u1]
    v, u = np.mgrid[v0 : v0 + window.shape[0], u0 : u0 + window.shape[1]]
    offsets = np.zeros(4)
    while offsets.max() <= 0.2 * size:
        current = _offset(quad, offsets)
        if current is None:
            return None
        inside = interior_mask(current, region.shape)[v0:v1, u0:u1]
        moved = False
        for i in range(4):
            p, q = current[i], current[(i + 1) % 4]
            d = (q - p) / max(float(np.linalg.norm(q - p)), 1e-9)
            strip = inside & (np.abs((u - p[0]) * d[1] - (v - p[1]) * d[0]) <= 1.0)
            if (strip & ~window).sum() > allowed * strip.sum():
                offsets[i] += step
                moved = True
        if not moved:
            return current
    return None


def _signed_area(points: np.ndarray) -> float:
    x, y = points[:, 0], points[:, 1]
    return 0.5 * float(np.sum(x * np.roll(y, -1) - np.roll(x, -1) * y))


def _offset(quad: np.ndarray, offsets: np.ndarray) -> np.ndarray | None:
    """The quadrilateral with edge i (corner i to i + 1) moved `offsets[i]` px inwards."""
    lines = []
    for i in range(4):
        p, q = quad[i], quad[(i + 1) % 4]
        d = (q - p) / max(float(np.linalg.norm(q - p)), 1e-9)
        lines.append((p + offsets[i] * np.array([-d[1], d[0]]), d))  # left of the edge: inwards
    return _corners(lines)


def _corners(lines: list[tuple[np.ndarray, np.ndarray]]) -> np.ndarray | None:
    """Corner i where line i - 1 meets line i (each line a point and a direction); None where
    two neighbours are parallel."""
    corners = []
    for i in range(4):
        (p1, d1), (p2, d2) = lines[i - 1], lines[i]
        matrix = np.column_stack([d1, -d2])
        if abs(np.linalg.det(matrix)) < 1e-9:
            return None
        t = np.linalg.solve(matrix, p2 - p1)
        corners.append(p1 + t[0] * d1)
    return np.array(corners)
