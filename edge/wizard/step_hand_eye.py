"""Optional part of step 2, hand-eye: robot poses instead of (or besides) touched board points.

`--hand-eye-poses poses.json --hand-eye-images DIR`: each pose's image gives the board corners,
the pose file the gripper in the robot base frame. `edge.wizard.hand_eye` solves the closed
form, refines it jointly on the reprojection error and predicts the error at the bin floor;
that prediction, not the closed form's spread, is the pass/fail.

Set-ups (`--hand-eye-setup`): `eye-to-hand` (default; camera fixed above the bin, board held by
the gripper) gives robot <- camera directly. `eye-in-hand` (camera on the gripper, board fixed
in the cell) gives gripper <- camera; the appliance then needs the pose the robot takes to look
at the bin, `"capture"` in the poses file, and the floor image must be taken from that pose.
"""

from __future__ import annotations

import argparse
import json
import math
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np

from binpick_core.errors import CommandError
from edge.geometry import CameraModel, RigidTransform
from edge.wizard.boards import Board
from edge.wizard.hand_eye import (
    BoardView,
    HandEyeError,
    HandEyeResult,
    calibrate_hand_eye,
    plane_points_camera,
    rotation_from_quaternion,
)
from edge.wizard.prompts import Wizard, read_image
from edge.wizard.robot import BoardPose, StepError

RADIANS_LIMIT = 2.0 * math.pi * 1.05  # |rpy_deg| values all within this look like radians
RADIANS_HINT_PX = 5.0  # ... when the refined reprojection is above this (a good set is ~0.2-1 px)
MAX_ROTATION_ROUNDING = 1e-3  # a pose matrix's rotation may be this far from orthonormal (rounded export)
QUATERNION_LENGTH_TOLERANCE = 1e-3  # a quat_xyzw may be this far from unit length (rounded export)
MAX_REACH_M = 20.0  # an xyz_m value beyond this is millimetres under the wrong key
METRES_UNDER_MM = 5.0  # every xyz_mm value below this: metres under the wrong key (no arm reaches 5 mm)


def _shown(value: object) -> str:
    """A JSON value as the technician typed it in the file (null, "0,5"), cut short."""
    text = json.dumps(value)
    return text if len(text) <= 60 else text[:57] + "..."


def _number(value: object, where: str) -> float:
    """One finite number; bool is refused although Python counts it as an int (true is no angle)."""
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
        raise CommandError(f"{where} = {_shown(value)}: expected a number")
    return float(value)


def _numbers(value: object, count: int, where: str, what: str) -> np.ndarray:
    """A JSON list of `count` numbers, each refused by its own index when it is not one."""
    if not isinstance(value, list) or len(value) != count:
        raise CommandError(f"{where} = {_shown(value)}: expected {what}")
    return np.array([_number(v, f"{where}[{k}]") for k, v in enumerate(value)])


def _pose_matrix(entry: dict, where: str) -> RigidTransform:
    """Robot base <- gripper from a pose entry; every value checked, so a typo is one line naming it."""
    if "matrix" in entry:
        what = "a 4x4 matrix (robot base <- gripper, mm): 4 rows of 4 numbers"
        rows = entry["matrix"]
        if not isinstance(rows, list) or len(rows) != 4:
            raise CommandError(f"{where}.matrix = {_shown(rows)}: expected {what}")
        m = np.array([_numbers(row, 4, f"{where}.matrix[{r}]", what) for r, row in enumerate(rows)])
        rotation = m[:3, :3]
        if (
            np.abs(rotation.T @ rotation - np.eye(3)).max() > MAX_ROTATION_ROUNDING
            or np.linalg.det(rotation) <= 0
            or np.abs(m[3] - [0.0, 0.0, 0.0, 1.0]).max() > MAX_ROTATION_ROUNDING
        ):
            raise CommandError(
                f"{where}.matrix: not a rigid transform (its 3x3 rotation must be orthonormal with "
                "determinant +1, its last row 0 0 0 1): check the export"
            )
        # Poses exported with 4-6 decimals are orthonormal to ~1e-6 only, and the camera transform
        # the wizard writes (eye-in-hand: capture x gripper <- camera) must be rigid to 1e-6:
        # take the nearest rotation (SVD), which moves such a pose by less than its rounding.
        u, _, vt = np.linalg.svd(rotation)
        return RigidTransform(u @ vt, m[:3, 3])
    translations = [k for k in ("xyz_mm", "xyz_m") if k in entry]
    rotations = [k for k in ("rpy_deg", "quat_xyzw") if k in entry]
    if len(translations) != 1 or len(rotations) != 1:
        raise CommandError(
            f"{where}: give 'matrix' (4x4, mm), or one position, 'xyz_mm' or 'xyz_m' (metres, as ROS tf "
            "and MoveIt export it), with one rotation, 'rpy_deg' (R = Rz(yaw) Ry(pitch) Rx(roll)) or "
            "'quat_xyzw' (a unit quaternion, ROS order x, y, z, w)"
            + (f"; this pose has {' and '.join(given)}" if (given := translations + rotations) else "")
        )
    if translations[0] == "xyz_mm":
        xyz = _numbers(entry["xyz_mm"], 3, f"{where}.xyz_mm", "3 numbers x, y, z (mm)")
    else:
        metres = _numbers(entry["xyz_m"], 3, f"{where}.xyz_m", "3 numbers x, y, z (metres)")
        if np.abs(metres).max() > MAX_REACH_M:
            raise CommandError(
                f"{where}.xyz_m = {_shown(entry['xyz_m'])}: over {MAX_REACH_M:g} m from the robot's base; "
                "millimetres go under 'xyz_mm'"
            )
        xyz = 1000.0 * metres
    if rotations[0] == "quat_xyzw":
        return RigidTransform(_quaternion_rotation(entry["quat_xyzw"], f"{where}.quat_xyzw"), xyz)
    rpy = _numbers(entry["rpy_deg"], 3, f"{where}.rpy_deg", "3 numbers roll, pitch, yaw (degrees)")
    roll, pitch, yaw = np.radians(rpy)
    rz = cv2.Rodrigues(np.array([0.0, 0.0, yaw]))[0]
    ry = cv2.Rodrigues(np.array([0.0, pitch, 0.0]))[0]
    rx = cv2.Rodrigues(np.array([roll, 0.0, 0.0]))[0]
    return RigidTransform(rz @ ry @ rx, xyz)


