"""edge.ranking.suction: where the cup seals, on depth maps of known surfaces seen by a pinhole
camera; the selection's use of it; the appliance's stage and configuration."""

import math
from dataclasses import replace

import numpy as np
import pytest

from edge.ranking.result import Grasp
from edge.ranking.suction import SealFit, SuctionParams, SuctionPlacer, SurfacePoints, seal_fit

FX = 500.0
SIZE = 256
K = np.array([[FX, 0.0, (SIZE - 1) / 2], [0.0, FX, (SIZE - 1) / 2], [0.0, 0.0, 1.0]])
FLOOR_NORMAL = np.array([0.0, 0.0, 1.0])  # the camera looks straight down at the floor


def _rays() -> tuple[np.ndarray, np.ndarray]:
    v, u = np.mgrid[0:SIZE, 0:SIZE].astype(np.float64)
    return (u - K[0, 2]) / FX, (v - K[1, 2]) / FX


def _scene(camera_mm: float, top_mm: float, half_mm: tuple[float, float], tilt_deg: float = 0.0):
    """Depth (m) and labels of a rectangular top face (label 1) of half-size `half_mm` centred
    under the camera, `top_mm` above the floor (label 2), tilted about the image's v axis."""
    rx, ry = _rays()
    slope = math.tan(math.radians(tilt_deg))
    # plane height = top + slope * X, camera distance z = camera - height; X = rx * z
    z_top = (camera_mm - top_mm) / (1.0 + slope * rx)
    x, y = rx * z_top, ry * z_top
    on_top = (np.abs(x) <= half_mm[0]) & (np.abs(y) <= half_mm[1])
    depth = np.where(on_top, z_top, camera_mm) / 1000.0
    labels = np.where(on_top, 1, 2).astype(np.int32)
    return depth.astype(np.float32), labels


def _points(depth: np.ndarray, camera_mm: float) -> SurfacePoints:
    return SurfacePoints(depth, K, None, FLOOR_NORMAL, camera_mm, depth.shape)


def _metric(fit: SealFit, depth: np.ndarray) -> tuple[float, float]:
    z = float(depth[round(fit.v), round(fit.u)]) * 1000.0
    return (fit.u - K[0, 2]) * z / FX, (fit.v - K[1, 2]) * z / FX


def test_a_level_top_face_seals_at_its_middle_at_any_distance():
    for camera_mm in (300.0, 1200.0):
        depth, labels = _scene(camera_mm, 40.0, (40.0, 25.0))
        fit = seal_fit(_points(depth, camera_mm), labels, 1, SuctionParams(cup_radius_mm=7.5))
        assert fit is not None
        assert fit.tilt_deg < 1.0 and fit.residual_mm < 0.2
        x, y = _metric(fit, depth)
        assert abs(y) < 3.0  # across the narrow side: the middle
        assert abs(x) < 40.0 - 7.5  # the whole cup on the face
        assert fit.clearance_mm >= 2.0


def test_a_face_narrower_than_the_cup_never_seals_however_many_pixels_it_covers():
    # 12 mm wide: a 7.5 mm cup (15 mm across) overhangs at 300 mm (where the face is 20 px wide)
    # as at 1200 mm; a 10 mm margin-free face fits a 4 mm cup.
    for camera_mm in (300.0, 1200.0):
        depth, labels = _scene(camera_mm, 40.0, (40.0, 6.0))
        assert seal_fit(_points(depth, camera_mm), labels, 1, SuctionParams(cup_radius_mm=7.5)) is None
        small = SuctionParams(cup_radius_mm=3.0, min_clearance_mm=0.5)
        assert seal_fit(_points(depth, camera_mm), labels, 1, small) is not None


def test_tilt_is_measured_and_limited():
    depth, labels = _scene(400.0, 40.0, (40.0, 30.0), tilt_deg=20.0)
    points = _points(depth, 400.0)
    fit = seal_fit(points, labels, 1, SuctionParams())
    assert fit is not None and fit.tilt_deg == pytest.approx(20.0, abs=1.5)
    assert seal_fit(points, labels, 1, SuctionParams(max_tilt_deg=15.0)) is None
    steep, labels = _scene(400.0, 40.0, (40.0, 30.0), tilt_deg=45.0)
    assert seal_fit(_points(steep, 400.0), labels, 1, SuctionParams()) is None


