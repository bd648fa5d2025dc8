"""The wizard's step 1 on real photos (OpenCV's stereo sample sets), held to OpenCV's own reference.

Each set goes through the wizard's own per-view check with the default rules and its fit. The
reference is `cv2.calibrateCameraExtended` on the same detections (every view the wizard found
the board in, whatever its verdict), and the wizard's camera matrix must lie within the
reference's 1-sigma. OpenCV's tutorial pipeline (its detector with an 11x11 cornerSubPix window)
is fitted too: the wizard's corners must fit the lens at least as well (lower RMS).
"""

import json
import os
import re
import subprocess
import sys
from pathlib import Path

import cv2
import numpy as np
import pytest
from real_data import data_missing
from scipy.optimize import least_squares

from benchmarks.prepare_calibration_photos import UR3_CB_DH, UR3E_DH, dh_forward_kinematics
from edge.calibration_file import load_calibration
from edge.geometry import CameraModel, RigidTransform
from edge.wizard.boards import load_board
from edge.wizard.hand_eye import BoardView, calibrate_hand_eye
from edge.wizard.intrinsics import calibrate_intrinsics
from edge.wizard.step_hand_eye import half_turn
from edge.wizard.views import ViewCollector

DATA = Path(__file__).resolve().parent / "data" / "calibration"
# Photos taken from fetched public repositories are kept out of git, in the workspace's shared
# folder beside the checkout (../shared/data/calibration); BINPICK_CALIBRATION_PHOTOS overrides.
SHARED = Path(
    os.environ.get(
        "BINPICK_CALIBRATION_PHOTOS", Path(__file__).resolve().parents[2] / "shared" / "data" / "calibration"
    )
)
BOARD = load_board(
    Path(__file__).resolve().parents[1] / "calibration" / "boards" / "chessboard-9x6-25mm.json"
)


def _photos(name: str, pattern: str, what: str) -> list[Path]:
    """The files of a real photo set kept outside git (sorted), or the skip that says where it goes."""
    files = sorted((SHARED / name).glob(pattern))
    if not files:
        where = "kept outside git, see tests/data/calibration/SOURCE.md"
        data_missing(f"{SHARED / name}: {what} is not here ({where})")
    return files


def reference(objects, images, size):
    """OpenCV's calibrateCameraExtended: fx, fy, cx, cy, their 1-sigma, and the RMS."""
    rms, k, _, _, _, sigma, _, _ = cv2.calibrateCameraExtended(objects, images, size, None, None)
    return np.array([k[0, 0], k[1, 1], k[0, 2], k[1, 2]]), sigma.ravel()[:4], rms


@pytest.mark.parametrize("folder", ["opencv-stereo-left", "opencv-stereo-right"])
def test_real_chessboard_photos_pass_with_the_defaults_within_one_sigma(folder):
    files = sorted((DATA / folder).glob("*.jpg"))
    assert len(files) == 13
    images = [cv2.imread(str(f)) for f in files]
    collector = ViewCollector(BOARD, (images[0].shape[1], images[0].shape[0]))
    verdicts = [collector.consider(f.name, im) for f, im in zip(files, images, strict=True)]
    found = [v for v in verdicts if v.detection is not None]
    assert len(found) == 13 and len(collector.accepted) >= 12  # at most one near-duplicate refused
    result = calibrate_intrinsics(collector)
    assert result.passed and result.rms_px < 0.3
    ours = np.array(
        [
            result.camera_matrix[0, 0],
            result.camera_matrix[1, 1],
            result.camera_matrix[0, 2],
            result.camera_matrix[1, 2],
        ]
    )
    ref, sigma, _ = reference(
        [v.detection.object_points.reshape(-1, 1, 3) for v in found],
        [v.detection.image_points.reshape(-1, 1, 2) for v in found],
        collector.image_size,
    )
    assert np.all(np.abs(ours - ref) <= sigma), (ours, ref, sigma)
    # OpenCV's tutorial pipeline on the same images: its corners fit the lens less well
    tutorial = []
    for im in images:
        gray = cv2.cvtColor(im, cv2.COLOR_BGR2GRAY)
        ok, corners = cv2.findChessboardCorners(gray, (9, 6))
        assert ok
        criteria = (cv2.TERM_CRITERIA_EPS + cv2.TERM_CRITERIA_MAX_ITER, 30, 0.001)
        tutorial.append(cv2.cornerSubPix(gray, corners, (11, 11), (-1, -1), criteria))
    _, _, tutorial_rms = reference(
        [BOARD.corner_object_points()] * len(tutorial), tutorial, collector.image_size
    )
    assert result.rms_px < tutorial_rms