def _quaternion_rotation(value: object, where: str) -> np.ndarray:
    """The rotation of a unit quaternion in ROS order (x, y, z, w).

    A quaternion whose length is off 1 by more than rounding is refused rather than normalised: a
    truncated or garbled export, which scaling to unit length would hide. (w-first data read as
    x-first keeps unit length; it shows as a bad reprojection, and the step's advice names it.)
    """
    q = _numbers(value, 4, where, "4 numbers x, y, z, w (a unit quaternion, ROS order)")
    norm = float(np.linalg.norm(q))
    if abs(norm - 1.0) > QUATERNION_LENGTH_TOLERANCE:
        raise CommandError(
            f"{where} = {_shown(value)}: its length is {norm:.4f}, expected a unit quaternion "
            "(x, y, z, w; check the export's order and decimals)"
        )
    return rotation_from_quaternion(q / norm)


def half_turn(board: Board) -> RigidTransform:
    """Board-frame transform taking each corner of a 180-degree symmetric chessboard to its look-alike.

    Corner (c, r) at ((c + 1) s, (r + 1) s) and corner (columns - 1 - c, rows - 1 - r): a turn by
    180 degrees about the board's z axis through the grid's centre.
    """
    s = board.square_mm
    return RigidTransform(np.diag([-1.0, -1.0, 1.0]), [(board.columns + 1) * s, (board.rows + 1) * s, 0.0])


def _check_points(camera: CameraModel, floor: BoardPose) -> dict[str, np.ndarray]:
    """Where the predicted error is judged: the bin floor seen at the image's corners and centre.

    The region of interest is chosen later (step 3) and lies inside the image, and the error of a
    mapped point grows with its distance from where the board was seen, so the image's corners
    bound it.
    """
    w, h = camera.image_size
    pixels = {
        "top-left": (0.0, 0.0),
        "top-right": (w - 1.0, 0.0),
        "bottom-right": (w - 1.0, h - 1.0),
        "bottom-left": (0.0, h - 1.0),
        "centre": ((w - 1) / 2.0, (h - 1) / 2.0),
    }
    return plane_points_camera(camera, floor.camera_from_board, pixels)


@dataclass(frozen=True)
class PosesFile:
    """The robot poses file, read and checked before step 1: a typo in it costs no minutes of fitting."""

    path: Path
    images: Path  # the folder of the images it names
    poses: list[tuple[str, RigidTransform]]  # image name, robot base <- gripper
    capture: RigidTransform | None  # eye-in-hand: the pose the floor image was taken from
    largest_rpy: float | None = None  # the largest |rpy_deg| value in the file; None: only matrices
    quaternions: bool = False  # some pose gives its rotation as quat_xyzw

    def quaternion_order_suspect(self, rms_px: float) -> bool:
        """Quaternions in the file and a residual no good set has: w-first data under quat_xyzw."""
        return self.quaternions and rms_px > RADIANS_HINT_PX

    def angles_look_like_radians(self, rms_px: float) -> bool:
        """Every rpy_deg value within +-2 pi (and a little) and a residual no good set has: the
        robot's angles were exported in radians. Degrees from a real set exceed 2 pi somewhere."""
        return self.largest_rpy is not None and self.largest_rpy <= RADIANS_LIMIT and rms_px > RADIANS_HINT_PX


