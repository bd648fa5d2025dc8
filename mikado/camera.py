"""Top-view camera and lights, jittered per scene, and the pinhole model that matches MuJoCo.

Camera frames in scene.json follow OpenCV: x right, y down, z along the optical axis.
MuJoCo cameras look along their -z with +y up, so R_cv = R_mujoco @ diag(1, -1, -1).
MuJoCo's `fovy` is vertical and its pixels square: fx = fy = (H / 2) / tan(fovy / 2), principal
point at the image centre ((W - 1) / 2, (H - 1) / 2 in pixel-centre coordinates).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

import numpy as np


@dataclass(frozen=True)
class CameraParams:
    position_m: tuple[float, float, float]
    quaternion_wxyz: tuple[float, float, float, float]  # MuJoCo camera frame in the world
    fovy_deg: float

    def to_dict(self) -> dict:
        return asdict(self)


@dataclass(frozen=True)
class LightParams:
    position_m: tuple[float, float, float]
    diffuse: tuple[float, float, float]
    specular: float
    cast_shadow: bool

    def to_dict(self) -> dict:
        return asdict(self)


def _quat_from_matrix(r: np.ndarray) -> np.ndarray:
    import mujoco  # local: keeps this module importable without a GL backend decision

    q = np.zeros(4)
    mujoco.mju_mat2Quat(q, np.ascontiguousarray(r, dtype=np.float64).ravel())
    return q


def _look_at(position: np.ndarray, target: np.ndarray, up_hint: np.ndarray) -> np.ndarray:
    """Rotation of a MuJoCo camera at `position` looking at `target` (columns = cam x, y, z)."""
    z = position - target
    z /= np.linalg.norm(z)
    x = np.cross(up_hint, z)
    if np.linalg.norm(x) < 1e-6:
        x = np.array([1.0, 0.0, 0.0])
    x /= np.linalg.norm(x)
    y = np.cross(z, x)
    return np.stack([x, y, z], axis=1)


def sample_camera(
    rng: np.random.Generator, bin_size_m: tuple[float, float], aspect: float, pile_height_m: float = 0.0
) -> CameraParams:
    """A camera above the bin centre, roughly aligned with the bin (as cells are mounted),
    jittered in position, tilt, roll and field of view; it frames the bin floor, sometimes
    cropping its border, sometimes showing the rim."""
    fovy = float(rng.uniform(40.0, 55.0))
    half_x, half_y = bin_size_m[0] / 2, bin_size_m[1] / 2
    margin = float(rng.uniform(0.58, 0.8))
    tan_y = np.tan(np.deg2rad(fovy) / 2)
    yaw = float(rng.integers(0, 4) * np.pi / 2 + rng.uniform(-0.2, 0.2))
    # Rotated bin extents in the image axes decide the height that fits it in view.
    ex = abs(np.cos(yaw)) * half_x + abs(np.sin(yaw)) * half_y
    ey = abs(np.sin(yaw)) * half_x + abs(np.cos(yaw)) * half_y
    height = margin * max(ey / tan_y, ex / (tan_y * aspect)) + pile_height_m
    pos = np.array([rng.normal(0, 0.01), rng.normal(0, 0.01), height])
    target = np.array([rng.normal(0, 0.01), rng.normal(0, 0.01), 0.0])
    up = np.array([-np.sin(yaw), np.cos(yaw), 0.0])
    r = _look_at(pos, target, up)
    return CameraParams(tuple(float(v) for v in pos), tuple(float(v) for v in _quat_from_matrix(r)), fovy)


def sample_lights(rng: np.random.Generator, height_m: float) -> list[LightParams]:
    """1-3 point lights around and above the bin, random intensity and warm/cool tint."""
    lights = []
    for i in range(int(rng.integers(1, 4))):
        ang = rng.uniform(0, 2 * np.pi)
        rad = rng.uniform(0.0, 0.6) * height_m
        pos = (float(rad * np.cos(ang)), float(rad * np.sin(ang)), float(height_m * rng.uniform(0.8, 1.6)))
        intensity = rng.uniform(0.35, 0.8) / (1 + 0.5 * i)
        tint = np.clip(1 + rng.normal(0, 0.08, 3), 0.7, 1.2)
        lights.append(
            LightParams(pos, tuple(float(v) for v in intensity * tint), float(rng.uniform(0.05, 0.4)), i == 0)
        )
    return lights


def intrinsics(fovy_deg: float, width: int, height: int) -> np.ndarray:
    """3x3 K of MuJoCo's pinhole for this image size."""
    f = (height / 2) / np.tan(np.deg2rad(fovy_deg) / 2)
    return np.array([[f, 0, (width - 1) / 2], [0, f, (height - 1) / 2], [0, 0, 1]], dtype=np.float64)


def world_from_camera(position_m: np.ndarray, rotation_mujoco: np.ndarray) -> np.ndarray:
    """4x4 T_world_camera in OpenCV axes from MuJoCo's camera pose."""
    t = np.eye(4)
    t[:3, :3] = np.asarray(rotation_mujoco).reshape(3, 3) @ np.diag([1.0, -1.0, -1.0])
    t[:3, 3] = position_m
    return t


def project(points_world: np.ndarray, k: np.ndarray, t_world_camera: np.ndarray) -> np.ndarray:
    """(N, 2) pixel coordinates (u = column) of world points in front of the camera."""
    r, t = t_world_camera[:3, :3], t_world_camera[:3, 3]
    pc = (np.asarray(points_world) - t) @ r  # world -> camera: R^T (p - t)
    z = np.maximum(pc[:, 2], 1e-6)
    return np.stack([k[0, 0] * pc[:, 0] / z + k[0, 2], k[1, 1] * pc[:, 1] / z + k[1, 2]], axis=1)
