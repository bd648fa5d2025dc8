"""The bin's walls and ROI judge a product where it stands on the floor, not where it is seen.

A camera 400 mm above a bin floor, looking straight down (f = 500 px): a point 80 mm high is
seen 400 / 320 = 1.25 times farther from the point below the camera than the floor point under
it. The bin model's rules (`BinView.keep`, `BinView.reachable`) and the ROI of
`edge.ranking.selection.first_in_roi` used each point's own pixel; with depth they now use its
foot (`edge.ranking.floor_feet`).
"""

from __future__ import annotations

import cv2
import numpy as np
import pytest

from edge.bin_model.fill import FillLevel
from edge.bin_model.locate import IDENTITY
from edge.bin_model.stage import BinSettings, BinView
from edge.ranking.floor_feet import FloorFeet
from edge.ranking.result import Grasp
from edge.ranking.selection import first_in_roi
from edge.ranking.suction import SurfacePoints

SIZE = 512
F, C = 500.0, 256.0
CAMERA_HEIGHT_MM = 400.0
K = np.array([[F, 0.0, C], [0.0, F, C], [0.0, 0.0, 1.0]])
MM_PER_PX = CAMERA_HEIGHT_MM / F  # on the floor
SETTINGS = BinSettings(wall_clearance_mm=9.5)


def _pixel(x_mm: float, height_mm: float, camera_x_mm: float) -> float:
    return C + F * (x_mm - camera_x_mm) / (CAMERA_HEIGHT_MM - height_mm)


def _scene(camera_x_mm: float, box_x_mm: tuple[float, float], height_mm: float = 80.0):
    """Depth (m), a label image (1 = the box) and the bin view of a 300 x 300 mm bin floor
    centred at x = 0, for a camera above x = `camera_x_mm`, with a box top `height_mm` high over
    `box_x_mm` (and y within +-20 mm)."""
    depth = np.full((SIZE, SIZE), CAMERA_HEIGHT_MM / 1000.0, np.float32)
    u0, u1 = (_pixel(x, height_mm, camera_x_mm) for x in box_x_mm)
    v0, v1 = (C + F * y / (CAMERA_HEIGHT_MM - height_mm) for y in (-20.0, 20.0))
    box = np.zeros((SIZE, SIZE), bool)
    box[int(np.ceil(v0)) : int(v1) + 1, int(np.ceil(u0)) : int(u1) + 1] = True
    depth[box] = (CAMERA_HEIGHT_MM - height_mm) / 1000.0
    walls = [_pixel(x, 0.0, camera_x_mm) for x in (-150.0, 150.0)]
    tops = [C + F * y / CAMERA_HEIGHT_MM for y in (-150.0, 150.0)]
    interior = np.array([[walls[0], tops[0]], [walls[1], tops[0]], [walls[1], tops[1]], [walls[0], tops[1]]])
    view = BinView(IDENTITY, interior, ~box, FillLevel(10.0), False)
    return depth, box.astype(np.int32), view


def _feet(depth: np.ndarray, dist: np.ndarray | None = None) -> FloorFeet:
    points = SurfacePoints(depth, K, dist, np.array([0.0, 0.0, 1.0]), CAMERA_HEIGHT_MM, depth.shape)
    return FloorFeet(lambda: points, (1.0, 1.0), (1.0, 1.0))


def test_a_raised_points_foot_is_the_floor_point_under_it_with_and_without_lens_distortion():
    depth, _, _ = _scene(0.0, (100.0, 140.0))
    feet = _feet(depth)
    u = _pixel(120.0, 80.0, 0.0)
    fu, fv = feet.at(u, C)
    assert fu == pytest.approx(_pixel(120.0, 0.0, 0.0), abs=F / 320.0)  # within the pixel's width
    assert fv == pytest.approx(C, abs=1.0)
    assert feet.at(100.0, 300.0) == pytest.approx((100.0, 300.0), abs=1e-6)  # the floor is its own foot
    depth[300, 100] = np.nan
    assert feet.at(100.0, 300.0) == (100.0, 300.0)  # no depth: the pixel itself

    dist = np.array([-0.2, 0.05, 0.0, 0.0, 0.0])
    distorted = np.full_like(depth, CAMERA_HEIGHT_MM / 1000.0)
    distorted[200:260, 380:440] = 0.32  # z-depth of points 80 mm above the floor
    feet = _feet(distorted, dist)
    window = feet.window(slice(200, 260), slice(380, 440))
    undistorted = cv2.undistortPoints(np.array([[[410.0, 230.0]]]), K, dist).reshape(2)
    point = np.append(undistorted * 320.0, 320.0)
    floor = point.copy()
    floor[2] = CAMERA_HEIGHT_MM
    expected, _ = cv2.projectPoints(floor.reshape(1, 1, 3), np.zeros(3), np.zeros(3), K, dist)
    assert window[30, 30] == pytest.approx(expected.reshape(2), abs=1e-6)