def read_poses(args: argparse.Namespace) -> PosesFile | None:
    """`--hand-eye-poses`, every value checked and every image named in it present; None without it."""
    if not args.hand_eye_poses:
        return None
    if not args.hand_eye_images:
        raise CommandError("--hand-eye-poses needs --hand-eye-images (the folder of the board images)")
    path, images = Path(args.hand_eye_poses), Path(args.hand_eye_images)
    if not images.is_dir():
        raise CommandError(f"--hand-eye-images {images}: not a folder; expected the folder of the images")
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
        entries = data["poses"]
    except (OSError, ValueError, KeyError, TypeError) as exc:
        raise CommandError(
            f'{path}: expected JSON {{"poses": [{{"image": ..., "matrix": ...}}]}} ({exc})'
        ) from None
    if not isinstance(entries, list):
        raise CommandError(f"{path}: poses = {_shown(entries)}: expected a list of pose objects")
    capture = None
    if args.hand_eye_setup == "eye-in-hand":
        if not isinstance(data.get("capture"), dict):
            raise CommandError(
                f'{path}: eye-in-hand needs "capture": the robot pose (base <- gripper) from which the '
                "camera looks at the bin and took the floor image (in the same forms as each pose)"
            )
        capture = _pose_matrix(data["capture"], f"{path}: capture")
    poses = [_pose_entry(entry, f"{path}: poses[{i}]", images) for i, entry in enumerate(entries)]
    # the entries read above (validated); an eye-to-hand file's "capture" is not used, nor judged
    given = [e for e in [*entries, data["capture"] if capture is not None else None] if isinstance(e, dict)]
    given = [e for e in given if "matrix" not in e]
    rpy = [abs(float(v)) for e in given if "rpy_deg" in e for v in e["rpy_deg"]]
    quaternions = any("quat_xyzw" in e for e in given)
    positions = [abs(float(v)) for e in given if "xyz_mm" in e for v in e["xyz_mm"]]
    if positions and max(positions) < METRES_UNDER_MM:
        raise CommandError(
            f"{path}: every xyz_mm value is under {METRES_UNDER_MM:g} (largest {max(positions):g}): "
            "these look like metres; give them as 'xyz_m', or in millimetres"
        )
    return PosesFile(path, images, poses, capture, max(rpy) if rpy else None, quaternions)


def _pose_entry(entry: object, where: str, images: Path) -> tuple[str, RigidTransform]:
    """One pose: its image (a file in the folder) and its transform."""
    if not isinstance(entry, dict) or "image" not in entry:
        raise CommandError(f"{where}: expected an object with 'image'")
    name = entry["image"]
    if not isinstance(name, str) or not name.strip():
        raise CommandError(f"{where}.image = {_shown(name)}: expected an image file name")
    if not (images / name).is_file():
        raise CommandError(f"{where}.image = {_shown(name)}: {images / name} does not exist")
    return name, _pose_matrix(entry, where)


def step_hand_eye(
    w: Wizard,
    args: argparse.Namespace,
    board: Board,
    camera: CameraModel,
    floor: BoardPose,
    poses: PosesFile | None,
) -> tuple[HandEyeResult, RigidTransform] | None:
    """Hand-eye from the poses file, or None without one; returns the result and robot <- camera."""
    if poses is None:
        return None
    views = []
    for i, (name, base_from_gripper) in enumerate(poses.poses):
        where = f"{poses.path}: poses[{i}]"
        try:
            image = read_image(poses.images / name)
        except StepError as exc:
            raise CommandError(f"{where}: {exc}") from None
        gray = image if image.ndim == 2 else cv2.cvtColor(image, cv2.COLOR_BGR2GRAY)
        det = board.detect(gray, camera.camera_matrix, camera.dist_coeffs)
        if det is None or det.count < 6:
            raise CommandError(f"{where} ({name}): the board was not found; retake this pose")
        views.append(BoardView(name, base_from_gripper, det.object_points, det.image_points))
    try:
        result = calibrate_hand_eye(
            views,
            camera,
            args.hand_eye_setup,
            args.hand_eye_method,
            args.hand_eye_tolerance_mm,
            symmetric_turn=half_turn(board) if board.symmetric else None,
            pose_errors=args.hand_eye_pose_errors,
        )
    except HandEyeError as exc:
        raise CommandError(str(exc)) from None
    points = _check_points(camera, floor)
    if not points:
        raise CommandError("hand-eye: no image corner's ray meets the floor plane; check the floor image")
    result.predict_at(points)
    robot_from_camera = (
        result.robot_from_camera if poses.capture is None else poses.capture.compose(result.robot_from_camera)
    )
    _say(w, result, len(views))
    if poses.angles_look_like_radians(result.rms_px):
        w.say(
            f"  WARNING: every rpy_deg value in {poses.path} lies within +-2 pi (largest "
            f"{poses.largest_rpy:.3f}) and the reprojection is {result.rms_px:.1f} px: the angles look "
            "like radians; rpy_deg takes degrees"
        )
    if poses.quaternion_order_suspect(result.rms_px):
        w.say(
            f"  WARNING: the reprojection is {result.rms_px:.1f} px with the rotations given as quat_xyzw in "
            f"{poses.path}: check that each is x, y, z, w (ROS order), not w, x, y, z"
        )
    return result, robot_from_camera


