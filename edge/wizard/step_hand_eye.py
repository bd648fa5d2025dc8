"""Optional part of step 2, hand-eye: robot poses with the board held by the gripper.

`--hand-eye-poses poses.json --hand-eye-images DIR`: each pose's image gives the board in the
camera frame, the pose file the gripper in the base frame; `hand_eye_eye_to_hand` solves for
robot <- camera.
"""

from __future__ import annotations

import json
from pathlib import Path

import cv2
import numpy as np

from edge.cli import CommandError
from edge.geometry import CameraModel, RigidTransform
from edge.wizard.boards import Board
from edge.wizard.prompts import Wizard, read_image
from edge.wizard.robot import StepError, hand_eye_eye_to_hand, locate_board


def _pose_matrix(entry: dict, where: str) -> RigidTransform:
    if "matrix" in entry:
        m = np.asarray(entry["matrix"], dtype=np.float64)
        if m.shape != (4, 4):
            raise CommandError(f"{where}.matrix: expected a 4x4 matrix (robot base <- gripper, mm)")
        return RigidTransform.from_matrix(m)
    if "xyz_mm" in entry and "rpy_deg" in entry:
        roll, pitch, yaw = np.radians(np.asarray(entry["rpy_deg"], dtype=np.float64))
        rz = cv2.Rodrigues(np.array([0.0, 0.0, yaw]))[0]
        ry = cv2.Rodrigues(np.array([0.0, pitch, 0.0]))[0]
        rx = cv2.Rodrigues(np.array([roll, 0.0, 0.0]))[0]
        return RigidTransform(rz @ ry @ rx, entry["xyz_mm"])
    raise CommandError(
        f"{where}: give 'matrix' (4x4) or 'xyz_mm' and 'rpy_deg' (R = Rz(yaw) Ry(pitch) Rx(roll))"
    )


def step_hand_eye(w: Wizard, args, board: Board, camera: CameraModel):
    if not args.hand_eye_poses:
        return None
    if not args.hand_eye_images:
        raise CommandError("--hand-eye-poses needs --hand-eye-images (the folder of the board images)")
    path = Path(args.hand_eye_poses)
    try:
        entries = json.loads(path.read_text(encoding="utf-8"))["poses"]
    except (OSError, ValueError, KeyError, TypeError) as exc:
        raise CommandError(
            f'{path}: expected JSON {{"poses": [{{"image": ..., "matrix": ...}}]}} ({exc})'
        ) from None
    robot, boards = [], []
    for i, entry in enumerate(entries):
        where = f"{path}: poses[{i}]"
        if not isinstance(entry, dict) or "image" not in entry:
            raise CommandError(f"{where}: expected an object with 'image'")
        try:
            image = read_image(Path(args.hand_eye_images) / entry["image"])
            boards.append(locate_board(board, image, camera).camera_from_board)
        except StepError as exc:
            raise CommandError(f"{where} ({entry['image']}): {exc}") from None
        robot.append(_pose_matrix(entry, where))
    try:
        result = hand_eye_eye_to_hand(robot, boards, args.hand_eye_method)
    except StepError as exc:
        raise CommandError(str(exc)) from None
    w.say(
        f"  hand-eye ({result.method}, {len(robot)} poses): board spread in the gripper "
        f"{result.consistency_rms_mm:.2f} mm, largest rotation {result.max_rotation_deg:.0f} deg"
    )
    for warning in result.warnings:
        w.say(f"  WARNING: {warning}")
    return result
