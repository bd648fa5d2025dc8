"""`binpick calibrate` end to end on a rendered cell: scripted, interactive (through a pty), failures."""

import json
import os
import pty
import select
import shlex
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
from synthetic_board_views import FLOOR_Z_MM, TEST_CAMERA, write_cell_images
from test_calibration_file import make_calibration

from edge.atomic_file import backup_paths
from edge.calibration_file import load_calibration, save_calibration
from edge.geometry import PixelToRobot, Plane
from edge.wizard.boards import load_board

ROOT = Path(__file__).resolve().parents[1]
BOARD = ROOT / "calibration" / "boards" / "chessboard-9x6-25mm.json"


@pytest.fixture(scope="module")
def cell(tmp_path_factory):
    folder = tmp_path_factory.mktemp("cell")
    board = load_board(BOARD)
    truth = write_cell_images(board, folder, views=12, seed=3)
    rng = np.random.default_rng(4)
    truth["typed"] = {k: v + rng.normal(0, 0.1, 3) for k, v in truth["robot_points"].items()}
    centre_id = (board.rows // 2) * board.columns + board.columns // 2
    truth["V"] = truth["robot_from_board"].apply(board.corner_object_points()[centre_id].astype(float))
    return truth


def env():
    return dict(os.environ, PYTHONPATH=str(ROOT), PYTHONUNBUFFERED="1")


def xyz(v):
    return ",".join(f"{x:.2f}" for x in v)


def scripted_args(cell, out_dir, **overrides):
    args = {
        "--cell": "cell-a",
        "--out-dir": str(out_dir),
        "--board": str(BOARD),
        "--images": str(cell["views"]),
        "--floor-image": str(cell["floor"]),
        "--pick-offset-mm": "20",
        "--validate-touch": xyz(cell["V"] + [0.3, -0.2, 0.0]),
    }
    args.update(overrides)
    argv = [sys.executable, "-m", "edge", "calibrate", "--non-interactive"]
    for flag, value in args.items():
        if value is not None:
            argv += [flag, value]
    return argv


def run(argv, extra=()):
    return subprocess.run(
        argv + list(extra), capture_output=True, text=True, timeout=180, env=env(), cwd=ROOT
    )


def robot_point_flags(points):
    out = []
    for k, v in points.items():
        out += ["--robot-point", f"{k}={xyz(v)}"]
    return out


def assert_matches_truth(cal, cell, pick_offset):
    exact = PixelToRobot(TEST_CAMERA, cell["robot_from_camera"], Plane([0, 0, 1], FLOOR_Z_MM + pick_offset))
    uv = np.array([[u, v] for u in (60, 320, 580) for v in (60, 240, 420)], float)
    got = np.array([cal.pixel_to_robot(u, v) for u, v in uv])
    assert np.linalg.norm(got - exact.pixels_to_robot(uv), axis=1).max() < 1.0
    # (the camera centre itself is less certain, ~1 mm along the optical axis, traded against the
    # focal length: what must be right is where pixels land in the bin, checked above)
    k = cal.camera_matrix
    for i, j in [(0, 0), (1, 1), (0, 2), (1, 2)]:
        assert abs(k[i, j] / TEST_CAMERA.camera_matrix[i, j] - 1) < 0.005


def test_scripted_run_writes_a_validated_file_and_keeps_a_backup(cell, tmp_path):
    proc = run(scripted_args(cell, tmp_path), robot_point_flags(cell["typed"]))
    assert proc.returncode == 0, proc.stdout + proc.stderr
    for n in range(1, 6):
        assert f"=== Step {n}/5" in proc.stdout
    assert "view90_blurry.png: refused: blurry" in proc.stdout
    assert "view91_again.png: refused: duplicate" in proc.stdout
    cal = load_calibration(tmp_path / "cell-a.json")
    assert cal.passed and cal.pick_height_offset_mm == 20.0
    assert_matches_truth(cal, cell, 20.0)
    assert cal.validation[0]["error_mm"] < 1.0
    data = json.loads((tmp_path / "cell-a.json").read_text())
    assert data["board"]["name"] == "chessboard-9x6-25mm" and data["wizard_version"] and data["created"]
    assert len(data["camera_to_robot"]["points"]) == 4
    for image in ("coverage.png", "undistorted.png", "floor_points.png", "roi.png"):
        assert (tmp_path / "cell-a-report" / image).stat().st_size > 0
    # a second run (after a bump: intrinsics reused), the printed command followed from another
    # folder, writes the same file and keeps the first one as backup 1
    (hint,) = [line for line in proc.stdout.splitlines() if line.startswith("  binpick calibrate")]
    printed = shlex.split(hint.removesuffix(" ..."))
    assert printed[printed.index("--out-dir") + 1] == str(tmp_path)
    later = scripted_args(cell, tmp_path, **{"--cell": None, "--out-dir": None, "--images": None})
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    again = subprocess.run(
        later
        + printed[2:]
        + robot_point_flags(cell["typed"])
        + ["--pick-offset-mm", "35", "--roi", "10,10;630,10;630,470"],
        capture_output=True,
        text=True,
        timeout=180,
        env=env(),
        cwd=elsewhere,
    )
    assert again.returncode == 0, again.stdout + again.stderr
    assert "previous file kept as" in again.stdout
    (backup,) = backup_paths(tmp_path / "cell-a.json")
    assert load_calibration(backup).pick_height_offset_mm == 20.0
    second = load_calibration(tmp_path / "cell-a.json")
    assert second.pick_height_offset_mm == 35.0 and second.roi_polygon.shape == (3, 2)
    assert_matches_truth(second, cell, 35.0)


def test_roi_from_robot_corners_projects_into_the_image(cell, tmp_path):
    corners = [[420.0, -60.0, 30.0], [600.0, -60.0, 30.0], [600.0, -240.0, 30.0], [420.0, -240.0, 30.0]]
    roi = "robot:" + ";".join(xyz(c) for c in corners)
    proc = run(scripted_args(cell, tmp_path, **{"--roi": roi}), robot_point_flags(cell["typed"]))
    assert proc.returncode == 0, proc.stdout + proc.stderr
    cal = load_calibration(tmp_path / "cell-a.json")
    # every wall sampled every 10 mm from its corner (180 mm walls: 18 vertices each, the corner first)
    assert cal.roi_polygon.shape == (72, 2)
    on_floor = np.array([cal.pixel_to_robot(u, v, height_mm=-20.0) for u, v in cal.roi_polygon])
    np.testing.assert_allclose(on_floor[::18], corners, atol=1.0)
    for i, (a, b) in enumerate(zip(corners, corners[1:] + corners[:1], strict=True)):
        wall = on_floor[18 * i : 18 * (i + 1)]
        along = (wall - a) @ (np.subtract(b, a) / 180.0)
        np.testing.assert_allclose(along, np.arange(18) * 10.0, atol=1.0)  # on the wall, in order
    # corners out of order: the bow tie is refused, and the step asks again (non-interactive: stops)
    bow_tie = "robot:" + ";".join(xyz(c) for c in [corners[0], corners[2], corners[1], corners[3]])
    bad = run(scripted_args(cell, tmp_path, **{"--roi": bow_tie}), robot_point_flags(cell["typed"]))
    assert bad.returncode != 0 and "crosses itself" in bad.stdout + bad.stderr


def test_non_interactive_names_the_missing_flag(cell, tmp_path):
    proc = run(scripted_args(cell, tmp_path, **{"--images": None}), robot_point_flags(cell["typed"]))
    assert proc.returncode == 2
    assert "--images is required with --non-interactive" in proc.stderr
    assert "Traceback" not in proc.stderr
    bad = run(scripted_args(cell, tmp_path), ["--robot-point", "A=1,2"])
    assert bad.returncode == 2 and "--robot-point 'A=1,2'" in bad.stderr and "3 numbers" in bad.stderr
    # a number left out is refused, not skipped (it would shift the next one into its coordinate)
    gap = run(scripted_args(cell, tmp_path), ["--robot-point", "A=1,,2,3"])
    assert gap.returncode == 2 and "--robot-point 'A=1,,2,3'" in gap.stderr and "3 numbers" in gap.stderr


def test_failed_check_writes_nothing_unless_accepted(cell, tmp_path):
    typed = dict(cell["typed"])
    typed["C"] = typed["C"] + [9.0, 0.0, 0.0]
    proc = run(scripted_args(cell, tmp_path), robot_point_flags(typed))
    assert proc.returncode == 1, proc.stdout + proc.stderr
    assert "FAIL" in proc.stdout and "point C" in proc.stdout and "Nothing was written" in proc.stdout
    assert not (tmp_path / "cell-a.json").exists()
    forced = run(scripted_args(cell, tmp_path), robot_point_flags(typed) + ["--accept-failed"])
    assert forced.returncode == 1 and "WRITTEN WITH FAILED CHECKS" in forced.stdout
    assert not load_calibration(tmp_path / "cell-a.json").passed


def test_failed_touch_test_keeps_the_previous_file_unless_accepted(cell, tmp_path):
    """A touch 10 mm off (a typo) must not replace a good calibration: the appliance reloads it."""
    good = make_calibration()
    good.camera_matrix, good.dist_coeffs = TEST_CAMERA.camera_matrix, TEST_CAMERA.dist_coeffs
    save_calibration(good, tmp_path / "good.json")
    out = tmp_path / "out"
    out.mkdir()
    previous = (tmp_path / "good.json").read_bytes()
    (out / "cell-a.json").write_bytes(previous)
    reuse = {"--images": None, "--intrinsics-from": str(tmp_path / "good.json")}
    typo = {"--validate-touch": xyz(cell["V"] + [10.0, 0.0, 0.0])}
    proc = run(scripted_args(cell, out, **reuse, **typo), robot_point_flags(cell["typed"]))
    assert proc.returncode == 1, proc.stdout + proc.stderr
    assert "touch error" in proc.stdout and "exceeds 2 mm" in proc.stdout
    assert "Nothing was written" in proc.stdout and "WRITTEN" not in proc.stdout
    assert (out / "cell-a.json").read_bytes() == previous and not backup_paths(out / "cell-a.json")
    forced = run(
        scripted_args(cell, out, **reuse, **typo), robot_point_flags(cell["typed"]) + ["--accept-failed"]
    )
    assert forced.returncode == 1 and "WRITTEN WITH FAILED CHECKS" in forced.stdout, forced.stdout
    written = load_calibration(out / "cell-a.json")
    assert not written.passed and written.validation[0]["error_mm"] > 9.0
    (backup,) = backup_paths(out / "cell-a.json")
    assert backup.read_bytes() == previous


class Terminal:
    """The wizard on a pseudo-terminal: wait for a prompt, type an answer (bounded waits)."""

    def __init__(self, argv, cwd):
        self.pid, self.fd = pty.fork()
        if self.pid == 0:  # child
            # A program started at a terminal gets Ctrl-C's default action. A test run launched as a
            # background job (`pytest &` from a script) has SIGINT ignored, which exec keeps and
            # which stops Python from ever raising KeyboardInterrupt: give the wizard a terminal's.
            signal.signal(signal.SIGINT, signal.SIG_DFL)
            signal.pthread_sigmask(signal.SIG_SETMASK, set())
            os.chdir(cwd)
            os.execve(argv[0], argv, env())
        self.transcript = ""
        self.done = ""

    def expect(self, text, timeout=60.0):
        deadline = time.monotonic() + timeout
        while text not in self.transcript:
            left = deadline - time.monotonic()
            if left <= 0:
                raise AssertionError(f"timed out waiting for {text!r}; got:\n{self.transcript[-2000:]}")
            ready, _, _ = select.select([self.fd], [], [], min(left, 1.0))
            if ready:
                try:
                    chunk = os.read(self.fd, 4096)
                except OSError:  # the child closed the terminal
                    chunk = b""
                if not chunk:
                    raise AssertionError(f"wizard ended before {text!r}; got:\n{self.transcript[-2000:]}")
                self.transcript += chunk.decode(errors="replace").replace("\r\n", "\n")
        # consume what was matched so the next expect looks further on
        index = self.transcript.index(text) + len(text)
        self.done, self.transcript = self.transcript[:index], self.transcript[index:]
        return self.done

    def send(self, line):
        os.write(self.fd, line.encode() + b"\n")

    def wait(self, timeout=60.0):
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            pid, status = os.waitpid(self.pid, os.WNOHANG)
            if pid:
                return os.waitstatus_to_exitcode(status)
            try:
                if select.select([self.fd], [], [], 0.2)[0]:
                    self.transcript += os.read(self.fd, 4096).decode(errors="replace").replace("\r\n", "\n")
            except OSError:
                time.sleep(0.05)
        os.kill(self.pid, 9)
        raise AssertionError(f"wizard did not exit; got:\n{(self.done + self.transcript)[-2000:]}")


def test_interactive_wizard_through_a_pseudo_terminal(cell, tmp_path):
    from robot_position_server import RobotPositionServer

    out = tmp_path / "out"
    robot = RobotPositionServer(address=100).__enter__()
    robot.position = tuple(cell["typed"]["A"])  # the robot stands on point A when asked to 'read'
    argv = [sys.executable, "-m", "edge", "calibrate", "--out-dir", str(out)]
    term = Terminal(argv + ["--robot-modbus", f"127.0.0.1:{robot.port}", "--robot-register", "100"], ROOT)
    log = []

    def answer(prompt, text):
        log.append(term.expect(prompt))
        term.send(text)

    try:
        answer("Cell name [cell]: ", "pty-cell")
        answer("Board definition file: ", str(BOARD))
        answer("Folder of board images: ", str(tmp_path / "nowhere"))
        log.append(term.expect("does not exist; expected a folder; try again"))
        answer("Folder of board images: ", str(cell["views"]))
        answer("Image of the board on the bin floor: ", str(cell["floor"]))
        answer("Robot coordinates of A [skip]: ", "1,2")
        log.append(term.expect("expected 3 numbers"))
        answer("Robot coordinates of A [skip]: ", "read")
        log.append(term.expect("read from the robot: x"))
        for label in "BCD":
            answer(f"Robot coordinates of {label} [skip]: ", xyz(cell["typed"][label]))
        answer("[board]: ", "")
        answer("Pick height above the floor (mm) [0]: ", "15")
        answer("[image]: ", "40,40;600,40;600,440;40,440")
        answer("Image point to check ('V' = board point V, or u,v) [V]: ", "")
        answer("(x,y,z or 'skip') [skip]: ", xyz(cell["V"]))
        log.append(term.expect("Wrote "))
        code = term.wait()
    finally:
        robot.__exit__(None, None, None)
        log.append(term.transcript)
        (tmp_path / "transcript.txt").write_text("".join(log))
    assert code == 0, "".join(log)
    assert robot.reads == 1
    text = "".join(log)
    assert "RMS reprojection error" in text and "PASS" in text and "Coverage of the image" in text
    cal = load_calibration(out / "pty-cell.json")
    assert cal.passed and cal.roi_polygon.shape == (4, 2)
    assert_matches_truth(cal, cell, 15.0)


def test_end_of_input_is_a_clear_error(cell, tmp_path):
    proc = subprocess.run(
        [sys.executable, "-m", "edge", "calibrate", "--out-dir", str(tmp_path)],
        input="cell-b\n",
        capture_output=True,
        text=True,
        timeout=60,
        env=env(),
        cwd=ROOT,
    )
    assert proc.returncode == 2 and "input ended before the wizard finished" in proc.stderr


def render_board(path):
    return run(
        [sys.executable, "-m", "edge", "calibrate", "--board", str(BOARD), "--render-board", str(path)]
    )


def test_render_board_writes_a_printable_image(tmp_path):
    png = tmp_path / "board.png"
    proc = render_board(png)
    assert proc.returncode == 0, proc.stderr
    import cv2

    for bad, needle in [
        (tmp_path / "board", "expected a .png file"),
        (tmp_path / "board.jpg", "expected a .png file"),
        (tmp_path, "is a folder"),
    ]:
        refused = render_board(bad)
        assert refused.returncode == 2 and "Traceback" not in refused.stderr, refused.stderr
        assert f"--render-board {bad}: " in refused.stderr and needle in refused.stderr, refused.stderr
    image = cv2.imread(str(png), cv2.IMREAD_GRAYSCALE)
    assert image.shape == (10 * (7 * 25 + 20), 10 * (10 * 25 + 20))
    assert load_board(BOARD).detect(image) is not None


def _rpy(roll, pitch, yaw):
    import cv2

    r = np.radians([roll, pitch, yaw])
    rz = cv2.Rodrigues(np.array([0.0, 0.0, r[2]]))[0]
    ry = cv2.Rodrigues(np.array([0.0, r[1], 0.0]))[0]
    rx = cv2.Rodrigues(np.array([r[0], 0.0, 0.0]))[0]
    return rz @ ry @ rx


def test_hand_eye_from_a_poses_file(cell, tmp_path):
    """Board held by the gripper under the fixed camera; no typed points: hand-eye gives the transform."""
    import cv2
    from scipy.spatial.transform import Rotation
    from synthetic_board_views import corners_in_view, render_view

    from edge.geometry import RigidTransform

    board = load_board(BOARD)
    base_from_camera = cell["robot_from_camera"]
    gripper_from_board = RigidTransform(
        cv2.Rodrigues(np.array([0.02, -0.03, 0.2]))[0], [-5.0 * 25, -3.5 * 25, 40.0]
    )
    rng = np.random.default_rng(11)
    poses, images = [], tmp_path / "hand_eye"
    images.mkdir()
    while len(poses) < 8:
        rpy = [180.0 + rng.uniform(-25, 25), rng.uniform(-25, 25), rng.uniform(-40, 40)]
        xyz_mm = [500.0 + rng.uniform(-60, 60), -150.0 + rng.uniform(-60, 60), 250.0 + rng.uniform(-50, 50)]
        gripper = RigidTransform(_rpy(*rpy), xyz_mm)
        camera_from_board = base_from_camera.inverse().compose(gripper).compose(gripper_from_board)
        if corners_in_view(board, TEST_CAMERA, camera_from_board) < 1.0:
            continue
        name = f"pose{len(poses):02d}.png"
        cv2.imwrite(
            str(images / name), render_view(board, TEST_CAMERA, camera_from_board, 0.6, 2.0, len(poses))
        )
        if len(poses) % 3 == 1:
            poses.append({"image": name, "xyz_mm": xyz_mm, "rpy_deg": rpy})
        elif len(poses) % 3 == 2:  # as ROS tf and MoveIt export it: metres and a quaternion x, y, z, w
            quat = Rotation.from_matrix(gripper.rotation).as_quat()
            poses.append({"image": name, "xyz_m": [x / 1000.0 for x in xyz_mm], "quat_xyzw": quat.tolist()})
        else:
            poses.append({"image": name, "matrix": gripper.matrix().tolist()})
    (tmp_path / "poses.json").write_text(json.dumps({"poses": poses}))
    argv = scripted_args(cell, tmp_path, **{"--cell": "he"})
    extra = ["--hand-eye-poses", str(tmp_path / "poses.json"), "--hand-eye-images", str(images)]
    proc = run(argv, extra + ["--hand-eye-method", "TSAI"])
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "hand-eye (TSAI, 8 poses, eye-to-hand)" in proc.stdout
    assert "predicted error on the bin floor" in proc.stdout and "PASS" in proc.stdout
    cal = load_calibration(tmp_path / "he.json")
    assert cal.extrinsics_report["method"] == "hand-eye:TSAI" and cal.hand_eye["method"] == "TSAI"
    # the refinement's uncertainty and the pick-plane prediction are in the file
    assert cal.extrinsics_report["passed"] and cal.extrinsics_report["predicted_error_mm"] < 1.0
    assert cal.extrinsics_report["bound_3sigma_mm"] < 1.0
    assert len(cal.hand_eye["camera_position_sigma_mm"]) == 3 and len(cal.hand_eye["check_points"]) == 5
    assert np.linalg.norm(np.array(cal.hand_eye["matrix"])[:3, 3] - base_from_camera.translation) < 1.0
    exact = PixelToRobot(TEST_CAMERA, base_from_camera, Plane([0, 0, 1], FLOOR_Z_MM + 20.0))
    uv = np.array([[u, v] for u in (100, 320, 540) for v in (80, 240, 400)], float)
    got = np.array([cal.pixel_to_robot(u, v) for u, v in uv])
    assert np.linalg.norm(got - exact.pixels_to_robot(uv), axis=1).max() < 1.0
    # with typed points as well, hand-eye is kept as a cross-check
    both = run(argv, extra + robot_point_flags(cell["typed"]))
    assert both.returncode == 0 and "hand-eye and board points differ by" in both.stdout
    assert load_calibration(tmp_path / "he.json").extrinsics_report["method"] == "board-points"
    # the robot's pose errors estimated: rendered exact poses, so a spread near nothing
    estimated = run(argv, extra + ["--hand-eye-pose-errors", "estimate"])
    assert estimated.returncode == 0, estimated.stdout + estimated.stderr
    assert "robot pose errors estimated from the photos" in estimated.stdout
    found = load_calibration(tmp_path / "he.json").hand_eye
    assert found["pose_errors"] == "estimate"
    assert found["robot_pose_errors"]["robot_translation_sigma_mm"] < 0.2
    assert np.linalg.norm(np.array(found["matrix"])[:3, 3] - base_from_camera.translation) < 1.0


def test_eye_in_hand_from_a_poses_file_with_the_capture_pose(cell, tmp_path):
    """Camera on the gripper, board fixed on the bin floor; the floor image is taken from "capture"."""
    import cv2
    from synthetic_board_views import corners_in_view, render_view

    from edge.geometry import RigidTransform

    board = load_board(BOARD)
    gripper_from_camera = RigidTransform(cv2.Rodrigues(np.array([0.02, -0.03, 1.5]))[0], [30.0, -20.0, 80.0])
    # from the capture pose the camera sees exactly the cell's floor image
    capture = cell["robot_from_camera"].compose(gripper_from_camera.inverse())
    base_from_board = cell["robot_from_board"]
    rng = np.random.default_rng(12)
    poses, images = [], tmp_path / "eye_in_hand"
    images.mkdir()
    while len(poses) < 8:
        wiggle = RigidTransform(
            cv2.Rodrigues(np.radians(rng.uniform(-20, 20, 3)))[0], rng.uniform(-60, 60, 3)
        )
        gripper = capture.compose(wiggle)
        camera_from_board = gripper.compose(gripper_from_camera).inverse().compose(base_from_board)
        if corners_in_view(board, TEST_CAMERA, camera_from_board) < 1.0:
            continue
        name = f"pose{len(poses):02d}.png"
        cv2.imwrite(
            str(images / name), render_view(board, TEST_CAMERA, camera_from_board, 0.6, 2.0, 40 + len(poses))
        )
        poses.append({"image": name, "matrix": gripper.matrix().tolist()})
    argv = scripted_args(cell, tmp_path, **{"--cell": "eih"})
    extra = ["--hand-eye-images", str(images), "--hand-eye-setup", "eye-in-hand"]
    (tmp_path / "no_capture.json").write_text(json.dumps({"poses": poses}))
    proc = run(argv, extra + ["--hand-eye-poses", str(tmp_path / "no_capture.json")])
    assert proc.returncode == 2 and '"capture"' in proc.stderr and "Traceback" not in proc.stderr
    (tmp_path / "poses.json").write_text(
        json.dumps({"capture": {"matrix": capture.matrix().tolist()}, "poses": poses})
    )
    proc = run(argv, extra + ["--hand-eye-poses", str(tmp_path / "poses.json")])
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "eye-in-hand" in proc.stdout and "PASS" in proc.stdout
    cal = load_calibration(tmp_path / "eih.json")
    assert cal.hand_eye["setup"] == "eye-in-hand" and cal.extrinsics_report["passed"]
    np.testing.assert_allclose(
        np.array(cal.hand_eye["matrix"])[:3, 3], gripper_from_camera.translation, atol=1.0
    )
    exact = PixelToRobot(TEST_CAMERA, cell["robot_from_camera"], Plane([0, 0, 1], FLOOR_Z_MM + 20.0))
    uv = np.array([[u, v] for u in (100, 320, 540) for v in (80, 240, 400)], float)
    got = np.array([cal.pixel_to_robot(u, v) for u, v in uv])
    assert np.linalg.norm(got - exact.pixels_to_robot(uv), axis=1).max() < 1.0


def test_bad_inputs_are_one_line_errors(cell, tmp_path):
    bad_board = tmp_path / "board.json"
    bad_board.write_text(
        json.dumps({"name": "x", "type": "chessboard", "square_mm": 25, "inner_corners": [2, 6]})
    )
    proc = run(scripted_args(cell, tmp_path, **{"--board": str(bad_board)}))
    assert proc.returncode == 2 and "'inner_corners'" in proc.stderr and "Traceback" not in proc.stderr
    garbage = tmp_path / "floor.png"
    garbage.write_bytes(b"not a png")
    proc = run(
        scripted_args(cell, tmp_path, **{"--floor-image": str(garbage)}), robot_point_flags(cell["typed"])
    )
    assert (
        proc.returncode == 2
        and "cannot be read as an image" in proc.stderr
        and "Traceback" not in proc.stderr
    )
    views = tmp_path / "views"
    views.mkdir()
    (views / "broken.png").write_bytes(b"\x89PNG broken")
    proc = run(scripted_args(cell, tmp_path, **{"--images": str(views)}))
    assert proc.returncode == 2 and "none of the 1 image files can be read" in proc.stderr


def test_bad_flags_and_files_are_one_line_errors_naming_them(cell, tmp_path):
    def refused(proc, *needles):
        out = proc.stdout + proc.stderr
        assert proc.returncode == 2 and "Traceback" not in out, out
        assert all(n in proc.stderr for n in needles), proc.stderr
        assert not (tmp_path / "out" / "cell-a.json").exists()

    out = tmp_path / "out"
    points = robot_point_flags(cell["typed"])
    # thresholds are written into the file: inf is not JSON, nan or <= 0 would fail every fit
    for flag, value in [
        ("--rms-threshold-px", "inf"),
        ("--rms-threshold-px", "nan"),
        ("--residual-threshold-mm", "-1"),
        ("--hand-eye-tolerance-mm", "inf"),
    ]:
        refused(run(scripted_args(cell, out, **{flag: value}), points), f"{flag} {value}: expected a finite")
    (tmp_path / "a-file").write_text("")
    refused(
        run(scripted_args(cell, tmp_path / "a-file"), points),
        f"--out-dir {tmp_path / 'a-file'}: not a folder",
    )
    # the later steps, reusing the intrinsics of a file (no views to fit in step 1)
    good = make_calibration()
    good.camera_matrix, good.dist_coeffs = TEST_CAMERA.camera_matrix, TEST_CAMERA.dist_coeffs
    save_calibration(good, tmp_path / "good.json")
    absurd = json.loads((tmp_path / "good.json").read_text())
    absurd["intrinsics"]["camera_matrix"][0][0] = 1e308  # loaded, then crashed drawing the points
    (tmp_path / "absurd.json").write_text(json.dumps(absurd))
    refused(
        run(
            scripted_args(
                cell, out, **{"--images": None, "--intrinsics-from": str(tmp_path / "absurd.json")}
            ),
            points,
        ),
        "absurd.json: field 'intrinsics.camera_matrix'",
    )
    reuse = {"--images": None, "--intrinsics-from": str(tmp_path / "good.json")}
    refused(
        run(scripted_args(cell, out, **reuse), points + ["--robot-point", "A=1,2,3"]),
        "--robot-point 'A=1,2,3': point A is given twice",
    )
    refused(
        run(scripted_args(cell, out, **reuse, **{"--roi": "0,0;0,0;0,0"}), points), "--roi", "0 square pixels"
    )
    far = "robot:1e308,0,30;0,1e308,30;0,0,30"
    refused(run(scripted_args(cell, out, **reuse, **{"--roi": far}), points), "--roi", "wall from corner 1")
    refused(
        run(scripted_args(cell, out, **reuse, **{"--pick-offset-mm": "nan"}), points),
        "--pick-offset-mm",
        "finite",
    )
    refused(
        run(scripted_args(cell, out, **{"--images": str(tmp_path / "nowhere")}), points),
        "--images",
        "does not exist; expected a folder",
    )


def test_a_typo_in_the_poses_file_is_one_line_naming_the_value_before_step_1(cell, tmp_path):
    """A pose value that is not a number is refused by its place in the file, exit 2, before any fit."""
    images = tmp_path / "hand_eye"
    images.mkdir()
    for name in ("p0.png", "p1.png"):
        (images / name).write_bytes(b"")  # the poses file is checked before any image is read
    good = {"image": "p0.png", "xyz_mm": [500, -150, 250], "rpy_deg": [180, 0, 0]}
    matrix = np.eye(4).tolist()
    matrix[0][0] = "0,5"
    poses = tmp_path / "poses.json"
    for bad, needle in [
        ({"image": "p1.png", "matrix": matrix}, 'poses[1].matrix[0][0] = "0,5": expected a number'),
        ({"image": "p1.png", "matrix": [[1, 0, 0, 0]]}, "poses[1].matrix = [[1, 0, 0, 0]]: expected a 4x4"),
        (dict(good, image="p1.png", rpy_deg=[1, 2]), "poses[1].rpy_deg = [1, 2]: expected 3 numbers"),
        (dict(good, image="p1.png", rpy_deg=[1, True, 2]), "poses[1].rpy_deg[1] = true: expected a number"),
        (dict(good, image="p1.png", xyz_mm=None), "poses[1].xyz_mm = null: expected 3 numbers"),
        (dict(good, image=5), "poses[1].image = 5: expected an image file name"),
        (
            {"image": "p1.png", "xyz_m": [0.5, -0.15, 0.25], "quat_xyzw": [1, 0, 0, 0.1]},
            "poses[1].quat_xyzw = [1, 0, 0, 0.1]: its length is 1.0050, expected a unit quaternion",
        ),
        (
            {"image": "p1.png", "xyz_m": [500, -150, 250], "quat_xyzw": [1, 0, 0, 0]},
            "poses[1].xyz_m = [500, -150, 250]: over 20 m from the robot's base; millimetres go under",
        ),
        (
            dict(good, image="p1.png", quat_xyzw=[1, 0, 0, 0]),
            "poses[1]: give 'matrix' (4x4, mm), or one position",
        ),
        (
            {"image": "p1.png", "xyz_mm": [500, -150, 250], "quat_xyzw": [1, 0, 0]},
            "poses[1].quat_xyzw = [1, 0, 0]: expected 4",
        ),
        (dict(good, image="p9.png"), f'poses[1].image = "p9.png": {images / "p9.png"} does not exist'),
    ]:
        poses.write_text(json.dumps({"poses": [good, bad]}))
        argv = scripted_args(cell, tmp_path / "out")
        proc = run(argv, ["--hand-eye-poses", str(poses), "--hand-eye-images", str(images)])
        out = proc.stdout + proc.stderr
        assert proc.returncode == 2 and "Traceback" not in out, out
        assert f"{poses}: {needle}" in proc.stderr, proc.stderr
        assert len(proc.stderr.strip().splitlines()) == 1, proc.stderr
        assert "Step 1/5" not in proc.stdout  # read before step 1, not after minutes of fitting


def test_poses_in_metres_and_quaternions_are_the_same_poses(tmp_path):
    """ROS tf / MoveIt exports (metres, x-y-z-w quaternion) read as the same base <- gripper as a
    matrix in mm; a file using quaternions is flagged, so a bad fit warns about w-first order."""
    import argparse

    from scipy.spatial.transform import Rotation

    from binpick_core.errors import CommandError
    from edge.wizard.step_hand_eye import read_poses

    (tmp_path / "img").mkdir()
    for name in ("a.png", "b.png"):
        (tmp_path / "img" / name).write_bytes(b"")
    rotation = Rotation.from_euler("xyz", [170.0, -12.0, 35.0], degrees=True)
    matrix = np.eye(4)
    matrix[:3, :3], matrix[:3, 3] = rotation.as_matrix(), [512.5, -148.25, 260.0]
    entries = [
        {"image": "a.png", "matrix": matrix.tolist()},
        {"image": "b.png", "xyz_m": [0.5125, -0.14825, 0.26], "quat_xyzw": rotation.as_quat().tolist()},
    ]
    (tmp_path / "poses.json").write_text(json.dumps({"poses": entries}))
    args = argparse.Namespace(
        hand_eye_poses=str(tmp_path / "poses.json"),
        hand_eye_images=str(tmp_path / "img"),
        hand_eye_setup="eye-to-hand",
    )
    found = read_poses(args)
    (_, a), (_, b) = found.poses
    np.testing.assert_allclose(b.matrix(), a.matrix(), atol=1e-9)
    assert (
        found.quaternions and found.quaternion_order_suspect(8.0) and not found.quaternion_order_suspect(0.5)
    )
    (tmp_path / "poses.json").write_text(json.dumps({"poses": entries[:1]}))
    assert not read_poses(args).quaternions
    # an eye-to-hand file's capture entry is not used, so not judged: no traceback from it
    (tmp_path / "poses.json").write_text(json.dumps({"poses": entries, "capture": {"rpy_deg": None}}))
    assert read_poses(args).capture is None
    metres = [{"image": "b.png", "xyz_mm": [0.5125, -0.14825, 0.26], "quat_xyzw": entries[1]["quat_xyzw"]}]
    (tmp_path / "poses.json").write_text(json.dumps({"poses": metres}))
    with pytest.raises(CommandError, match="every xyz_mm value is under 5 .*: these look like metres"):
        read_poses(args)


def test_every_later_steps_flag_is_checked_before_step_1(cell, tmp_path):
    """A typo in a flag of steps 2-4 is refused at once, with its step's words, not after the fits."""
    points = robot_point_flags(cell["typed"])
    for flag, value, needle in [
        ("--pick-offset-mm", "2,5", "--pick-offset-mm '2,5': expected a number for the pick offset"),
        ("--plane", "0,0,1", "--plane '0,0,1': expected 4 numbers"),
        ("--validate-touch", "1,2", "--validate-touch '1,2': expected 3 numbers"),
        ("--validate-pixel", "3", "--validate-pixel '3': expected 2 numbers"),
        ("--roi", "1,2;3,4", "--roi '1,2;3,4': at least 3 vertices"),
        ("--roi", "robot:1,2;3,4,5;6,7,8", "--roi 'robot:1,2;3,4,5;6,7,8': expected 3 numbers"),
    ]:
        proc = run(scripted_args(cell, tmp_path, **{flag: value}), points)
        out = proc.stdout + proc.stderr
        assert proc.returncode == 2 and "Traceback" not in out, out
        assert needle in proc.stderr, proc.stderr
        assert "Step 1/5" not in proc.stdout, proc.stdout
    proc = run(scripted_args(cell, tmp_path), ["--robot-point", "A=1,2"])
    assert proc.returncode == 2 and "--robot-point 'A=1,2'" in proc.stderr and "Step 1/5" not in proc.stdout
    proc = run(scripted_args(cell, tmp_path), [*points, "--robot-modbus", "robot"])
    assert proc.returncode == 2 and "--robot-modbus: expected HOST:PORT" in proc.stderr
    assert "Step 1/5" not in proc.stdout


def test_a_photo_from_another_camera_sorting_first_refuses_only_itself(cell, tmp_path):
    """The image size comes from the first accepted view, not from the first file read."""
    import cv2

    views = tmp_path / "views"
    shutil.copytree(cell["views"], views)
    cv2.imwrite(str(views / "a_small0.png"), np.full((240, 320, 3), 128, np.uint8))  # no board, sorts first
    proc = run(scripted_args(cell, tmp_path, **{"--images": str(views)}), robot_point_flags(cell["typed"]))
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "a_small0.png: refused: no board found" in proc.stdout
    assert "the others are" not in proc.stdout
    assert load_calibration(tmp_path / "cell-a.json").image_size == TEST_CAMERA.image_size


def test_a_board_file_that_matches_no_view_is_named_in_the_error(cell, tmp_path):
    """No view shows the board at all: the error points at the board file, not at the views."""
    wrong = json.loads(BOARD.read_text())
    wrong["inner_corners"] = [10, 7]  # the photos show a 9x6 board
    board = tmp_path / "chessboard-10x7.json"
    board.write_text(json.dumps(wrong))
    proc = run(scripted_args(cell, tmp_path, **{"--board": str(board)}), robot_point_flags(cell["typed"]))
    out = proc.stdout + proc.stderr
    assert proc.returncode == 2 and "Traceback" not in out, out
    assert f"the board of {board}" in proc.stderr and "inner_corners (10x7" in proc.stderr, proc.stderr
    assert "square_mm" in proc.stderr


REPORT_IMAGES = ("coverage.png", "undistorted.png", "floor_points.png", "roi.png")


def _snapshot(folder):
    return {p.name: p.read_bytes() for p in sorted(folder.iterdir()) if p.is_file()}


def test_a_run_that_writes_nothing_leaves_the_report_of_the_kept_file(cell, tmp_path):
    """A failed re-run used to redraw <cell>-report/*.png over the kept file's images: the report then
    described a calibration never written. Its images go to <cell>-report.new instead; the folder is
    replaced, the old one kept with the json backup's number, only when the file is written."""
    first = run(scripted_args(cell, tmp_path), robot_point_flags(cell["typed"]))
    assert first.returncode == 0, first.stdout + first.stderr
    report, staging = tmp_path / "cell-a-report", tmp_path / "cell-a-report.new"
    assert sorted(_snapshot(report)) == sorted(REPORT_IMAGES) and not staging.exists()
    kept_json, kept_images = (tmp_path / "cell-a.json").read_bytes(), _snapshot(report)
    (report / "capture-20250101-120000").mkdir()  # a camera session's views: never moved away
    (report / "capture-20250101-120000" / "floor.png").write_bytes(b"floor")
    # a touch 10 mm off, another region: the check fails and the wizard stops
    again = {"--validate-touch": xyz(cell["V"] + [10.0, 0.0, 0.0]), "--roi": "10,10;630,10;630,470"}
    failed = run(scripted_args(cell, tmp_path, **again), robot_point_flags(cell["typed"]))
    assert failed.returncode == 1, failed.stdout + failed.stderr
    assert f"Nothing was written; this run's images are in {staging}." in failed.stdout
    assert (tmp_path / "cell-a.json").read_bytes() == kept_json
    assert _snapshot(report) == kept_images  # untouched: they still describe cell-a.json
    assert sorted(_snapshot(staging)) == sorted(REPORT_IMAGES)
    assert _snapshot(staging)["roi.png"] != kept_images["roi.png"]
    assert f"drawn in {staging / 'roi.png'}" in failed.stdout  # the paths printed are real
    # written with --accept-failed: the new images in place, the old folder kept as backup 1
    forced = run(
        scripted_args(cell, tmp_path, **again), robot_point_flags(cell["typed"]) + ["--accept-failed"]
    )
    assert forced.returncode == 1 and "WRITTEN WITH FAILED CHECKS" in forced.stdout, forced.stdout
    assert f"previous file kept as {tmp_path / 'cell-a.json.bak1'}" in forced.stdout
    assert f"previous report images kept as {tmp_path / 'cell-a-report.bak1'}" in forced.stdout
    assert f"images in {report}" in forced.stdout and not staging.exists()
    assert (tmp_path / "cell-a.json.bak1").read_bytes() == kept_json
    assert _snapshot(tmp_path / "cell-a-report.bak1") == kept_images
    assert _snapshot(report)["roi.png"] != kept_images["roi.png"]
    assert (report / "capture-20250101-120000" / "floor.png").read_bytes() == b"floor"
    assert not (tmp_path / "cell-a-report.bak1" / "capture-20250101-120000").exists()


def _wait_blocked_in_read(pid: int, timeout: float = 20.0) -> None:
    """Until the wizard sits in read(2) (the prompt's input), as /proc/PID/syscall shows (x86-64 and
    aarch64 number read 0 and 63): a SIGINT sent just before input() blocks is only acted on at the
    next key or signal. Where /proc does not say, it returns and the caller's resends cover it."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            number = Path(f"/proc/{pid}/syscall").read_text().split()[0]
        except (OSError, IndexError):
            return
        if number in ("0", "63"):
            return
        time.sleep(0.05)


def test_ctrl_c_writes_nothing_says_so_and_leaves_the_report(cell, tmp_path):
    """Ctrl-C at step 4 used to exit 130 silently, the kept file's report images already redrawn."""
    first = run(scripted_args(cell, tmp_path), robot_point_flags(cell["typed"]))
    assert first.returncode == 0, first.stdout + first.stderr
    report = tmp_path / "cell-a-report"
    kept_json, kept_images = (tmp_path / "cell-a.json").read_bytes(), _snapshot(report)
    answers = {"--plane": "board", "--roi": "10,10;630,10;630,470", "--validate-pixel": "V"}
    argv = scripted_args(cell, tmp_path, **answers, **{"--validate-touch": None})
    argv.remove("--non-interactive")
    term = Terminal(argv + robot_point_flags(cell["typed"]), ROOT)
    term.expect("(x,y,z or 'skip') [skip]: ")
    # Ctrl-C at the prompt. A SIGINT that lands after the prompt is printed but before input()
    # blocks in read() waits for the next key (a person would press Ctrl-C again): send it again.
    _wait_blocked_in_read(term.pid)
    for _ in range(10):
        os.kill(term.pid, signal.SIGINT)
        try:
            term.expect("interrupted", timeout=3.0)
            break
        except AssertionError as exc:
            if "wizard ended" in str(exc):
                raise
    code = term.wait()
    assert code == 130, term.done + term.transcript
    assert (term.done + term.transcript).strip().splitlines()[-1] == "interrupted: nothing was written"
    assert (tmp_path / "cell-a.json").read_bytes() == kept_json and not backup_paths(tmp_path / "cell-a.json")
    assert _snapshot(report) == kept_images
    assert not (tmp_path / "cell-a-report.new").exists()


def test_report_folder_keeps_captures_and_numbers_its_backups(tmp_path):
    from edge.wizard.report import ReportFolder

    report = ReportFolder(tmp_path, "c")
    report.final.mkdir()
    (report.final / "roi.png").write_bytes(b"old")
    (report.final / "capture-1").mkdir()
    report.staging.mkdir()
    (report.staging / "roi.png").write_bytes(b"new")
    assert report.publish(tmp_path / "c.json.bak3") == tmp_path / "c-report.bak3"
    assert (report.final / "roi.png").read_bytes() == b"new" and (report.final / "capture-1").is_dir()
    assert (tmp_path / "c-report.bak3" / "roi.png").read_bytes() == b"old"
    # the json's number taken (a folder kept by hand): the next free number; no json backup: the same
    (tmp_path / "c-report.bak4").mkdir()
    report.staging.mkdir()
    assert report.publish(tmp_path / "c.json.bak4") == tmp_path / "c-report.bak5"
    report.staging.mkdir()
    assert report.publish(None) == tmp_path / "c-report.bak6"
    # a run cut off while step 5 moved the captures: the next run's start puts them back
    report.staging.mkdir()
    os.replace(report.final / "capture-1", report.staging / "capture-1")
    (report.staging / "roi.png").write_bytes(b"unwritten run")
    report.start()
    assert not report.staging.exists() and (report.final / "capture-1").is_dir()