def _say(w: Wizard, result: HandEyeResult, count: int) -> None:
    w.say(
        f"  hand-eye ({result.method}, {count} poses, {result.setup}): closed form spread "
        f"{result.consistency_rms_mm:.2f} mm; refined on all views: reprojection {result.rms_px:.3f} px, "
        f"camera moved {result.refinement_shift_mm:.2f} mm"
    )
    sx, sy, sz = result.camera_position_sigma_mm
    rx, ry, rz = result.camera_rotation_sigma_deg
    w.say(
        f"  camera position 1-sigma x {sx:.2f}  y {sy:.2f}  z {sz:.2f} mm, rotation 1-sigma "
        f"{rx:.3f} {ry:.3f} {rz:.3f} deg; largest pose rotation {result.max_rotation_deg:.0f} deg"
    )
    corner = np.sqrt(np.clip(np.diag(result.covariance_corner)[3:6], 0.0, None))
    view = np.sqrt(np.clip(np.diag(result.covariance_view)[3:6], 0.0, None))
    est = result.pose_errors
    models = (
        ("if corner errors were independent", "with errors shared within a view, e.g. robot pose errors")
        if est is None
        else ("from the model with the robot's errors", "view by view")
    )
    w.say(
        f"  (position 1-sigma {models[0]}: "
        + " ".join(f"{x:.2f}" for x in corner)
        + f" mm; {models[1]}: "
        + " ".join(f"{x:.2f}" for x in view)
        + " mm; the larger is used)"
    )
    if est is not None:
        w.say(
            f"  robot pose errors estimated from the photos: {est.translation_sigma_mm:.2f} mm and "
            f"{est.rotation_sigma_deg:.3f} deg (1 sigma per axis); with each pose corrected the board "
            f"corners fit to {est.corrected_rms_px:.3f} px"
            + ("" if est.converged else " (the estimate had not settled: read it as a rough figure)")
        )
        largest = sorted(est.corrections, key=est.unlikeliness, reverse=True)[:3]
        w.say(
            "  largest pose corrections (against the spread): "
            + ", ".join(
                f"{n} {est.corrections[n][0]:.2f} mm {est.corrections[n][1]:.2f} deg" for n in largest
            )
        )
    worst = sorted(result.per_view_px.items(), key=lambda kv: -kv[1])[:3]
    w.say("  worst views: " + ", ".join(f"{n} {e:.2f} px" for n, e in worst))
    if result.turned_views:
        w.say(
            f"  symmetric board: {len(result.turned_views)} view(s) numbered from the other end, turned to "
            "agree with the robot's rotations: " + ", ".join(result.turned_views)
        )
    verdict = "PASS" if result.passed else "FAIL"
    w.say(
        f"  predicted error on the bin floor (RMS, worst of the image corners and centre): "
        f"{result.predicted_error_mm:.2f} mm (limit {result.tolerance_mm:g} mm): {verdict}; "
        f"3-sigma bound {result.bound_3sigma_mm:.2f} mm"
    )
    for warning in result.warnings:
        w.say(f"  WARNING: {warning}")
    if not result.passed:
        w.say(
            "  advice: add poses (15-25), tilt the gripper more about two axes, check the robot's pose "
            "format (mm, Rz Ry Rx) and that each image belongs to its pose; retake the worst views"
        )
        if est is None and np.all(view > 3 * corner):
            w.say(
                "  the errors are shared within each view, as robot pose errors are: "
                "--hand-eye-pose-errors estimate corrects each pose and says how large they are"
            )
        elif est is not None:
            w.say(
                f"  the robot's poses are {est.translation_sigma_mm:.2f} mm and {est.rotation_sigma_deg:.3f} "
                "deg off per axis: if that is more than the arm's specified accuracy, calibrate its "
                "kinematics (joint offsets); otherwise add poses"
            )
    elif est is None and np.all(view > 3 * corner):
        w.say(
            "  note: the errors are shared within each view, as robot pose errors are; the prediction "
            "counts them (per-view model). Run again with --hand-eye-pose-errors estimate and compare: "
            "it says how large the arm's errors are, and a camera further from this one than the "
            "tolerance means the arm's kinematics need calibrating"
        )