def test_real_charuco_photos_detected_with_the_defaults_and_held_to_opencv():
    """A calib.io 5x7 ChArUco (30 mm) printed on paper, 10 views from a RealSense colour camera.

    Every view passes the per-view check with the defaults and the camera matrix lies within the
    reference's 1-sigma. The fit's RMS (0.64 px) is above the 0.5 px default: a paper print on
    card, always on the table at similar tilts (44 % coverage); the wizard says so and names
    the coverage, which is what a technician must act on.
    """
    files = _photos("calibio-charuco-5x7-rgbd", "*.png", "the calib.io photo set")
    board = load_board(DATA / "calibio-charuco-5x7-board.json")
    assert len(files) == 10
    collector = ViewCollector(board, (1280, 720))
    verdicts = [collector.consider(f.name, cv2.imread(str(f), cv2.IMREAD_GRAYSCALE)) for f in files]
    assert all(v.accepted for v in verdicts), [v.reason for v in verdicts]
    result = calibrate_intrinsics(collector)
    ours = np.array(
        [
            result.camera_matrix[0, 0],
            result.camera_matrix[1, 1],
            result.camera_matrix[0, 2],
            result.camera_matrix[1, 2],
        ]
    )
    ref, sigma, ref_rms = reference(
        [v.detection.object_points.reshape(-1, 1, 3) for v in verdicts],
        [v.detection.image_points.reshape(-1, 1, 2) for v in verdicts],
        collector.image_size,
    )
    assert np.all(np.abs(ours - ref) <= sigma), (ours, ref, sigma)
    assert result.rms_px == pytest.approx(ref_rms, rel=0.05) and 0.5 < result.rms_px < 0.8
    assert not result.passed and any("cover" in a for a in result.advice)


def test_real_fine_charuco_seen_in_part_passes_the_view_check_with_the_defaults():
    """A fine 22x22 ChArUco larger than the field of view, 6 real photos of different patches of it
    (10-15 % of its 441 corners each, shallow depth of field): each view passes the per-view check
    with the default rules, which judge the corners' count and spread and the blur against the
    square's size in pixels, where the former share-of-the-board rule (25 %) refused every one.

    Six views are too few for intrinsics, and the wizard says so rather than pass them: the fit's
    RMS (0.74 px, a macro lens with strong distortion) is above the 0.5 px default and the advice
    asks for 12 or more views. The issue's 22-view figure is not measured on this set.
    """
    files = _photos("vorobyev-fine-charuco-22x22", "small*.png", "the fine ChArUco photo set")
    board = load_board(DATA / "vorobyev-charuco-22x22-board.json")
    assert len(files) == 6 and board.total_corners == 441
    collector = ViewCollector(board, (720, 540))
    verdicts = [collector.consider(f.name, cv2.imread(str(f), cv2.IMREAD_GRAYSCALE)) for f in files]
    assert all(v.accepted for v in verdicts), [v.reason for v in verdicts]
    shares = [v.detection.fraction for v in verdicts]
    assert all(0.09 < share < 0.25 for share in shares), shares
    for v in verdicts:  # a wrong marker id would put a corner tens of pixels off the board's plane
        corners = v.detection.image_points.reshape(-1, 2)
        plane = v.detection.object_points.reshape(-1, 3)[:, :2]
        homography, _ = cv2.findHomography(plane, corners)
        fitted = cv2.perspectiveTransform(plane.reshape(-1, 1, 2), homography).reshape(-1, 2)
        assert np.abs(fitted - corners).max() < 8.0, v.name
    result = calibrate_intrinsics(collector)
    assert not result.passed and result.rms_px > 0.5
    assert any("6 views used" in a for a in result.advice), result.advice


# --- hand-eye on real robot sets (tests/data/calibration/SOURCE.md; kept outside git) ---------------
#
# The wizard runs as a technician would run it (`binpick calibrate --non-interactive`, default
# thresholds; intrinsics from the set's own photos), and its camera transform is held to a
# reference written here independently: the corner numbering of the symmetric boards settled by
# a spectral (Z2) synchronisation of pairwise rotation agreements, the start from OpenCV's
# calibrateRobotWorldHandEye (Shah) instead of the wizard's calibrateHandEye (Park), and the two
# transforms refined as absolute rotation vectors and translations with SciPy's trust-region
# least squares (the wizard: LM on increments).

