"""Camera to robot: board pose, rigid fit, plane and validation on synthetic cells (hand-eye: own file)."""

from pathlib import Path

import numpy as np
import pytest
from synthetic_board_views import (
    FLOOR_Z_MM,
    TEST_CAMERA,
    render_view,
    robot_from_board_truth,
    robot_from_camera_truth,
)

from edge.geometry import PixelToRobot, Plane, RigidTransform
from edge.wizard.boards import load_board
from edge.wizard.robot import (
    StepError,
    board_plane_in_robot,
    fit_camera_to_robot,
    locate_board,
    touch_points_camera,
    validation_record,
)

BOARDS = Path(__file__).resolve().parents[1] / "calibration" / "boards"


def floor_scene(board_file):
    board = load_board(BOARDS / board_file)
    robot_from_camera = robot_from_camera_truth()
    robot_from_board = robot_from_board_truth(board)
    camera_from_board = robot_from_camera.inverse().compose(robot_from_board)
    image = render_view(board, TEST_CAMERA, camera_from_board, 0.6, 2.0, 5)
    corners = board.corner_object_points().astype(np.float64)
    robot_points = {k: robot_from_board.apply(corners[c]) for k, c in board.touch_points.items()}
    return board, image, robot_from_camera, robot_points


def transform_error_mm(estimate: RigidTransform, truth: RigidTransform, extent_mm: float = 300.0) -> float:
    """Largest displacement of points within `extent_mm` of the bin floor centre under the two maps."""
    grid = np.array([[x, y, z] for x in (-1, 0, 1) for y in (-1, 0, 1) for z in (-1, 1)], float) * extent_mm
    local = truth.inverse().apply(grid + [510.0, -150.0, FLOOR_Z_MM])
    return float(np.linalg.norm(estimate.apply(local) - truth.apply(local), axis=1).max())


@pytest.mark.parametrize("board_file", ["chessboard-9x6-25mm.json", "charuco-12x9-30mm.json"])
def test_camera_to_robot_within_one_millimetre(board_file):
    board, image, truth, robot_points = floor_scene(board_file)
    pose = locate_board(board, image, TEST_CAMERA)
    assert pose.reprojection_rms_px < 0.2
    rng = np.random.default_rng(1)
    typed = {k: v + rng.normal(0, 0.1, 3) for k, v in robot_points.items()}  # jogging/typing noise
    fit = fit_camera_to_robot(touch_points_camera(board, pose), typed)
    assert fit.passed and fit.rms_mm < 0.5
    assert transform_error_mm(fit.robot_from_camera, truth, extent_mm=150.0) < 1.0
    np.testing.assert_allclose(fit.robot_from_camera.translation, truth.translation, atol=1.0)
    plane = board_plane_in_robot(pose, fit.robot_from_camera)
    assert abs(plane.normal[2]) > 0.9999 and plane.offset == pytest.approx(FLOOR_Z_MM, abs=1.0)
    # end to end: floor pixels map to the right robot points
    mapping = PixelToRobot(TEST_CAMERA, fit.robot_from_camera, plane)
    exact = PixelToRobot(TEST_CAMERA, truth, Plane([0, 0, 1], FLOOR_Z_MM))
    uv = np.array([[u, v] for u in (120, 320, 520) for v in (100, 240, 380)], float)
    assert np.linalg.norm(mapping.pixels_to_robot(uv) - exact.pixels_to_robot(uv), axis=1).max() < 1.0
    record = validation_record(mapping, (320.0, 240.0), exact.pixel_to_robot(320.0, 240.0))
    assert record["error_mm"] < 1.0 and set(record) == {"pixel", "predicted_mm", "touched_mm", "error_mm"}


def test_a_mistyped_point_fails_with_advice_naming_it():
    board, image, _, robot_points = floor_scene("chessboard-9x6-25mm.json")
    pose = locate_board(board, image, TEST_CAMERA)
    typed = dict(robot_points)
    typed["C"] = typed["C"] + [8.0, 0.0, 0.0]
    fit = fit_camera_to_robot(touch_points_camera(board, pose), typed)
    assert not fit.passed and fit.rms_mm > 2.0
    assert any("point C" in a for a in fit.advice)
    three = {k: robot_points[k] for k in "ABC"}
    assert any(
        "only 3 points" in a for a in fit_camera_to_robot(touch_points_camera(board, pose), three).advice
    )
    scaled = {k: v * 1.02 for k, v in robot_points.items()}
    assert any("square_mm" in a for a in fit_camera_to_robot(touch_points_camera(board, pose), scaled).advice)
    with pytest.raises(StepError, match="at least 3"):
        fit_camera_to_robot(touch_points_camera(board, pose), {k: robot_points[k] for k in "AB"})
    with pytest.raises(StepError, match="unknown board point"):
        fit_camera_to_robot(touch_points_camera(board, pose), {"Z": robot_points["A"], **three})


def test_board_not_found_is_a_step_error():
    board = load_board(BOARDS / "chessboard-9x6-25mm.json")
    with pytest.raises(StepError, match="not found"):
        locate_board(board, np.full((480, 640), 90, np.uint8), TEST_CAMERA)


def test_robot_position_read_from_modbus_registers():
    from robot_position_server import RobotPositionServer

    from edge.wizard.robot_registers import RobotRegisters

    for order in ("big", "little"):
        with RobotPositionServer(address=100, word_order=order) as server:
            server.position = (412.5, -20.25, 35.125)
            regs = RobotRegisters.parse(f"127.0.0.1:{server.port}", address=100, word_order=order)
            np.testing.assert_allclose(regs.read_xyz(), server.position)
            wrong_address = RobotRegisters.parse(f"127.0.0.1:{server.port}", address=0)
            with pytest.raises(StepError, match="refused the read"):
                wrong_address.read_xyz()
    with pytest.raises(StepError, match="cannot connect"):
        RobotRegisters("127.0.0.1", server.port, timeout_s=0.5).read_xyz()  # server gone
    with pytest.raises(ValueError, match="HOST:PORT"):
        RobotRegisters.parse("robot-without-port")
