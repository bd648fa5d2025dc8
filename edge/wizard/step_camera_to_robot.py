"""Step 2 of the wizard, camera to robot: the board on the bin floor and the robot's touch points.

One floor image gives the board's pose in the camera frame; the technician types (or reads over
Modbus) the robot coordinates of the labelled corners, and a rigid fit gives robot <- camera.
The optional hand-eye run (`step_hand_eye`) gives it from robot poses instead, or cross-checks it.
"""

from __future__ import annotations

import argparse
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np

from binpick_core.errors import CommandError
from edge.camera import CorruptFrame
from edge.geometry import CameraModel, RigidTransform
from edge.wizard.boards import Board
from edge.wizard.capture import CameraCapture
from edge.wizard.prompts import Stop, Wizard, floats, image_file, optional_xyz, write_image
from edge.wizard.robot import (
    BoardPose,
    StepError,
    draw_touch_points,
    fit_camera_to_robot,
    locate_board,
    touch_points_camera,
    touch_points_pixels,
)
from edge.wizard.robot_registers import RobotRegisters
from edge.wizard.step_hand_eye import PosesFile, step_hand_eye


def parse_robot_points(values: list[str], labels: list[str]) -> dict[str, np.ndarray]:
    points = {}
    for item in values:
        label, sep, coords = item.partition("=")
        if not sep:
            raise CommandError(f"--robot-point {item!r}: expected LABEL=X,Y,Z, e.g. A=412.5,-20,35.2")
        if label not in labels:
            raise CommandError(f"--robot-point {item!r}: the board's points are {', '.join(labels)}")
        if label in points:  # a retyped point must not silently replace the first
            raise CommandError(f"--robot-point {item!r}: point {label} is given twice; give each point once")
        try:
            points[label] = floats(coords, 3, f"point {label}")
        except ValueError as exc:
            raise CommandError(f"--robot-point {item!r}: {exc}") from None
    return points


def robot_registers(args: argparse.Namespace) -> RobotRegisters | None:
    if not args.robot_modbus:
        return None
    try:
        return RobotRegisters.parse(
            args.robot_modbus, args.robot_register, args.robot_device_id, args.robot_word_order
        )
    except ValueError as exc:
        raise CommandError(f"--robot-modbus: {exc}") from None


def check_touch_flags(args: argparse.Namespace, board: Board) -> None:
    """The flags of the touched points, checked against the board (before step 1, and in step 2)."""
    # A board that looks the same turned by 180 degrees has no physical corner labels: fine for
    # hand-eye alone (the robot poses settle each view's numbering), not for touched points.
    if board.symmetric and (args.robot_point or not args.hand_eye_poses):
        raise CommandError(f"--board: step 2 {board.orientation_problem()}")
    parse_robot_points(args.robot_point, list(board.touch_points))
    robot_registers(args)


def _touched_point(
    what: str, registers: RobotRegisters | None, w: Wizard
) -> Callable[[str], np.ndarray | None]:
    """Typed x,y,z, or 'read' from the robot's registers (a failed read is asked again)."""
    typed = optional_xyz(what)

    def parse(text: str) -> np.ndarray | None:
        if registers is None or text.strip().lower() != "read":
            return typed(text)
        try:
            xyz = registers.read_xyz()
        except StepError as exc:
            raise ValueError(str(exc)) from None
        w.say(f"  read from the robot: x {xyz[0]:.2f}  y {xyz[1]:.2f}  z {xyz[2]:.2f} mm")
        return xyz

    return parse


def _floor_from_camera(
    w: Wizard, args: argparse.Namespace, capture: CameraCapture
) -> tuple[Path, np.ndarray]:
    """Capture the floor image (on Enter, or after --camera-interval when scripted) and keep it."""
    if w.interactive:
        w.ask(
            f"Lay the board on the bin floor, then Enter = capture from {capture.name}",
            None,
            _parse_enter,
            "--floor-image",
        )
    else:
        time.sleep(args.camera_interval)
    try:
        image = capture.grab()
    except CorruptFrame as exc:
        raise StepError(f"floor image: {exc}") from None
    path = capture.save("floor.png", image)
    w.say(f"  captured {path} (repeat this step with --floor-image {path})")
    return path, image


def _parse_enter(text: str) -> bool:
    if text.strip():
        raise ValueError("press Enter to capture")
    return True