ROOT = Path(__file__).resolve().parents[1]


def _flange_poses(poses_file: Path) -> tuple[list[str], list[np.ndarray]]:
    data = json.loads(poses_file.read_text())
    return [p["image"] for p in data["poses"]], [np.array(p["matrix"], float) for p in data["poses"]]


def _run_wizard(tmp_path: Path, folder: Path, setup: str, intrinsics: str, floor: str, passes: bool):
    """The wizard with the defaults: a set that passes must exit 0 without --accept-failed; one that
    fails is written with --accept-failed (exit 1) so that its figures can be read."""
    argv = [sys.executable, "-m", "edge", "calibrate", "--non-interactive", "--cell", "real"]
    argv += ["--out-dir", str(tmp_path), "--board", str(folder / "board.json")]
    argv += ["--images", str(folder / intrinsics), "--floor-image", str(folder / "hand_eye" / floor)]
    argv += ["--hand-eye-poses", str(folder / "poses.json"), "--hand-eye-images", str(folder / "hand_eye")]
    argv += ["--hand-eye-setup", setup, "--validate-touch", "skip"] + ([] if passes else ["--accept-failed"])
    env = dict(os.environ, PYTHONPATH=str(ROOT), PYTHONUNBUFFERED="1")
    proc = subprocess.run(argv, capture_output=True, text=True, timeout=300, env=env, cwd=ROOT)
    expected = 0 if passes else 1
    assert proc.returncode == expected and (tmp_path / "real.json").exists(), proc.stdout + proc.stderr
    return proc.stdout, load_calibration(tmp_path / "real.json")


def _angle_deg(r: np.ndarray) -> float:
    return float(np.degrees(np.arccos(np.clip((np.trace(r) - 1.0) / 2.0, -1.0, 1.0))))


def _reference(setup, board, camera_matrix, dist, grippers, detections):
    """Independent joint refinement: camera transform, per-view residuals (px) and the numbering used.

    eye-to-hand: C_i = X G_i Y with X = camera <- base, Y = flange <- board; eye-in-hand:
    C_i = X G_i^-1 Y with X = camera <- flange, Y = base <- board. Returns robot <- camera
    (4x4: base <- camera, or flange <- camera) and whether each view was numbered from the other end.
    """
    turn = np.diag([-1.0, -1.0, 1.0, 1.0])
    turn[:2, 3] = [(board.columns + 1) * board.square_mm, (board.rows + 1) * board.square_mm]
    seen = []
    for det in detections:
        ok, rvec, tvec = cv2.solvePnP(det.object_points, det.image_points, camera_matrix, dist)
        assert ok
        c = np.eye(4)
        c[:3, :3], c[:3, 3] = cv2.Rodrigues(rvec)[0], tvec.ravel()
        seen.append(c)
    n = len(seen)
    # sign[i, j] = +1 when views i and j agree with the robot numbered as found, -1 when one of them turned
    sign = np.zeros((n, n))
    for i in range(n):
        for j in range(n):
            if i != j:
                robot = _angle_deg(grippers[i][:3, :3].T @ grippers[j][:3, :3])
                same = abs(_angle_deg(seen[i][:3, :3] @ seen[j][:3, :3].T) - robot)
                other = abs(_angle_deg(seen[i][:3, :3] @ (seen[j] @ turn)[:3, :3].T) - robot)
                sign[i, j] = 1.0 if same < other else -1.0
    turned = np.linalg.eigh(sign)[1][:, -1] < 0
    if turned.sum() > n / 2:
        turned = ~turned
    objects = [
        (turn[:3, :3] @ d.object_points.T.astype(float)).T + turn[:3, 3]
        if t
        else d.object_points.astype(float)
        for d, t in zip(detections, turned, strict=True)
    ]
    seen = [s @ turn if t else s for s, t in zip(seen, turned, strict=True)]
    motions = grippers if setup == "eye-to-hand" else [np.linalg.inv(g) for g in grippers]
    # calibrateRobotWorldHandEye solves C_i = X M_i Y with M_i passed as "base2gripper"; it returns
    # Y^-1 ("base2world") and X ("gripper2cam")
    r_yi, t_yi, r_x, t_x = cv2.calibrateRobotWorldHandEye(
        [s[:3, :3] for s in seen],
        [s[:3, 3] for s in seen],
        [m[:3, :3] for m in motions],
        [m[:3, 3] for m in motions],
    )
    y_inv = np.eye(4)
    y_inv[:3, :3], y_inv[:3, 3] = r_yi, t_yi.ravel()
    y = np.linalg.inv(y_inv)

    def pack(m):
        return np.concatenate([cv2.Rodrigues(m[:3, :3])[0].ravel(), m[:3, 3]])

    def unpack(p):
        m = np.eye(4)
        m[:3, :3], m[:3, 3] = cv2.Rodrigues(p[:3])[0], p[3:6]
        return m

    def residuals(p):
        x, y = unpack(p[:6]), unpack(p[6:])
        out = []
        for m, obj, det in zip(motions, objects, detections, strict=True):
            c = x @ m @ y
            proj, _ = cv2.projectPoints(obj, cv2.Rodrigues(c[:3, :3])[0], c[:3, 3], camera_matrix, dist)
            out.append((proj.reshape(-1, 2) - det.image_points).ravel())
        return np.concatenate(out)

    x = np.eye(4)
    x[:3, :3], x[:3, 3] = r_x, t_x.ravel()
    fit = least_squares(residuals, np.concatenate([pack(x), pack(y)]), method="trf", x_scale="jac")
    res = fit.fun.reshape(-1, 2)
    return np.linalg.inv(unpack(fit.x[:6])), float(np.sqrt(np.mean(np.sum(res**2, axis=1)))), turned


