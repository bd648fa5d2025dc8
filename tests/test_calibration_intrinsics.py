"""Intrinsics from synthetic board views rendered with known K, distortion and poses."""

import json

import cv2
import numpy as np
import pytest
from synthetic_board_views import TEST_CAMERA, calibration_poses, render_view

from edge.calibration_file import CalibrationError
from edge.wizard.boards import load_board
from edge.wizard.intrinsics import IntrinsicsError, calibrate_intrinsics, undistorted_preview
from edge.wizard.views import ViewCollector, edge_width_px

BOARDS = "calibration/boards"


def board(name):
    from pathlib import Path

    return load_board(Path(__file__).resolve().parents[1] / BOARDS / name)


def collect(b, camera, views, seed, allow_partial=False):
    collector = ViewCollector(b, camera.image_size)
    verdicts = []
    for i, pose in enumerate(calibration_poses(b, camera, views, seed=seed, allow_partial=allow_partial)):
        verdicts.append(
            collector.consider(f"v{i:02d}", render_view(b, camera, pose, 0.6, 2.0, seed * 100 + i))
        )
    return collector, verdicts


def assert_recovered(result, camera, rel=0.005):
    k, truth = result.camera_matrix, camera.camera_matrix
    for (i, j), name in {(0, 0): "fx", (1, 1): "fy", (0, 2): "cx", (1, 2): "cy"}.items():
        assert abs(k[i, j] / truth[i, j] - 1) < rel, f"{name}: {k[i, j]:.2f} vs {truth[i, j]:.2f}"


@pytest.fixture(scope="module")
def chessboard_views():
    return collect(board("chessboard-9x6-25mm.json"), TEST_CAMERA, 12, seed=3)


def test_chessboard_recovers_focal_and_off_centre_principal_point(chessboard_views):
    collector, verdicts = chessboard_views
    assert all(v.accepted for v in verdicts), [v.reason for v in verdicts if not v.accepted]
    result = calibrate_intrinsics(collector)
    assert result.passed and result.rms_px < 0.2
    assert_recovered(result, TEST_CAMERA)
    assert set(result.report()) >= {"rms_px", "per_view_px", "threshold_px", "passed", "coverage"}


def test_charuco_with_partial_views_and_far_off_centre_principal_point():
    from edge.geometry import CameraModel

    k = np.array([[700.0, 0.0, 250.0], [0.0, 698.0, 290.0], [0.0, 0.0, 1.0]])  # 90 px left of centre
    camera = CameraModel(k, np.array([-0.1, 0.03, 0.0, 0.0, 0.0]), (640, 480))
    b = board("charuco-12x9-30mm.json")
    collector, verdicts = collect(b, camera, 12, seed=5, allow_partial=True)
    partial = [v for v in verdicts if v.accepted and v.detection.fraction < 1.0]
    assert partial, "the scene must include boards that do not fit the frame"
    result = calibrate_intrinsics(collector)
    assert result.passed
    assert_recovered(result, camera)


def test_legacy_charuco_needs_the_legacy_flag_from_the_board_file(tmp_path):
    legacy = board("charuco-legacy-11x8-20mm.json")
    pose = calibration_poses(legacy, TEST_CAMERA, 1, seed=11)[0]
    image = render_view(legacy, TEST_CAMERA, pose, 0.5, 1.0)
    found = legacy.detect(image)
    assert found is not None and found.count >= 0.8 * found.total
    wrong = dict(legacy.source, legacy_pattern=False)
    path = tmp_path / "wrong.json"
    path.write_text(json.dumps(wrong))
    miss = load_board(path).detect(image)
    assert miss is None or miss.count < 0.2 * miss.total  # markers found, corners not


def test_views_are_refused_with_a_reason():
    b = board("chessboard-9x6-25mm.json")
    poses = calibration_poses(b, TEST_CAMERA, 2, seed=4)
    collector = ViewCollector(b, TEST_CAMERA.image_size)
    assert collector.consider("a", render_view(b, TEST_CAMERA, poses[0], 0.6, 2.0)).accepted
    blurry = collector.consider("blurry", render_view(b, TEST_CAMERA, poses[1], 3.0, 2.0))
    assert not blurry.accepted and blurry.reason.startswith("blurry") and "still" in blurry.advice
    again = collector.consider("again", render_view(b, TEST_CAMERA, poses[0], 0.6, 2.0, seed=9))
    assert not again.accepted and again.reason.startswith("duplicate of a")
    empty = collector.consider("empty", np.full((480, 640), 120, np.uint8))
    assert not empty.accepted and empty.reason == "no board found"
    small = collector.consider("small", np.zeros((240, 320), np.uint8))
    assert not small.accepted and "320x240" in small.reason
    assert len(collector.accepted) == 1
    assert "#" in collector.coverage_text() and "." in collector.coverage_text()
    assert collector.coverage_image().shape == (480, 640, 3)