def step_camera_to_robot(
    w: Wizard,
    args: argparse.Namespace,
    board: Board,
    camera: CameraModel,
    report_dir: Path,
    capture: CameraCapture | None = None,
    poses: PosesFile | None = None,
) -> tuple[BoardPose, RigidTransform, dict, dict | None, np.ndarray, tuple[float, float]]:
    # (floor pose, robot <- camera, extrinsics report, hand-eye report, floor image, validation pixel)
    w.step(
        2,
        "camera to robot",
        "Lay the board flat on the bin floor, fully in view, and take one image. Then jog the robot's\n"
        "tool tip onto each labelled board point (see the saved floor image) and enter its robot\n"
        "coordinates (mm).",
    )
    check_touch_flags(args, board)
    while True:
        if capture is not None and args.floor_image is None:
            floor_path, floor_image = _floor_from_camera(w, args, capture)
        else:
            floor_path, floor_image = w.ask(
                "Image of the board on the bin floor", args.floor_image, image_file, "--floor-image"
            )
        if (floor_image.shape[1], floor_image.shape[0]) != camera.image_size:
            raise CommandError(
                f"{floor_path}: image is {floor_image.shape[1]}x{floor_image.shape[0]}, "
                f"the intrinsics are for {camera.image_size[0]}x{camera.image_size[1]}"
            )
        try:
            pose = locate_board(board, floor_image, camera)
            break
        except StepError as exc:
            if capture is None or args.floor_image is not None or not w.interactive:
                raise CommandError(f"{floor_path}: {exc}") from None
            w.say(
                f"  {floor_path.name}: refused: {exc} -> lay the board flat, fully in view, and capture again"
            )
    distance = float(np.linalg.norm(pose.camera_from_board.translation))
    w.say(
        f"  board found: {pose.detection.count} corners, {distance:.0f} mm from the camera, "
        f"reprojection {pose.reprojection_rms_px:.3f} px"
    )
    labels_px = {} if board.symmetric else touch_points_pixels(board, pose, camera)
    centre_px = _validation_point(board, pose, camera)
    marked = draw_touch_points(floor_image, labels_px, {"V": centre_px})
    write_image(report_dir / "floor_points.png", marked)
    if board.symmetric:
        w.say(
            f"  symmetric board: no labelled points (hand-eye gives the transform); validation point V "
            f"drawn in {report_dir / 'floor_points.png'}"
        )
    else:
        w.say(f"  labelled points drawn in {report_dir / 'floor_points.png'}:")
    for label, (u, v) in labels_px.items():
        w.say(f"    {label} at pixel ({u:.0f}, {v:.0f})")
    camera_points = {} if board.symmetric else touch_points_camera(board, pose)
    labels = list(camera_points)
    robot_points = parse_robot_points(args.robot_point, labels)
    solved = step_hand_eye(w, args, board, camera, pose, poses)
    hand_eye, hand_eye_transform = solved if solved is not None else (None, None)
    if w.interactive and not args.robot_point and not board.symmetric:
        registers = robot_registers(args)
        w.say("  For each point enter x,y,z in mm; Enter skips a point (3 needed, 4 recommended).")
        if registers:
            w.say(f"  Or type 'read' to take the robot's position from {registers.where()}.")
        for label in labels:
            parse = _touched_point(f"point {label}", registers, w)
            value = w.ask(f"Robot coordinates of {label}", None, parse, "--robot-point", "skip")
            if value is not None:
                robot_points[label] = value
    if len(robot_points) < 3 and hand_eye is None:
        raise CommandError(
            f"{len(robot_points)} robot point(s) given; at least 3 are needed (4 recommended): "
            f"--robot-point LABEL=X,Y,Z for {', '.join(labels)}"
        )
    if robot_points:
        try:
            fit = fit_camera_to_robot(camera_points, robot_points, args.residual_threshold_mm)
        except StepError as exc:
            raise CommandError(str(exc)) from None
        w.say("  point   residual (mm)")
        for p in fit.points:
            w.say(f"    {p['name']:<5} {p['residual_mm']:8.3f}")
        transform, report, passed = fit.robot_from_camera, fit.report(), fit.passed
        w.say(
            f"  RMS residual {fit.rms_mm:.3f} mm (limit {fit.threshold_mm:g} mm): "
            + ("PASS" if passed else "FAIL")
        )
        for line in fit.advice:
            w.say(f"  advice: {line}")
    else:
        transform, passed = hand_eye_transform, hand_eye.passed
        report = {
            "method": f"hand-eye:{hand_eye.method}",
            "setup": hand_eye.setup,
            "predicted_error_mm": round(hand_eye.predicted_error_mm, 4),  # RMS at the worst check point
            "bound_3sigma_mm": round(hand_eye.bound_3sigma_mm, 4),
            "tolerance_mm": hand_eye.tolerance_mm,
            "camera_position_sigma_mm": [round(float(x), 4) for x in hand_eye.camera_position_sigma_mm],
            "rms_px": round(hand_eye.rms_px, 4),
            "rms_mm": round(hand_eye.rms_mm, 4),  # the refined residuals on the board, in mm
            "passed": passed,
            "points": [],
        }
    if hand_eye is not None and robot_points:
        centre = transform.apply(pose.camera_from_board.translation)
        other = hand_eye_transform.apply(pose.camera_from_board.translation)
        w.say(
            f"  hand-eye and board points differ by {np.linalg.norm(centre - other):.2f} mm "
            "at the board origin"
        )
    if not passed and not w.confirm("Camera to robot failed the check. Continue anyway?", args.accept_failed):
        raise Stop("camera to robot failed: follow the advice above and run the wizard again")
    return pose, transform, report, (None if hand_eye is None else hand_eye.report()), floor_image, centre_px


def _validation_point(board: Board, pose: BoardPose, camera: CameraModel) -> tuple[float, float]:
    """Pixel of the board corner nearest the board's middle: a point not used by the fit."""
    cid = (board.rows // 2) * board.columns + board.columns // 2
    xyz = pose.camera_from_board.apply(board.corner_object_points()[cid].astype(np.float64))
    u, v = camera.project(xyz.reshape(1, 3))[0]
    return float(u), float(v)