def _detections(board, folder, names):
    out = []
    for name in names:
        det = board.detect(cv2.imread(str(folder / "hand_eye" / name), cv2.IMREAD_GRAYSCALE))
        assert det is not None and det.count == board.total_corners, name
        out.append(det)
    return out


def _estimate_pose_errors(cal, he, board, names, grippers, detections, setup, min_mm, min_deg):
    """The same views with each robot pose corrected: the arm's error spread, and still a fail.

    Measured (docs/calibration.md): both arms' poses are off by 1.5-2.3 mm per axis (the UR3e's by
    0.75 deg as well), far more than the photos (0.12-0.15 px per coordinate), so the camera is
    known worse than the plain refinement said and the verdict stays a fail.
    """
    views = [
        BoardView(n, RigidTransform.from_matrix(g), d.object_points, d.image_points)
        for n, g, d in zip(names, grippers, detections, strict=True)
    ]
    camera = CameraModel(cal.camera_matrix, cal.dist_coeffs, cal.image_size)
    result = calibrate_hand_eye(views, camera, setup, symmetric_turn=half_turn(board), pose_errors="estimate")
    result.predict_at({p["name"]: np.array(p["camera_mm"]) for p in he["check_points"]})
    found = result.pose_errors
    shift = np.linalg.norm(result.robot_from_camera.translation - np.array(he["matrix"])[:3, 3])
    print(
        f"\n  robot pose errors estimated: {found.translation_sigma_mm:.2f} mm, "
        f"{found.rotation_sigma_deg:.3f} deg, corners {found.corner_sigma_px:.3f} px; camera moved "
        f"{shift:.2f} mm, 1-sigma {np.round(result.camera_position_sigma_mm, 2).tolist()} mm, "
        f"predicted {result.predicted_error_mm:.2f} mm"
    )
    assert found.converged and found.corner_sigma_px < 0.5 * he["rms_px"]
    assert found.translation_sigma_mm > min_mm and found.rotation_sigma_deg > min_deg
    assert not result.passed
    return result


def _real_set(name: str) -> Path:
    return _photos(name, "poses.json", "the real hand-eye set")[0].parent