def test_a_raised_product_near_a_wall_is_kept_where_it_stands_clear_of_the_wall():
    # Its top, 30 mm from the wall, is seen on the floor's outline: judged by its own pixel it was
    # refused (0 px inside, 12 px of clearance needed); its foot is 37 px (30 mm) inside.
    depth, labels, view = _scene(0.0, (100.0, 140.0))
    u = _pixel(120.0, 80.0, 0.0)
    assert u == pytest.approx(view.interior[1, 0], abs=0.5)
    feet = _feet(depth)
    seen = view.keep(labels, (1.0, 1.0), SETTINGS, lambda u, v: MM_PER_PX)
    stands = view.keep(labels, (1.0, 1.0), SETTINGS, lambda u, v: MM_PER_PX, feet.at)
    assert not seen(u, C, 1)
    assert stands(u, C, 1)
    reach = view.reachable(labels.shape, SETTINGS, lambda u, v: MM_PER_PX, feet.window)
    seen_reach = view.reachable(labels.shape, SETTINGS, lambda u, v: MM_PER_PX)
    row, col = int(C), int(u) - 2
    assert reach[row, col] and not seen_reach[row, col]
    window = reach[slice(row - 2, row + 3), slice(col - 2, col + 3)]
    assert window.shape == (5, 5) and window.all()
    # the ROI (the floor's outline) too: the grasp is inside it where it stands
    option = Grasp(u + 1.0, C, 0.0, 10.0, 10.0, 1.0, 0, "centroid")
    assert first_in_roi(iter([option]), view.interior) is None
    assert first_in_roi(iter([option]), view.interior, foot=feet.at) is option


def test_a_raised_product_close_to_the_wall_under_the_camera_is_refused():
    # The camera hangs beside the bin (above x = -250 mm, the wall at -150): the top of a box 5 mm
    # from that wall is seen 39 px inside the floor's outline, and the cup, 7.5 mm in radius,
    # would hit the wall. Where it stands it is 6 px (5 mm) inside: refused.
    depth, labels, view = _scene(-250.0, (-146.0, -106.0))
    u = _pixel(-145.0, 80.0, -250.0)
    feet = _feet(depth)
    seen = view.keep(labels, (1.0, 1.0), SETTINGS, lambda u, v: MM_PER_PX)
    stands = view.keep(labels, (1.0, 1.0), SETTINGS, lambda u, v: MM_PER_PX, feet.at)
    assert seen(u, C, 1)
    assert not stands(u, C, 1)
    reach = view.reachable(labels.shape, SETTINGS, lambda u, v: MM_PER_PX, feet.window)
    seen_reach = view.reachable(labels.shape, SETTINGS, lambda u, v: MM_PER_PX)
    assert seen_reach[int(C), int(u)] and not reach[int(C), int(u)]
    far = _pixel(-113.0, 80.0, -250.0)  # 37 mm from the wall: kept either way
    assert seen(far, C, 1) and stands(far, C, 1)


def test_a_foot_beyond_the_picture_is_judged_against_the_walls_not_refused():
    # The point below the camera lies 200 px left of the picture (a camera looking at the bin from
    # its side): a product 200 mm high, 230 mm from the nearest wall, is seen at the picture's left
    # edge and stands 50-100 px beyond it, farther than the wall-distance canvas reaches.
    cx = -200.0
    k = np.array([[F, 0.0, cx], [0.0, F, C], [0.0, 0.0, 1.0]])
    depth = np.full((SIZE, SIZE), CAMERA_HEIGHT_MM / 1000.0, np.float32)
    u0, u1 = (cx + F * x / 200.0 for x in (80.0, 120.0))
    v0, v1 = (C + F * y / 200.0 for y in (-20.0, 20.0))
    box = np.zeros((SIZE, SIZE), bool)
    box[int(np.ceil(v0)) : int(v1) + 1, int(np.ceil(u0)) : int(u1) + 1] = True
    depth[box] = 0.2  # its top, 200 mm above the floor
    walls = [cx + F * x / CAMERA_HEIGHT_MM for x in (-150.0, 450.0)]
    tops = [C + F * y / CAMERA_HEIGHT_MM for y in (-150.0, 150.0)]
    interior = np.array([[walls[0], tops[0]], [walls[1], tops[0]], [walls[1], tops[1]], [walls[0], tops[1]]])
    view = BinView(IDENTITY, interior, ~box, FillLevel(10.0), False)
    points = SurfacePoints(depth, k, None, np.array([0.0, 0.0, 1.0]), CAMERA_HEIGHT_MM, depth.shape)
    feet = FloorFeet(lambda: points, (1.0, 1.0), (1.0, 1.0))
    row, col = int(C), int(u0) + 10
    fu, _ = feet.at(float(col), float(row))
    assert fu < -50.0  # its foot: off the canvas (the clearance is 12 px)
    reach = view.reachable(box.shape, SETTINGS, lambda u, v: MM_PER_PX, feet.window)
    assert reach[row, col]
    assert view.keep(box.astype(np.int32), (1.0, 1.0), SETTINGS, lambda u, v: MM_PER_PX, feet.at)(col, row, 1)