@pytest.mark.parametrize(("hidden", "accepted"), [(0.60, True), (0.65, False)])
def test_charuco_partial_view_below_the_corner_count_is_refused(hidden, accepted):
    """The same view cut further and further: still found by the detector, it is accepted while
    at least `min_corners` (12) corners show and refused as a partial board below that."""
    b = board("charuco-12x9-30mm.json")
    pose = calibration_poses(b, TEST_CAMERA, 1, seed=8)[0]
    image = render_view(b, TEST_CAMERA, pose, 0.6, 2.0)
    image[:, : int(hidden * 640)] = 120  # the left part of the frame hidden
    det = b.detect(image)
    assert det is not None and (det.count >= 12) == accepted  # 17 and 9 of 88 corners
    verdict = ViewCollector(b, TEST_CAMERA.image_size).consider("cut", image)
    assert verdict.accepted == accepted
    if not accepted:
        assert verdict.reason == f"partial board: {det.count} of 88 corners (< 12)"


def test_edge_width_grows_with_blur_and_ignores_contrast():
    img = np.zeros((64, 64), np.float32)
    img[:, 32:] = 1.0
    pts = np.array([[32.0, 20.0], [32.0, 40.0]])
    widths = {}
    for sigma in (1.0, 2.0):
        for contrast in (60, 200):
            blurred = cv2.GaussianBlur(20 + img * contrast, (0, 0), sigma).astype(np.uint8)
            widths[sigma, contrast] = edge_width_px(blurred, pts)
    assert widths[1.0, 60] == pytest.approx(widths[1.0, 200], rel=0.1)
    assert widths[2.0, 60] == pytest.approx(widths[2.0, 200], rel=0.1)
    assert widths[2.0, 200] > 1.5 * widths[1.0, 200]
    assert widths[2.0, 200] == pytest.approx(2.0 * np.sqrt(2 * np.pi), rel=0.15)


def test_too_few_views_is_an_error_with_advice():
    b = board("chessboard-9x6-25mm.json")
    collector, _ = collect(b, TEST_CAMERA, 3, seed=6)
    with pytest.raises(IntrinsicsError, match="at least 6"):
        calibrate_intrinsics(collector)


def test_failing_threshold_gives_advice(chessboard_views):
    full, _ = chessboard_views
    collector = ViewCollector(full.board, full.image_size, accepted=full.accepted[:8])
    result = calibrate_intrinsics(collector, threshold_px=0.01)
    assert not result.passed
    assert any("flat" in line for line in result.advice)
    assert any("12 or more" in line for line in result.advice)


def test_undistorted_preview_straightens_lines():
    from edge.geometry import CameraModel

    camera = CameraModel(TEST_CAMERA.camera_matrix, np.array([-0.2, 0.0, 0, 0, 0]), (640, 480))
    image = np.zeros((480, 640, 3), np.uint8)  # black like undistort's border, the line is white
    line = np.column_stack([np.linspace(-300, 300, 60), np.full(60, -150.0), np.full(60, 600.0)])
    for u, v in camera.project(line):
        cv2.circle(image, (int(round(u)), int(round(v))), 2, (255, 255, 255), -1)

    def bend_px(img):
        ys, xs = np.nonzero(img[:, :, 0] > 128)
        return np.abs(ys - np.polyval(np.polyfit(xs, ys, 1), xs)).max()

    assert bend_px(image) > 5.0
    assert bend_px(undistorted_preview(image, camera.camera_matrix, camera.dist_coeffs)) < 3.5  # dot radius 2


@pytest.mark.parametrize(
    "change,field",
    [
        ({"type": "circles"}, "type"),
        ({"square_mm": 0}, "square_mm"),
        ({"inner_corners": [2, 6]}, "inner_corners"),
        ({"touch_points": {"A": [0, 0], "B": [99, 0], "C": [1, 1]}}, "touch_points.B"),
    ],
)
def test_bad_board_files_name_the_field(tmp_path, change, field):
    data = dict(board("chessboard-9x6-25mm.json").source, **change)
    path = tmp_path / "board.json"
    path.write_text(json.dumps(data))
    with pytest.raises(CalibrationError) as err:
        load_board(path)
    assert err.value.field == field and str(path) in str(err.value)


def test_charuco_board_file_checks(tmp_path):
    data = dict(board("charuco-12x9-30mm.json").source)
    for change, field in [
        ({"legacy_pattern": "yes"}, "legacy_pattern"),
        ({"marker_mm": 40.0}, "marker_mm"),
        ({"dictionary": "DICT_4X4_50"}, "dictionary"),  # 54 markers needed
        ({"dictionary": "DICT_NOPE"}, "dictionary"),
    ]:
        path = tmp_path / "b.json"
        path.write_text(json.dumps(dict(data, **change)))
        with pytest.raises(CalibrationError) as err:
            load_board(path)
        assert err.value.field == field


def test_chessboard_corner_ids_follow_the_board_not_the_image():
    """Turning the camera by 180 degrees must not swap corner A and corner C."""
    b = board("chessboard-9x6-25mm.json")
    pose = calibration_poses(b, TEST_CAMERA, 1, seed=12)[0]
    from edge.geometry import CameraModel

    straight = CameraModel(TEST_CAMERA.camera_matrix, np.zeros(5), (640, 480))
    image = render_view(b, straight, pose, 0.6, 1.0)
    truth = straight.project(pose.apply(b.corner_object_points().astype(float)))
    det = b.detect(image)
    np.testing.assert_allclose(det.image_points, truth, atol=0.3)
    flipped = b.detect(np.ascontiguousarray(image[::-1, ::-1]))
    np.testing.assert_allclose(flipped.image_points, [639, 479] - truth, atol=0.3)