def test_forward_kinematics_matches_an_independent_product_of_exponentials():
    """The DH forward kinematics that turns the UR3e's joint angles into flange poses.

    Held to Universal Robots' zero pose (flange at (a2 + a3, -(d4 + d6), d1 - d5), tool z along
    base -y) and, at random joint angles, to a product of exponentials built from the joint axes
    alone (Lynch and Park, Modern Robotics 4.1).
    """
    for dh in (UR3E_DH, UR3_CB_DH):
        (d1, _, _), (_, a2, _), (_, a3, _), (d4, _, _), (d5, _, _), (d6, _, _) = dh
        zero = dh_forward_kinematics(np.zeros(6), dh)
        np.testing.assert_allclose(zero[:3, 3], 1000 * np.array([a2 + a3, -(d4 + d6), d1 - d5]), atol=1e-9)
        np.testing.assert_allclose(zero[:3, :3], [[1, 0, 0], [0, 0, -1], [0, 1, 0]], atol=1e-12)
        # joint axes at the zero pose (unit vector, a point on it, mm)
        axes = [
            ([0, 0, 1], [0, 0, 0]),
            ([0, -1, 0], [0, 0, d1]),
            ([0, -1, 0], [a2, 0, d1]),
            ([0, -1, 0], [a2 + a3, 0, d1]),
            ([0, 0, -1], [a2 + a3, -d4, d1]),
            ([0, -1, 0], [a2 + a3, -d4, d1 - d5]),
        ]
        rng = np.random.default_rng(5)
        for _ in range(20):
            q = rng.uniform(-np.pi, np.pi, 6)
            poe = np.eye(4)
            for (w, p), angle in zip(axes, q, strict=True):
                r = cv2.Rodrigues(np.array(w, float) * angle)[0]
                step = np.eye(4)
                step[:3, :3], step[:3, 3] = r, (np.eye(3) - r) @ (1000 * np.array(p, float))
                poe = poe @ step
            np.testing.assert_allclose(dh_forward_kinematics(q, dh), poe @ zero, atol=1e-9)


def test_real_eye_to_hand_set_ur3e(tmp_path):
    """A fixed webcam, a 9x7 (symmetric) checkerboard on a UR3e's flange, 38 poses from joint angles.

    Measured (docs/calibration.md): the wizard's camera lies within 2 mm of the independent
    refinement, reports its 1-sigma, and passes the 2 mm default: the predicted RMS error on the
    floor is 1.9 mm at the worst image corner. That figure comes from errors shared within each
    view (the nominal DH model of an uncalibrated arm: the per-view 1-sigma is 7x the
    independent-corner one), and the 3-sigma bound beside it (4.5 mm) says how far it may reach.
    """
    folder = _real_set("alimedlej-ur3e-eye-to-hand-cam1")
    board = load_board(folder / "board.json")
    assert board.symmetric  # 9x7: the wizard has to settle each view's numbering from the robot
    stdout, cal = _run_wizard(tmp_path, folder, "eye-to-hand", "intrinsics", "img1_cam1.png", passes=True)
    he = cal.hand_eye
    assert cal.intrinsics_report["passed"] and "38 poses, eye-to-hand" in stdout
    names, grippers = _flange_poses(folder / "poses.json")
    detections = _detections(board, folder, names)
    ours = np.array(he["matrix"])
    ref, ref_rms, turned = _reference(
        "eye-to-hand", board, cal.camera_matrix, cal.dist_coeffs, grippers, detections
    )
    # the same views turned (up to one common turn, which the board transform absorbs)
    wizard_turned = np.isin(names, he["turned_views"])
    assert np.array_equal(wizard_turned, turned) or np.array_equal(wizard_turned, ~turned)
    assert 0 < turned.sum() < len(names)  # the detector did number views from both ends
    gap = np.linalg.norm(ours[:3, 3] - ref[:3, 3])
    assert gap < 2.0, (ours[:3, 3], ref[:3, 3])
    assert he["rms_px"] == pytest.approx(ref_rms, rel=0.02) and he["rms_px"] < 1.0
    sigma = np.array(he["camera_position_sigma_mm"])
    assert sigma.shape == (3,) and np.all(sigma > 0) and "camera position 1-sigma" in stdout
    # the verdict: passes the default on the view-clustered model, which is the larger here
    assert he["tolerance_mm"] == 2.0 and he["passed"] and cal.extrinsics_report["passed"] and cal.passed
    assert 1.0 < he["predicted_error_mm"] < 2.0 and 3.0 < he["bound_3sigma_mm"] < 6.0
    assert np.all(
        np.array(he["camera_position_sigma_view_mm"]) > 3 * np.array(he["camera_position_sigma_corner_mm"])
    )
    assert re.search(r"predicted error on the bin floor \(RMS.*: 1\.\d\d mm \(limit 2 mm\): PASS", stdout)
    assert "note: the errors are shared within each view" in stdout  # and how to see their size
    # the UR3e table fits the photos better than the CB-series UR3's
    joints = [
        np.radians(p["joint_angles_deg"]) for p in json.loads((folder / "poses.json").read_text())["poses"]
    ]
    np.testing.assert_allclose([dh_forward_kinematics(q, UR3E_DH) for q in joints], grippers, atol=1e-5)
    cb = [dh_forward_kinematics(q, UR3_CB_DH) for q in joints]
    _, cb_rms, _ = _reference("eye-to-hand", board, cal.camera_matrix, cal.dist_coeffs, cb, detections)
    assert cb_rms > 2 * ref_rms
    print(
        f"\neye-to-hand (UR3e, cam1): passed {he['passed']}, camera {np.round(ours[:3, 3], 2).tolist()} mm, "
        f"1-sigma {he['camera_position_sigma_mm']} mm "
        f"(corner model {he['camera_position_sigma_corner_mm']}), "
        f"predicted {he['predicted_error_mm']} mm (3-sigma bound {he['bound_3sigma_mm']} mm), "
        f"reprojection {he['rms_px']} px; reference "
        f"{np.round(ref[:3, 3], 2).tolist()} mm, {ref_rms:.3f} px, gap {gap:.3f} mm; "
        f"{int(turned.sum())} of {len(names)} views turned" + f"; CB-series UR3 table: {cb_rms:.3f} px"
    )
    estimated = _estimate_pose_errors(
        cal, he, board, names, grippers, detections, "eye-to-hand", min_mm=0.5, min_deg=0.3
    )
    # one pose is 7.5 mm and 2.5 deg off, three times the others' spread: named
    assert [w.split(":")[0] for w in estimated.warnings if "far beyond" in w] == ["img35_cam1.png"]
    # as published, poses 25 and 26 carry each other's photo: the wizard names them
    all_names, all_grippers = _flange_poses(folder / "poses-all-40.json")
    views = [
        BoardView(n, RigidTransform.from_matrix(g), d.object_points, d.image_points)
        for n, g, d in zip(all_names, all_grippers, _detections(board, folder, all_names), strict=True)
    ]
    camera = CameraModel(cal.camera_matrix, cal.dist_coeffs, cal.image_size)
    result = calibrate_hand_eye(views, camera, "eye-to-hand", symmetric_turn=half_turn(board))
    named = sorted(w.split(":")[0] for w in result.warnings if "is this the image of this pose" in w)
    assert named == ["img25_cam1.png", "img26_cam1.png"]
    assert max(result.per_view_px, key=result.per_view_px.get) in named


