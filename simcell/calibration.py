"""The cell's calibration, derived exactly from the simulated camera and written as a real file.

The appliance reads it through `edge.calibration_file` like any cell's, so the loop exercises
the same pixel -> robot path (intrinsics, camera -> robot transform, pick plane, ROI) as a real
cell. The robot frame is deliberately not the simulator's: a base 550 mm beside the bin,
rotated 90 degrees, millimetres, so a frame mix-up cannot pass unnoticed.
"""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np

from edge.calibration_file import Calibration, save_calibration
from mikado.camera import project
from simcell.cell import Cell

ROBOT_FROM_WORLD = np.array(
    [
        [0.0, -1.0, 0.0, 550.0],
        [1.0, 0.0, 0.0, 40.0],
        [0.0, 0.0, 1.0, -320.0],
        [0.0, 0.0, 0.0, 1.0],
    ]
)  # millimetres; world points in metres are scaled by 1000 first
WORLD_FROM_ROBOT = np.linalg.inv(ROBOT_FROM_WORLD)


def world_to_robot(p_world_m: np.ndarray) -> np.ndarray:
    return ROBOT_FROM_WORLD[:3, :3] @ (np.asarray(p_world_m, float) * 1000.0) + ROBOT_FROM_WORLD[:3, 3]


def robot_to_world(xyz_mm: np.ndarray) -> np.ndarray:
    return (WORLD_FROM_ROBOT[:3, :3] @ np.asarray(xyz_mm, float) + WORLD_FROM_ROBOT[:3, 3]) / 1000.0


def bin_floor_corners(cell: Cell) -> np.ndarray:
    """The bin's inner floor corners in the image (pixels), where they are: outside the frame
    where the camera sees only part of the bin (the Mikado camera frames 58-80 % of it)."""
    bx, by = cell.bin_size_m
    corners = np.array(
        [[-bx / 2, -by / 2, 0], [bx / 2, -by / 2, 0], [bx / 2, by / 2, 0], [-bx / 2, by / 2, 0]]
    )
    return project(corners, cell.camera.k, cell.camera.t_world_camera)


def bin_roi(cell: Cell) -> np.ndarray:
    """The bin's inner floor as an image polygon (clipped to the image), pixels."""
    uv = bin_floor_corners(cell).astype(np.float32)
    w, h = cell.camera.width, cell.camera.height
    image = np.array([[0, 0], [w - 1, 0], [w - 1, h - 1], [0, h - 1]], np.float32)
    area, inside = cv2.intersectConvexConvex(uv, image)
    if area <= 0 or inside is None:
        raise ValueError(f"the bin floor of pile {cell.seed} is not in the camera's view")
    return inside.reshape(-1, 2).astype(np.float64)


def calibration_offset_mm(seed: int, error_mm: float) -> np.ndarray:
    """How far off a pile's commissioned calibration puts every point of the pick plane: `error_mm`
    along the bin floor, in a direction drawn from the pile's seed (a cell's calibration is off in
    one direction for all its picks, not a new one per pick). Robot frame, millimetres.

    A translation parallel to the floor moves every point of the pick plane by the same amount,
    so `error_mm` is the error at the pick plane that the calibration wizard predicts and judges
    against `--hand-eye-tolerance-mm`: the cell measures what such an error costs the picks."""
    if error_mm == 0.0:
        return np.zeros(3)
    angle = np.random.default_rng([0xCA11, int(seed)]).uniform(0.0, 2.0 * np.pi)
    along_floor = ROBOT_FROM_WORLD[:3, :3] @ np.array([np.cos(angle), np.sin(angle), 0.0])
    return float(error_mm) * along_floor


def synthetic_calibration(cell: Cell, error_mm: float = 0.0) -> Calibration:
    """The pile's exact calibration, or one whose camera -> robot transform is off by `error_mm`
    at the pick plane (`calibration_offset_mm`); the image side (intrinsics, ROI) stays exact, as
    a hand-eye error leaves it."""
    scale = np.diag([1000.0, 1000.0, 1000.0, 1.0])
    robot_from_camera = ROBOT_FROM_WORLD @ scale @ cell.camera.t_world_camera @ np.linalg.inv(scale)
    offset = calibration_offset_mm(cell.seed, error_mm)
    robot_from_camera[:3, 3] += offset
    normal = ROBOT_FROM_WORLD[:3, :3] @ np.array([0.0, 0.0, 1.0])
    origin = world_to_robot(np.zeros(3)) + offset
    exact = {"passed": True, "method": "simulated camera (exact)", "rms_px": 0.0, "threshold_px": 0.5}
    extrinsics = "simulated camera (exact)"
    if error_mm:
        extrinsics = f"simulated camera, off by {error_mm:g} mm"
    return Calibration(
        cell=f"simcell-{cell.seed}",
        image_size=(cell.camera.width, cell.camera.height),
        camera_matrix=cell.camera.k.copy(),
        dist_coeffs=np.zeros(5),
        robot_from_camera=robot_from_camera,
        plane_normal=normal,
        plane_offset_mm=float(normal @ origin),
        roi_polygon=bin_roi(cell),
        intrinsics_report=exact,
        extrinsics_report={
            "passed": True,
            "method": extrinsics,
            "rms_mm": 0.0,
            "threshold_mm": 2.0,
        },
        plane_source="simulated bin floor",
    )


def write_calibration(cell: Cell, path: str | Path) -> Path:
    """Write (atomically, via edge.calibration_file) and return the path; off by the cell's
    `calibration_error_mm` (`simcell run --calibration-error-mm`).

    Each pile has its own jittered camera; the previous pile's calibration is removed first so
    the calibration writer does not keep one backup per pile (the appliance only reads it
    during a cycle, and the loop never writes during one).
    """
    path = Path(path)
    path.unlink(missing_ok=True)
    save_calibration(synthetic_calibration(cell, cell.calibration_error_mm), path)
    return path
