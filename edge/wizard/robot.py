"""Steps "camera to robot", "pick plane" and "validation".

The board lies on the bin floor. Its pose in the camera frame comes from one image (solvePnP);
the technician jogs the robot's tool tip to labelled board corners and types (or the PLC gives)
the robot coordinates. A least-squares rigid fit between the same corners in the camera frame
and in the robot frame gives robot <- camera; what is left over (residual per point) is the
honest measure of the whole chain: intrinsics, board pose, tool-centre point and typing.

Hand-eye calibration (robot poses instead of touched points) is in `edge.wizard.hand_eye`.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import cv2
import numpy as np

from edge.geometry import CameraModel, PixelToRobot, Plane, RigidTransform, fit_rigid_transform
from edge.wizard.boards import Board, Detection


class StepError(ValueError):
    """A step cannot go on; the message says what went wrong and what to do."""


@dataclass
class BoardPose:
    camera_from_board: RigidTransform
    detection: Detection
    reprojection_rms_px: float


def locate_board(board: Board, image: np.ndarray, camera: CameraModel) -> BoardPose:
    """Pose of the board in the camera frame from one image (IPPE for planar targets, then LM)."""
    gray = image if image.ndim == 2 else cv2.cvtColor(image, cv2.COLOR_BGR2GRAY)
    det = board.detect(gray, camera.camera_matrix, camera.dist_coeffs)
    if det is None or det.count < 6:
        raise StepError(
            "the board was not found on the bin floor: put the whole board in view, flat, without glare"
        )
    obj = det.object_points.astype(np.float64).reshape(-1, 1, 3)
    img = det.image_points.astype(np.float64).reshape(-1, 1, 2)
    ok, rvec, tvec = cv2.solvePnP(obj, img, camera.camera_matrix, camera.dist_coeffs, flags=cv2.SOLVEPNP_IPPE)
    if not ok:
        raise StepError("solvePnP found no board pose: check the intrinsics and the board file")
    rvec, tvec = cv2.solvePnPRefineLM(obj, img, camera.camera_matrix, camera.dist_coeffs, rvec, tvec)
    projected, _ = cv2.projectPoints(obj, rvec, tvec, camera.camera_matrix, camera.dist_coeffs)
    rms = float(np.sqrt(np.mean(np.sum((projected - img) ** 2, axis=2))))
    return BoardPose(RigidTransform.from_rvec_tvec(rvec, tvec), det, rms)


def touch_points_camera(board: Board, pose: BoardPose) -> dict[str, np.ndarray]:
    """Camera-frame position (mm) of every labelled touch point of the board."""
    corners = board.corner_object_points().astype(np.float64)
    return {label: pose.camera_from_board.apply(corners[cid]) for label, cid in board.touch_points.items()}


def touch_points_pixels(board: Board, pose: BoardPose, camera: CameraModel) -> dict[str, tuple[float, float]]:
    pts = touch_points_camera(board, pose)
    uv = camera.project(np.array(list(pts.values())))
    return {label: (float(u), float(v)) for label, (u, v) in zip(pts, uv, strict=True)}


def draw_touch_points(
    image: np.ndarray,
    labels_px: dict[str, tuple[float, float]],
    extra: dict[str, tuple[float, float]] | None = None,
) -> np.ndarray:
    """The floor image with each touch point ringed and labelled, for the technician to follow."""
    canvas = image.copy() if image.ndim == 3 else cv2.cvtColor(image, cv2.COLOR_GRAY2BGR)
    marks = dict(labels_px)
    if extra:
        marks.update(extra)
    scale = max(canvas.shape[:2]) / 640.0
    for label, (u, v) in marks.items():
        centre = (int(round(u)), int(round(v)))
        cv2.circle(canvas, centre, int(10 * scale), (0, 0, 255), max(1, int(2 * scale)))
        cv2.putText(
            canvas,
            label,
            (centre[0] + int(12 * scale), centre[1] - int(12 * scale)),
            cv2.FONT_HERSHEY_SIMPLEX,
            0.8 * scale,
            (0, 0, 255),
            max(1, int(2 * scale)),
        )
    return canvas


@dataclass
class RobotFit:
    robot_from_camera: RigidTransform
    points: list[dict]
    rms_mm: float
    max_mm: float
    threshold_mm: float
    advice: list[str] = field(default_factory=list)

    @property
    def passed(self) -> bool:
        return self.rms_mm <= self.threshold_mm

    def report(self) -> dict:
        return {
            "method": "board-points",
            "rms_mm": round(self.rms_mm, 4),
            "max_mm": round(self.max_mm, 4),
            "threshold_mm": self.threshold_mm,
            "passed": self.passed,
            "points": self.points,
        }


def fit_camera_to_robot(
    camera_points: dict[str, np.ndarray], robot_points: dict[str, np.ndarray], threshold_mm: float = 2.0
) -> RobotFit:
    """Rigid least-squares fit robot <- camera over the labelled points both sides know."""
    labels = [k for k in camera_points if k in robot_points]
    missing = [k for k in robot_points if k not in camera_points]
    if missing:
        raise StepError(
            f"unknown board point(s) {', '.join(missing)}: the board has {', '.join(camera_points)}"
        )
    if len(labels) < 3:
        raise StepError(f"{len(labels)} robot point(s) given; at least 3 are needed (4 recommended)")
    cam = np.array([camera_points[k] for k in labels])
    rob = np.array([robot_points[k] for k in labels], dtype=np.float64)
    transform = fit_rigid_transform(cam, rob)
    fitted = transform.apply(cam)
    residuals = np.linalg.norm(fitted - rob, axis=1)
    points = [
        {
            "name": k,
            "robot_mm": [round(float(x), 4) for x in rob[i]],
            "fitted_mm": [round(float(x), 4) for x in fitted[i]],
            "residual_mm": round(float(residuals[i]), 4),
        }
        for i, k in enumerate(labels)
    ]
    fit = RobotFit(
        transform, points, float(np.sqrt(np.mean(residuals**2))), float(residuals.max()), threshold_mm
    )
    # Distances between points do not depend on the transform: a mismatch there is a typing
    # error, a wrong square size or a wrong tool-centre point, not a calibration problem.
    scale = np.linalg.norm(rob[1:] - rob[0], axis=1).sum() / max(
        np.linalg.norm(cam[1:] - cam[0], axis=1).sum(), 1e-9
    )
    if not fit.passed:
        worst = labels[int(np.argmax(residuals))]
        fit.advice.append(f"point {worst} is off by {residuals.max():.1f} mm: touch it again and retype it")
        fit.advice.append("check the points were touched in the labelled order (see the floor image)")
    if abs(scale - 1.0) > 0.005:
        fit.advice.append(
            f"robot distances are {100 * (scale - 1):+.1f}% of the board's: check square_mm in the board "
            "file and the robot's tool-centre point"
        )
    if len(labels) == 3:
        fit.advice.append("only 3 points: a wrong point cannot be told from a right one; 4 are recommended")
    return fit


def board_plane_in_robot(pose: BoardPose, robot_from_camera: RigidTransform) -> Plane:
    """The board's surface (on the bin floor) as a robot-frame plane."""
    board_to_robot = robot_from_camera.compose(pose.camera_from_board)
    normal = board_to_robot.rotation @ np.array([0.0, 0.0, 1.0])
    plane = Plane.from_point_normal(board_to_robot.translation, normal)
    return plane.facing(robot_from_camera.translation)


def validation_record(floor: PixelToRobot, pixel: tuple[float, float], touched_mm: np.ndarray) -> dict:
    """Predicted robot point of an image point on the floor vs. where the technician touched it."""
    predicted = floor.pixel_to_robot(*pixel)
    touched = np.asarray(touched_mm, np.float64).reshape(3)
    return {
        "pixel": [round(float(pixel[0]), 3), round(float(pixel[1]), 3)],
        "predicted_mm": [round(float(x), 4) for x in predicted],
        "touched_mm": [round(float(x), 4) for x in touched],
        "error_mm": round(float(np.linalg.norm(predicted - touched)), 4),
    }