def test_real_eye_in_hand_set_denso(tmp_path):
    """Tabb's dataset 1: a camera on a Denso arm, an 8x6 (symmetric) chessboard 2.2 m away, 30 views.

    Measured (docs/calibration.md): within 2 mm of the independent refinement, 1-sigma reported,
    and a clear fail of the 2 mm default (predicted RMS error 20 mm): 1.6 px of board-corner
    residual shared within each view and a board 2.2 m from a long lens leave the camera in the
    flange known to 4-17 mm.
    """
    folder = _real_set("tabb-denso-eye-in-hand")
    board = load_board(folder / "board.json")
    assert board.symmetric
    stdout, cal = _run_wizard(tmp_path, folder, "eye-in-hand", "hand_eye", "image00.png", passes=False)
    he = cal.hand_eye
    assert cal.intrinsics_report["passed"] and "30 poses, eye-in-hand" in stdout
    names, grippers = _flange_poses(folder / "poses.json")
    detections = _detections(board, folder, names)
    ref, ref_rms, turned = _reference(
        "eye-in-hand", board, cal.camera_matrix, cal.dist_coeffs, grippers, detections
    )
    wizard_turned = np.isin(names, he["turned_views"])
    assert np.array_equal(wizard_turned, turned) or np.array_equal(wizard_turned, ~turned)
    ours = np.array(he["matrix"])
    gap = np.linalg.norm(ours[:3, 3] - ref[:3, 3])
    assert gap < 2.0, (ours[:3, 3], ref[:3, 3])
    print(
        f"\neye-in-hand (Denso, Tabb DS1): passed {he['passed']}, "
        f"camera {np.round(ours[:3, 3], 2).tolist()} mm, "
        f"1-sigma {he['camera_position_sigma_mm']} mm "
        f"(corner model {he['camera_position_sigma_corner_mm']}), "
        f"predicted {he['predicted_error_mm']} mm, reprojection {he['rms_px']} px; reference "
        f"{np.round(ref[:3, 3], 2).tolist()} mm, {ref_rms:.3f} px, gap {gap:.3f} mm; "
        f"{int(turned.sum())} of {len(names)} views turned"
    )
    assert he["rms_px"] == pytest.approx(ref_rms, rel=0.02)
    sigma = np.array(he["camera_position_sigma_mm"])
    assert sigma.shape == (3,) and np.all(sigma > 0) and "camera position 1-sigma" in stdout
    assert not he["passed"] and he["predicted_error_mm"] > 10.0
    assert "--hand-eye-pose-errors estimate corrects each pose" in stdout  # the advice names the option
    _estimate_pose_errors(
        cal, he, board, names, grippers, detections, "eye-in-hand", min_mm=1.0, min_deg=0.02
    )
    # the file's robot <- camera is the capture pose times flange <- camera
    capture = np.array(json.loads((folder / "poses.json").read_text())["capture"]["matrix"])
    np.testing.assert_allclose(cal.robot_from_camera, capture @ ours, atol=1e-6)


