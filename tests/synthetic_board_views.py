"""Render camera views of a calibration board with known intrinsics, distortion and pose.

Each output pixel's ray is undistorted (exactly, iteratively), intersected with the board plane
and the board image is sampled there; rendering at 2x and area-averaging down gives realistic
anti-aliased edges, then blur and noise are added. This is the inverse of what the wizard
measures, so recovering K within 0.5 % is a real test of the whole detection + fit chain.
"""

from __future__ import annotations

import functools

import cv2
import numpy as np

from edge.geometry import CameraModel, RigidTransform
from edge.wizard.boards import Board

SUPERSAMPLE = 2
BOARD_PX_PER_MM = 6.0
MARGIN_MM = 12.0


@functools.lru_cache(maxsize=4)
def _rays(k_bytes: bytes, d_bytes: bytes, width: int, height: int) -> np.ndarray:
    k = np.frombuffer(k_bytes).reshape(3, 3)
    d = np.frombuffer(d_bytes)
    s = SUPERSAMPLE
    ys, xs = np.mgrid[0 : height * s, 0 : width * s].astype(np.float64)
    uv = np.column_stack([(xs.ravel() + 0.5) / s - 0.5, (ys.ravel() + 0.5) / s - 0.5])
    return CameraModel(k, d, (width, height)).pixels_to_rays(uv)


@functools.lru_cache(maxsize=4)
def _board_image(board: Board) -> np.ndarray:
    return board.image(BOARD_PX_PER_MM, MARGIN_MM).astype(np.float32)


def render_view(
    board: Board,
    camera: CameraModel,
    camera_from_board: RigidTransform,
    blur_sigma: float = 0.0,
    noise: float = 0.0,
    seed: int = 0,
    background: int = 110,
) -> np.ndarray:
    """8-bit grayscale camera image of `board` at pose `camera_from_board` (mm)."""
    w, h = camera.image_size
    rays = _rays(camera.camera_matrix.tobytes(), camera.dist_coeffs.tobytes(), w, h)
    r, t = camera_from_board.rotation, camera_from_board.translation
    # board-frame ray: X_b = R^T (lambda * ray - t); choose lambda so that z_b = 0
    rays_b = rays @ r  # (R^T ray) per row
    origin_b = -r.T @ t
    lam = -origin_b[2] / rays_b[:, 2]
    pts = origin_b[None, :2] + lam[:, None] * rays_b[:, :2]
    visible = lam > 0
    map_x = ((pts[:, 0] + MARGIN_MM) * BOARD_PX_PER_MM - 0.5).astype(np.float32)
    map_y = ((pts[:, 1] + MARGIN_MM) * BOARD_PX_PER_MM - 0.5).astype(np.float32)
    map_x[~visible] = -1e6
    s = SUPERSAMPLE
    big = cv2.remap(
        _board_image(board),
        map_x.reshape(h * s, w * s),
        map_y.reshape(h * s, w * s),
        cv2.INTER_LINEAR,
        borderMode=cv2.BORDER_CONSTANT,
        borderValue=float(background),
    )
    img = cv2.resize(big, (w, h), interpolation=cv2.INTER_AREA)
    img = 30.0 + img * (200.0 / 255.0)  # not pure black/white: real prints under real light
    if blur_sigma > 0:
        img = cv2.GaussianBlur(img, (0, 0), blur_sigma)
    if noise > 0:
        img = img + np.random.default_rng(seed).normal(0.0, noise, img.shape)
    return np.clip(np.round(img), 0, 255).astype(np.uint8)


def look_at_pose(
    board: Board,
    camera: CameraModel,
    target_px: tuple[float, float],
    distance_mm: float,
    tilt_deg: tuple[float, float, float],
) -> RigidTransform:
    """camera <- board pose with the board centre on the ray of `target_px`, tilted by Euler angles."""
    rx, ry, rz = np.radians(tilt_deg)
    rot = (
        cv2.Rodrigues(np.array([rx, 0.0, 0.0]))[0]
        @ cv2.Rodrigues(np.array([0.0, ry, 0.0]))[0]
        @ cv2.Rodrigues(np.array([0.0, 0.0, rz]))[0]
    )
    centre_b = np.array(
        [(board.columns + 1) * board.square_mm / 2, (board.rows + 1) * board.square_mm / 2, 0.0]
    )
    ray = camera.pixels_to_rays(np.array([target_px]))[0]
    centre_c = ray / ray[2] * distance_mm
    return RigidTransform(rot, centre_c - rot @ centre_b)