def test_the_cup_keeps_off_a_ridge_across_the_face():
    depth, labels = _scene(400.0, 40.0, (25.0, 25.0))
    rx, _ = _rays()
    x = rx * depth * 1000.0
    roof = np.where(labels == 1, depth - (25.0 - np.abs(x)) * 0.3 / 1000.0, depth).astype(np.float32)
    fit = seal_fit(_points(roof, 400.0), labels, 1, SuctionParams(max_residual_mm=0.2))
    assert fit is not None
    ridge_x, _ = _metric(fit, roof)
    assert abs(ridge_x) >= 7.5 - 1.0  # the whole disc on one side of the ridge
    assert fit.tilt_deg == pytest.approx(math.degrees(math.atan(0.3)), abs=2.0)


def test_a_neighbour_under_part_of_the_disc_makes_it_leak():
    depth, labels = _scene(400.0, 40.0, (40.0, 30.0))
    split = labels.copy()
    split[(labels == 1) & (np.arange(SIZE)[None, :] > SIZE // 2)] = 3  # another product, same height
    fit = seal_fit(_points(depth, 400.0), split, 1, SuctionParams())
    assert fit is not None
    x, _ = _metric(fit, depth)
    assert x <= -7.5 - 2.0 + 1.0  # the cup stays on its own product, a margin from the seam


def test_stereo_holes_on_the_face_are_inpainted_but_a_blind_face_is_refused():
    depth, labels = _scene(400.0, 40.0, (40.0, 30.0))
    holed = depth.copy()
    holed[::2, ::3] = np.nan  # dropouts all over the face
    assert seal_fit(_points(holed, 400.0), labels, 1, SuctionParams()) is not None
    blind = np.where(labels == 1, np.nan, depth).astype(np.float32)  # no depth on the face at all
    assert seal_fit(_points(blind, 400.0), labels, 1, SuctionParams()) is None


def test_the_floor_plane_may_be_given_in_the_robots_frame():
    # camera 500 mm above a floor at robot z = -300, looking down: camera z = -robot z
    robot_from_camera = np.diag([1.0, -1.0, -1.0, 1.0])
    robot_from_camera[:3, 3] = [10.0, 20.0, 200.0]
    normal, offset = SurfacePoints.floor_in_camera(robot_from_camera, np.array([0.0, 0.0, 1.0]), -300.0)
    depth, labels = _scene(500.0, 40.0, (40.0, 30.0))
    points = SurfacePoints(depth, K, None, normal, offset, depth.shape)
    fit = seal_fit(points, labels, 1, SuctionParams())
    assert fit is not None and fit.tilt_deg < 1.0


def test_a_map_smaller_than_the_depth_samples_it():
    depth, labels = _scene(400.0, 40.0, (40.0, 30.0))
    half = labels[1::2, 1::2]
    points = SurfacePoints(depth, K, None, FLOOR_NORMAL, 400.0, half.shape)
    fit = seal_fit(points, half, 1, SuctionParams())
    assert fit is not None and half[round(fit.v), round(fit.u)] == 1


def test_params_are_validated():
    for bad in ({"cup_radius_mm": 0}, {"max_tilt_deg": 90}, {"max_residual_mm": 0},
                {"min_clearance_mm": -1}, {"max_candidates": 0}):  # fmt: skip
        with pytest.raises(ValueError, match=next(iter(bad))):
            SuctionParams(**bad)


def test_the_placer_fits_each_candidate_once_and_only_up_to_its_limit():
    depth, labels = _scene(400.0, 40.0, (40.0, 30.0))
    made = []

    def make() -> SurfacePoints:
        made.append(1)
        return _points(depth, 400.0)

    placer = SuctionPlacer(make, labels, SuctionParams(max_candidates=1))
    option = Grasp(1.0, 1.0, 0.0, 10.0, 5.0, 0.9, 0, "centroid")
    moved = placer(option, 1)
    assert moved is not None and moved.method == "suction" and labels[round(moved.v), round(moved.u)] == 1
    assert replace(moved, u=1.0, v=1.0, method="centroid") == option  # only the point moved
    assert placer(option, 1) == moved and len(made) == 1
    assert placer(option, 2) is None  # over the limit: not examined
    assert list(placer.fits) == [1]


def test_the_appliance_stage_runs_with_depth_and_a_calibration_and_says_why_not_otherwise():
    from edge.calibration_file import Calibration
    from edge.config import SuctionSection
    from edge.suction_stage import SuctionStage

    camera_mm = 400.0
    depth, labels = _scene(camera_mm, 40.0, (40.0, 30.0))
    # the robot's frame: camera 400 mm above a floor at robot z = 0, looking down
    robot_from_camera = np.diag([1.0, -1.0, -1.0, 1.0])
    robot_from_camera[:3, 3] = [0.0, 0.0, camera_mm]
    big_k = K.copy()
    big_k[:2] *= 2.0  # calibrated at twice the depth map's size: the stage rescales
    floor = np.array([0.0, 0.0, 1.0])
    cal = Calibration("t", (2 * SIZE, 2 * SIZE), big_k, np.zeros(5), robot_from_camera, floor, 0.0)
    stage = SuctionStage.from_config(SuctionSection(enabled=True))
    placer = stage.placer(depth, cal, labels)
    assert placer is not None and stage.inactive == ""
    option = Grasp(3.0, 3.0, 0.0, 10.0, 5.0, 0.9, 0, "centroid")
    moved = placer(option, 1)
    assert moved is not None and moved.method == "suction"
    assert abs(moved.u - K[0, 2]) < 0.3 * SIZE and abs(moved.v - K[1, 2]) < 3  # the face's middle band
    assert stage.record(placer, "suction", 1)["tilt_deg"] < 1.0
    assert stage.status()["placed"] == 1
    assert stage.placer(None, cal, labels) is None and "no depth" in stage.inactive
    assert stage.placer(depth, None, labels) is None and "pixel mode" in stage.inactive
    off = SuctionStage.from_config(SuctionSection(enabled=False))
    assert off.placer(depth, cal, labels) is None and off.inactive == ""


def test_a_reachable_mask_moves_the_cup_to_the_part_of_the_face_it_allows():
    depth, labels = _scene(400.0, 40.0, (40.0, 30.0))
    points = _points(depth, 400.0)
    free = seal_fit(points, labels, 1, SuctionParams())
    reachable = np.ones_like(labels, bool)
    reachable[:, : round(free.u) + 10] = False  # a wall's clearance band over the middle and left
    fit = seal_fit(points, labels, 1, SuctionParams(), reachable)
    assert fit is not None and fit.u >= free.u + 10 and reachable[round(fit.v), round(fit.u)]
    assert seal_fit(points, labels, 1, SuctionParams(), np.zeros_like(reachable)) is None


def test_the_bin_views_reachable_area_keeps_clear_of_walls_and_floor():
    from edge.bin_model.fill import FillLevel
    from edge.bin_model.locate import IDENTITY
    from edge.bin_model.stage import BinSettings, BinView

    floor = np.zeros((100, 120), bool)
    floor[40:60, 50:70] = True  # a patch of bare floor in the middle
    interior = np.array([[10, 10], [109, 10], [109, 89], [10, 89]], np.float32)
    view = BinView(IDENTITY, interior, floor, FillLevel(50.0), False)
    settings = BinSettings(wall_clearance_px=8.0, wall_clearance_mm=16.0)
    ok = view.reachable((50, 60), settings).mask()  # half size: the ranking's map
    assert ok.shape == (50, 60)
    assert ok[25, 15] and not ok[25, 30]  # product area yes, bare floor no
    assert not ok[25, 5] and not ok[2, 30]  # within the clearance of the walls, or outside
    calibrated = view.reachable((100, 120), settings, mm_per_px=lambda u, v: 1.0).mask()  # 16 px
    assert calibrated[30, 30] and not calibrated[30, 20]


def test_the_grasp_pixel_is_on_the_surface_the_cup_meets_not_on_a_side_face():
    """A tall box off the camera's axis shows its side face; its top face seals. The published
    pixel must be one of the top face's: the robot follows that pixel's line of sight down."""
    camera_mm, top_mm, x0, x1, half_y = 300.0, 100.0, 25.0, 50.0, 20.0
    rx, ry = _rays()
    z_top = camera_mm - top_mm
    on_top = (rx * z_top >= x0) & (rx * z_top <= x1) & (np.abs(ry * z_top) <= half_y)
    with np.errstate(divide="ignore", invalid="ignore"):
        z_side = x0 / rx  # the face x = x0, which faces the camera's axis
    side_height = camera_mm - z_side
    on_side = (
        ~on_top & (rx > 0) & (side_height >= 0) & (side_height <= top_mm) & (np.abs(ry * z_side) <= half_y)
    )
    depth_mm = np.where(on_top, z_top, np.where(on_side, z_side, camera_mm))
    labels = np.where(on_top | on_side, 1, 2).astype(np.int32)
    assert on_side.sum() > 0.25 * on_top.sum()  # a good part of the box's picture is its side
    fit = seal_fit(_points((depth_mm / 1000.0).astype(np.float32), camera_mm), labels, 1, SuctionParams())
    assert fit is not None and on_top[round(fit.v), round(fit.u)]


def test_the_published_pixel_has_measured_depth():
    """A dropout in the middle of a face: the cup may still seal across it (its plane is fitted
    through the measured rest), but the published pixel, whose line of sight the robot follows,
    is a measured one, not an inpainted guess."""
    depth, labels = _scene(400.0, 40.0, (40.0, 30.0))
    holed = depth.copy()
    middle = (slice(SIZE // 2 - 6, SIZE // 2 + 6), slice(SIZE // 2 - 6, SIZE // 2 + 6))
    holed[middle] = np.nan
    fit = seal_fit(_points(holed, 400.0), labels, 1, SuctionParams())
    assert fit is not None and np.isfinite(holed[round(fit.v), round(fit.u)])
    assert abs(fit.u - K[0, 2]) < 12 and abs(fit.v - K[1, 2]) < 12  # still the face's middle


def test_without_clearance_the_cup_still_goes_only_where_it_seals():
    """min_clearance_mm = 0 (allowed): the cell nearest the middle must still be a sealable one,
    here beside a bump in the face's middle."""
    depth, labels = _scene(400.0, 40.0, (40.0, 30.0))
    bumped = depth.copy()
    v, u = np.mgrid[0:SIZE, 0:SIZE]
    bump = (labels == 1) & ((u - K[0, 2]) ** 2 + (v - K[1, 2]) ** 2 < 12**2)
    cone = np.clip(1.0 - np.hypot(u - K[0, 2], v - K[1, 2]) / 12.0, 0.0, None)
    bumped[bump] -= 0.008 * cone[bump]  # a cone 8 mm proud of the face
    fit = seal_fit(_points(bumped, 400.0), labels, 1, SuctionParams(min_clearance_mm=0.0))
    assert fit is not None and fit.residual_mm <= 1.0 and fit.tilt_deg <= 30.0


def test_a_map_resized_by_different_factors_across_and_down_still_seals():
    depth, labels = _scene(400.0, 40.0, (40.0, 30.0))
    squashed = labels[::4, :]  # a fixed-size model's map: a quarter of the rows, all the columns
    fit = seal_fit(
        SurfacePoints(depth, K, None, FLOOR_NORMAL, 400.0, squashed.shape), squashed, 1, SuctionParams()
    )
    assert fit is not None and squashed[round(fit.v), round(fit.u)] == 1 and fit.tilt_deg < 2.0


def _tall_box_with_its_side(camera_mm=300.0, top_mm=100.0, x0=25.0, x1=50.0, half_y=20.0):
    """A tall box off the camera's axis (label 1: top and side face) on the floor (label 2)."""
    rx, ry = _rays()
    z_top = camera_mm - top_mm
    on_top = (rx * z_top >= x0) & (rx * z_top <= x1) & (np.abs(ry * z_top) <= half_y)
    with np.errstate(divide="ignore", invalid="ignore"):
        z_side = x0 / rx
    side_height = camera_mm - z_side
    on_side = (
        ~on_top & (rx > 0) & (side_height >= 0) & (side_height <= top_mm) & (np.abs(ry * z_side) <= half_y)
    )
    depth_mm = np.where(on_top, z_top, np.where(on_side, z_side, camera_mm))
    labels = np.where(on_top | on_side, 1, 2).astype(np.int32)
    return (depth_mm / 1000.0).astype(np.float32), labels, on_top, on_side


def test_a_point_on_a_side_face_is_refused_whatever_else_keeps_it():
    """The ranking's own point of a candidate the seal check found no place on may lie on a
    box's side face; the cup would come down beside the box (the simulated cell's floor picks).
    `off_side_faces` refuses such a point, keeps the top face and the floor, and still applies
    the caller's own rule; the scale takes camera pixels to map pixels."""
    depth, labels, on_top, on_side = _tall_box_with_its_side()
    placer = SuctionPlacer(lambda: _points(depth, 300.0), labels, SuctionParams())
    vs, us = np.nonzero(on_side & (np.abs(np.arange(SIZE)[:, None] - SIZE / 2) < 10))
    side = (float(us.mean()), float(vs.mean()))
    vt, ut = np.nonzero(on_top)
    top = (float(ut.mean()), float(vt.mean()))
    assert placer.surface_tilt_deg(*side) > 80.0 and placer.surface_tilt_deg(*top) < 5.0
    keep = placer.off_side_faces(None, (1.0, 1.0))
    assert not keep(*side, 1) and keep(*top, 1) and keep(20.0, 20.0, 2)
    assert not placer.off_side_faces(lambda u, v, label: False, (1.0, 1.0))(*top, 1)
    doubled = placer.off_side_faces(None, (2.0, 2.0))  # camera pixels at twice the map's
    assert not doubled(side[0] * 2, side[1] * 2, 1) and doubled(top[0] * 2, top[1] * 2, 1)


def test_plan_grasp_never_publishes_a_side_face_point_with_the_seal_check():
    """A candidate that is only a side face (its top out of the picture) and has no sealable
    place: without the seal check the plan takes its own point; with it, the plan refuses it and
    takes the next candidate, a level product."""
    pytest.importorskip("edge._hotpath")
    from edge.ranking import RankingParams, plan_grasp, rank

    depth, _, on_top, on_side = _tall_box_with_its_side()
    flat = np.zeros((SIZE, SIZE), bool)
    flat[20:35, 20:35] = True  # a small level product 20 mm high, smaller than the side's picture
    depth = np.where(flat, 0.280, depth).astype(np.float32)
    y = np.ones((SIZE, SIZE), np.float32)  # the network's boundary map: two regions
    y[on_side & (np.abs(np.arange(SIZE)[:, None] - SIZE / 2) < 30)] = 0.0
    y[flat] = 0.0
    z = np.zeros_like(y)
    params = RankingParams(min_area=50, max_area=np.inf, margin=3.0, score="thesis")
    ranking = rank(y, z, params, return_labels=True)
    assert len(ranking.candidates) == 2
    side_label = int(ranking.labels[on_side & (ranking.labels > 0)][0])
    plain = plan_grasp(ranking, y, z, params)
    assert ranking.candidates[plain.candidate_index].label == side_label  # the side wins the ranking

    placer = SuctionPlacer(lambda: _points(depth, 300.0), ranking.labels, SuctionParams(cup_radius_mm=30.0))
    assert placer.fit(side_label) is None  # no sealable place on a side face
    chosen = plan_grasp(ranking, y, z, params, place=placer)
    assert chosen is not None and ranking.candidates[chosen.candidate_index].label != side_label


def test_a_thin_raised_product_is_no_side_face_and_off_the_map_is_unknown():
    """A strip 3 px wide and 8 mm high (a pen, a cable): its 5x5 patch holds the floor beside
    it, which would read as a steep face; only the candidate's own pixels are fitted, so its
    level top is kept. A point off the map has no surface (None), never an error."""
    camera_mm = 300.0
    depth = np.full((SIZE, SIZE), camera_mm, np.float32)
    depth[:, 126:129] = camera_mm - 8.0
    labels = np.full((SIZE, SIZE), 2, np.int32)
    labels[:, 126:129] = 1
    placer = SuctionPlacer(lambda: _points(depth / 1000.0, camera_mm), labels, SuctionParams())
    assert placer.surface_tilt_deg(127.0, 100.0) > 60.0  # the patch alone mixes in the floor
    assert placer.surface_tilt_deg(127.0, 100.0, 1) < 5.0
    assert placer.off_side_faces(None, (1.0, 1.0))(127.0, 100.0, 1)
    assert placer.surface_tilt_deg(-4.0, 64.0, 1) is None
    assert placer.surface_tilt_deg(64.0, SIZE + 3.0) is None