def test_real_ur3e_poses_with_radians_under_rpy_deg_are_not_reported_as_certain(tmp_path):
    """The UR3e set's angles exported in radians but labelled rpy_deg: a 59 px reprojection used to
    come with a camera position 1-sigma of 0.00 mm (pinv cut every translation direction). The
    1-sigma must be as large as the fit is bad, and the wizard must say the angles look like radians.

    Park's closed form is a mirror image here (determinant -1); refined as it was, the camera kept
    it (59 px) and --accept-failed ended at step 5 with "refusing to write: ... expected a rigid 4x4
    transform". Started from the nearest rotation, the fit is still bad (~9 px, 1-sigma ~30-95 mm)
    and --accept-failed writes it, marked failed."""
    folder = _real_set("alimedlej-ur3e-eye-to-hand-cam1")
    poses = []
    for entry in json.loads((folder / "poses.json").read_text())["poses"]:
        m = np.array(entry["matrix"], float)
        roll, pitch = np.arctan2(m[2, 1], m[2, 2]), -np.arcsin(np.clip(m[2, 0], -1, 1))
        yaw = np.arctan2(m[1, 0], m[0, 0])
        poses.append({"image": entry["image"], "xyz_mm": m[:3, 3].tolist(), "rpy_deg": [roll, pitch, yaw]})
    (tmp_path / "radians.json").write_text(json.dumps({"poses": poses}))
    argv = [sys.executable, "-m", "edge", "calibrate", "--non-interactive", "--cell", "rad"]
    argv += ["--out-dir", str(tmp_path), "--board", str(folder / "board.json")]
    argv += [
        "--images",
        str(folder / "intrinsics"),
        "--floor-image",
        str(folder / "hand_eye" / "img1_cam1.png"),
    ]
    argv += [
        "--hand-eye-poses",
        str(tmp_path / "radians.json"),
        "--hand-eye-images",
        str(folder / "hand_eye"),
    ]
    argv += ["--validate-touch", "skip"]
    env = dict(os.environ, PYTHONPATH=str(ROOT), PYTHONUNBUFFERED="1")
    proc = subprocess.run(argv, capture_output=True, text=True, timeout=300, env=env, cwd=ROOT)
    assert proc.returncode == 1 and "Nothing was written" in proc.stdout, proc.stdout + proc.stderr
    rms = float(re.search(r"reprojection ([0-9.]+) px, camera moved", proc.stdout).group(1))
    found = re.search(r"camera position 1-sigma x ([0-9.]+)  y ([0-9.]+)  z ([0-9.]+) mm", proc.stdout)
    assert rms > 5 and max(float(x) for x in found.groups()) > 50, found.group(0)
    assert "the angles look like radians" in proc.stdout
    assert "the closed form (PARK) is not a rotation (determinant -1.00)" in proc.stdout
    forced = subprocess.run(
        argv + ["--accept-failed"], capture_output=True, text=True, timeout=300, env=env, cwd=ROOT
    )
    assert forced.returncode == 1, forced.stdout + forced.stderr
    assert "WRITTEN WITH FAILED CHECKS" in forced.stdout
    cal = load_calibration(tmp_path / "rad.json")
    assert not cal.passed and not cal.hand_eye["passed"]
    rotation = cal.robot_from_camera[:3, :3]
    assert np.abs(rotation.T @ rotation - np.eye(3)).max() < 1e-9 and np.linalg.det(rotation) > 0