def corners_in_view(board: Board, camera: CameraModel, pose: RigidTransform, margin_px: float = 8.0) -> float:
    """Fraction of the board's corners that project inside the image (with a margin)."""
    pts = camera.project(pose.apply(board.corner_object_points().astype(np.float64)))
    w, h = camera.image_size
    inside = (
        (pts[:, 0] > margin_px)
        & (pts[:, 0] < w - margin_px)
        & (pts[:, 1] > margin_px)
        & (pts[:, 1] < h - margin_px)
    )
    return float(inside.mean())


def calibration_poses(board: Board, camera: CameraModel, count: int, seed: int, allow_partial: bool = False):
    """Varied, well-conditioned poses (tilts up to ~40 degrees, all image regions)."""
    rng = np.random.default_rng(seed)
    w, h = camera.image_size
    poses = []
    while len(poses) < count:
        target = (rng.uniform(0.2, 0.8) * w, rng.uniform(0.2, 0.8) * h)
        tilt = (rng.uniform(-40, 40), rng.uniform(-40, 40), rng.uniform(-30, 30))
        pose = look_at_pose(
            board, camera, target, rng.uniform(0.8, 1.3) * _fill_distance(board, camera), tilt
        )
        frac = corners_in_view(board, camera, pose)
        if frac == 1.0 or (allow_partial and 0.5 <= frac < 1.0 and len(poses) % 3 == 2):
            poses.append(pose)
    return poses


def _fill_distance(board: Board, camera: CameraModel) -> float:
    """Distance at which the board spans about 60 % of the image width."""
    width_mm = (board.columns + 1) * board.square_mm
    return camera.camera_matrix[0, 0] * width_mm / (0.6 * camera.image_size[0])


# ---------------------------------------------------------------- a whole synthetic cell
TEST_CAMERA = CameraModel(
    np.array([[610.0, 0.0, 352.0], [0.0, 612.0, 214.0], [0.0, 0.0, 1.0]]),  # principal point off-centre
    np.array([-0.18, 0.06, 0.0008, -0.0006, -0.01]),
    (640, 480),
)


def robot_from_camera_truth() -> RigidTransform:
    """Camera ~700 mm above a floor at z = 30 mm (robot z up), looking down, slightly tilted and turned."""
    down = np.diag([1.0, -1.0, -1.0])
    yaw = cv2.Rodrigues(np.array([0.0, 0.0, np.radians(-25.0)]))[0]
    tilt = cv2.Rodrigues(np.array([np.radians(6.0), np.radians(-4.0), 0.0]))[0]
    return RigidTransform(yaw @ tilt @ down, np.array([520.0, -140.0, 760.0]))


FLOOR_Z_MM = 30.0


def robot_from_board_truth(board: Board) -> RigidTransform:
    """The board lying face up on the floor, under the camera, turned by 10 degrees."""
    face_up = np.diag([1.0, -1.0, -1.0])  # board z (into the board) points down
    yaw = cv2.Rodrigues(np.array([0.0, 0.0, np.radians(10.0)]))[0]
    rotation = yaw @ face_up
    centre_b = np.array(
        [(board.columns + 1) * board.square_mm / 2, (board.rows + 1) * board.square_mm / 2, 0.0]
    )
    below_camera = np.array([510.0, -150.0, FLOOR_Z_MM])
    return RigidTransform(rotation, below_camera - rotation @ centre_b)


def write_cell_images(board: Board, folder, views: int = 14, seed: int = 3, allow_partial: bool = False):
    """Intrinsics views, plus a blurry one and a duplicate, and the floor image; returns the truth."""
    from pathlib import Path

    folder = Path(folder)
    (folder / "views").mkdir(parents=True, exist_ok=True)
    camera = TEST_CAMERA
    poses = calibration_poses(board, camera, views, seed=seed, allow_partial=allow_partial)
    for i, pose in enumerate(poses):
        cv2.imwrite(str(folder / "views" / f"view{i:02d}.png"), render_view(board, camera, pose, 0.6, 2.0, i))
    cv2.imwrite(
        str(folder / "views" / "view90_blurry.png"), render_view(board, camera, poses[1], 3.0, 2.0, 90)
    )
    cv2.imwrite(
        str(folder / "views" / "view91_again.png"), render_view(board, camera, poses[2], 0.6, 2.0, 91)
    )
    robot_from_camera = robot_from_camera_truth()
    robot_from_board = robot_from_board_truth(board)
    camera_from_board = robot_from_camera.inverse().compose(robot_from_board)
    floor = render_view(board, camera, camera_from_board, 0.6, 2.0, 99)
    cv2.imwrite(str(folder / "floor.png"), floor)
    corners = board.corner_object_points().astype(np.float64)
    robot_points = {label: robot_from_board.apply(corners[cid]) for label, cid in board.touch_points.items()}
    return {
        "camera": camera,
        "robot_from_camera": robot_from_camera,
        "robot_from_board": robot_from_board,
        "robot_points": robot_points,
        "views": folder / "views",
        "floor": folder / "floor.png",
    }
