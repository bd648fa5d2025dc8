"""The cell's calibration file: versioned JSON, validated on read, written atomically.

The wizard (`binpick calibrate`) writes it, the appliance reads it on start. JSON rather than
YAML because the appliance already has a JSON parser and no YAML one, and a technician is not
expected to hand-edit this file. Layout (format "binpick.calibration", version 1):

    {"format": "binpick.calibration", "version": 1, "cell": "cell-a",
     "created": "2026-11-26T04:00:00+00:00", "wizard_version": "0.1.0",
     "image_size": [W, H],
     "intrinsics": {"camera_matrix": 3x3, "dist_coeffs": [k1, k2, p1, p2, k3, ...],
                    "rms_px": r, "per_view_px": [...], "threshold_px": 0.5, "passed": true, ...},
     "camera_to_robot": {"matrix": 4x4 (robot <- camera, mm), "rms_mm": r, "threshold_mm": 2.0,
                         "passed": true, "points": [...], "method": "board-points", ...},
     "plane": {"normal": [nx, ny, nz], "offset_mm": d, "source": "board"},   # n.X = d, robot frame
     "pick_height_offset_mm": h,                   # pick plane = bin-floor plane raised by h
     "roi_polygon": [[u, v], ...] | null,          # pixels; null = whole image
     "board": {...board definition...},
     "validation": [{"pixel": [u, v], "predicted_mm": [...], "touched_mm": [...], "error_mm": e}],
     "hand_eye": {...} | absent}

A write never leaves a half file behind: temp file in the same folder, fsync, the previous file
hard-linked to the next numbered backup (`<name>.bak<N>`), atomic rename, fsync of the folder.
"""

from __future__ import annotations

import contextlib
import json
import math
import os
import re
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from edge.geometry import CameraModel, GeometryError, PixelToRobot, Plane, RigidTransform

FORMAT = "binpick.calibration"
VERSION = 1
_DIST_LENGTHS = (4, 5, 8, 12, 14)


class CalibrationError(ValueError):
    """A calibration file that cannot be used; the message names file, field, value, expectation."""

    def __init__(self, path: str | os.PathLike | None, field_name: str, value: Any, expected: str):
        self.path = None if path is None else str(path)
        self.field = field_name
        self.value = value
        self.expected = expected
        shown = repr(value)
        if len(shown) > 120:
            shown = shown[:117] + "..."
        where = f"{self.path}: " if self.path else ""
        super().__init__(f"{where}field '{field_name}' is {shown}; expected {expected}")


@dataclass
class Calibration:
    """Everything the appliance needs to turn a grasp pixel into robot millimetres."""

    cell: str
    image_size: tuple[int, int]
    camera_matrix: np.ndarray
    dist_coeffs: np.ndarray
    robot_from_camera: np.ndarray  # 4x4
    plane_normal: np.ndarray
    plane_offset_mm: float
    pick_height_offset_mm: float = 0.0
    roi_polygon: np.ndarray | None = None
    intrinsics_report: dict = field(default_factory=dict)
    extrinsics_report: dict = field(default_factory=dict)
    plane_source: str = "board"
    board: dict = field(default_factory=dict)
    validation: list = field(default_factory=list)
    hand_eye: dict | None = None
    created: str = ""
    wizard_version: str = ""

    @property
    def geometry(self) -> PixelToRobot:
        """The shared pixel <-> robot mapping on the pick plane (floor raised by the pick offset).

        Built on each access (microseconds) so that it can never be stale after a field changes.
        """
        camera = CameraModel(self.camera_matrix, self.dist_coeffs, self.image_size)
        transform = RigidTransform.from_matrix(self.robot_from_camera)
        floor = Plane(self.plane_normal, self.plane_offset_mm).facing(transform.translation)
        return PixelToRobot(camera, transform, floor.shifted(self.pick_height_offset_mm))

    def pixel_to_robot(self, u: float, v: float, height_mm: float = 0.0) -> np.ndarray:
        """Robot-frame point (mm) of pixel (u, v) on the pick plane, raised by `height_mm`."""
        return self.geometry.pixel_to_robot(u, v, height_mm)

    def robot_to_pixel(self, xyz_mm: np.ndarray) -> tuple[float, float]:
        return self.geometry.robot_to_pixel(xyz_mm)

    def mm_per_pixel_at(self, u: float, v: float) -> float:
        return self.geometry.mm_per_pixel_at(u, v)

    @property
    def passed(self) -> bool:
        """Every measured step met its threshold when the wizard wrote the file (touch tests included)."""
        touches_ok = all(record.get("passed", True) for record in self.validation if isinstance(record, dict))
        return (
            bool(self.intrinsics_report.get("passed"))
            and bool(self.extrinsics_report.get("passed"))
            and touches_ok
        )

    def to_dict(self) -> dict:
        intrinsics = dict(self.intrinsics_report)
        intrinsics.update(camera_matrix=_tolist(self.camera_matrix), dist_coeffs=_tolist(self.dist_coeffs))
        extrinsics = dict(self.extrinsics_report)
        extrinsics["matrix"] = _tolist(self.robot_from_camera)
        data = {
            "format": FORMAT,
            "version": VERSION,
            "cell": self.cell,
            "created": self.created,
            "wizard_version": self.wizard_version,
            "image_size": [int(self.image_size[0]), int(self.image_size[1])],
            "intrinsics": intrinsics,
            "camera_to_robot": extrinsics,
            "plane": {
                "normal": _tolist(self.plane_normal),
                "offset_mm": float(self.plane_offset_mm),
                "source": self.plane_source,
            },
            "pick_height_offset_mm": float(self.pick_height_offset_mm),
            "roi_polygon": None if self.roi_polygon is None else _tolist(self.roi_polygon),
            "board": self.board,
            "validation": self.validation,
        }
        if self.hand_eye is not None:
            data["hand_eye"] = self.hand_eye
        return _tolist(data)


def _tolist(value: Any) -> Any:
    """JSON-ready copy: arrays to lists, numpy scalars to Python numbers."""
    if isinstance(value, np.ndarray):
        return value.tolist()
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, dict):
        return {str(k): _tolist(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_tolist(v) for v in value]
    return value


class _Reader:
    """Field access that turns every problem into a CalibrationError naming the field."""

    def __init__(self, data: Any, path: str | None):
        self.data = data
        self.path = path

    def fail(self, name: str, value: Any, expected: str) -> CalibrationError:
        return CalibrationError(self.path, name, value, expected)

    def get(self, name: str, expected: str = "present") -> Any:
        node = self.data
        for part in name.split("."):
            if not isinstance(node, dict) or part not in node:
                raise self.fail(name, "<missing>", expected)
            node = node[part]
        return node

    def number(self, name: str, positive: bool = False) -> float:
        value = self.get(name, "a number")
        if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
            raise self.fail(name, value, "a finite number")
        if positive and value <= 0:
            raise self.fail(name, value, "a number > 0")
        return float(value)

    def array(self, name: str, shape: tuple[int | None, ...], value: Any = None) -> np.ndarray:
        raw = self.get(name, f"an array of shape {shape}") if value is None else value
        text = "x".join("N" if s is None else str(s) for s in shape)
        try:
            arr = np.asarray(raw, dtype=np.float64)
        except (TypeError, ValueError):
            raise self.fail(name, raw, f"a {text} array of numbers") from None
        if arr.ndim != len(shape) or any(
            s is not None and s != n for s, n in zip(shape, arr.shape, strict=False)
        ):
            raise self.fail(name, raw, f"a {text} array of numbers")
        if not np.all(np.isfinite(arr)):
            raise self.fail(name, raw, "finite numbers only")
        return arr

    def dict(self, name: str) -> dict:
        value = self.get(name, "an object")
        if not isinstance(value, dict):
            raise self.fail(name, value, "an object ({...})")
        return value


def calibration_from_dict(data: Any, path: str | os.PathLike | None = None) -> Calibration:
    """Validate a parsed file and build the Calibration; refuse with the first bad field."""
    r = _Reader(data, None if path is None else str(path))
    if not isinstance(data, dict):
        raise r.fail("<root>", type(data).__name__, "a JSON object")
    if r.get("format", f"'{FORMAT}'") != FORMAT:
        raise r.fail("format", data["format"], f"'{FORMAT}'")
    version = r.get("version", f"{VERSION}")
    if version != VERSION:
        raise r.fail("version", version, f"{VERSION} (this binpick reads calibration version {VERSION} only)")
    cell = r.get("cell", "a non-empty string")
    if not isinstance(cell, str) or not cell:
        raise r.fail("cell", cell, "a non-empty string")
    for name in ("created", "wizard_version"):
        if not isinstance(r.get(name, "a string"), str):
            raise r.fail(name, data[name], "a string")

    size = r.get("image_size", "[width, height]")
    if (
        not isinstance(size, list)
        or len(size) != 2
        or not all(isinstance(s, int) and not isinstance(s, bool) and s > 0 for s in size)
    ):
        raise r.fail("image_size", size, "[width, height] as two positive integers")
    width, height = size

    r.dict("intrinsics")
    k = r.array("intrinsics.camera_matrix", (3, 3))
    if k[0, 0] <= 0 or k[1, 1] <= 0 or k[0, 1] != 0 or k[1, 0] != 0 or np.any(k[2] != [0, 0, 1]):
        raise r.fail(
            "intrinsics.camera_matrix", k.tolist(), "[[fx, 0, cx], [0, fy, cy], [0, 0, 1]] with fx, fy > 0"
        )
    if not (-width <= k[0, 2] <= 2 * width and -height <= k[1, 2] <= 2 * height):
        raise r.fail(
            "intrinsics.camera_matrix", k.tolist(), f"a principal point near the {width}x{height} image"
        )
    dist = r.array("intrinsics.dist_coeffs", (None,))
    if len(dist) not in _DIST_LENGTHS:
        raise r.fail(
            "intrinsics.dist_coeffs", dist.tolist(), f"{', '.join(map(str, _DIST_LENGTHS))} coefficients"
        )
    r.number("intrinsics.rms_px")

    r.dict("camera_to_robot")
    t = r.array("camera_to_robot.matrix", (4, 4))
    rot = t[:3, :3]
    if (
        np.abs(rot.T @ rot - np.eye(3)).max() > 1e-6
        or np.linalg.det(rot) < 0
        or np.abs(t[3] - [0, 0, 0, 1]).max() > 0
    ):
        raise r.fail(
            "camera_to_robot.matrix",
            t.tolist(),
            "a rigid 4x4 transform (orthonormal rotation, last row 0 0 0 1)",
        )
    r.number("camera_to_robot.rms_mm")

    r.dict("plane")
    normal = r.array("plane.normal", (3,))
    if abs(np.linalg.norm(normal) - 1.0) > 1e-6:
        raise r.fail("plane.normal", normal.tolist(), "a unit vector")
    offset = r.number("plane.offset_mm")
    pick_offset = r.number("pick_height_offset_mm")

    roi_raw = r.get("roi_polygon", "null or a list of [u, v] pixels")
    roi = None
    if roi_raw is not None:
        roi = r.array("roi_polygon", (None, 2))
        if len(roi) < 3:
            raise r.fail("roi_polygon", roi_raw, "at least 3 [u, v] vertices")
    board = r.get("board", "the board definition object")
    if not isinstance(board, dict):
        raise r.fail("board", board, "the board definition object")
    validation = r.get("validation", "a list")
    if not isinstance(validation, list):
        raise r.fail("validation", validation, "a list (empty when no touch test was done)")
    hand_eye = data.get("hand_eye")
    if hand_eye is not None and not isinstance(hand_eye, dict):
        raise r.fail("hand_eye", hand_eye, "an object or absent")

    intrinsics = {k_: v for k_, v in data["intrinsics"].items() if k_ not in ("camera_matrix", "dist_coeffs")}
    extrinsics = {k_: v for k_, v in data["camera_to_robot"].items() if k_ != "matrix"}
    cal = Calibration(
        cell=cell,
        image_size=(width, height),
        camera_matrix=k,
        dist_coeffs=dist,
        robot_from_camera=t,
        plane_normal=normal,
        plane_offset_mm=offset,
        pick_height_offset_mm=pick_offset,
        roi_polygon=roi,
        intrinsics_report=intrinsics,
        extrinsics_report=extrinsics,
        plane_source=str(data["plane"].get("source", "")),
        board=board,
        validation=validation,
        hand_eye=hand_eye,
        created=data["created"],
        wizard_version=data["wizard_version"],
    )
    try:
        cal.geometry.pixel_to_robot(width / 2.0, height / 2.0)
    except GeometryError as exc:
        raise r.fail(
            "plane", data["plane"], f"a plane the image centre's ray meets in front of the camera ({exc})"
        ) from None
    return cal


def load_calibration(path: str | os.PathLike) -> Calibration:
    """Read and validate a calibration file; any problem is a CalibrationError naming the field."""
    p = Path(path)
    try:
        text = p.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise CalibrationError(
            p, "<file>", "<missing>", "an existing calibration file (run `binpick calibrate`)"
        ) from None
    except (OSError, UnicodeDecodeError) as exc:
        raise CalibrationError(p, "<file>", str(exc), "a readable UTF-8 JSON file") from None
    try:
        data = json.loads(text)
    except json.JSONDecodeError as exc:
        raise CalibrationError(
            p, "<file>", f"invalid JSON at line {exc.lineno} column {exc.colno}", "a complete JSON document"
        ) from None
    return calibration_from_dict(data, p)


def backup_paths(path: str | os.PathLike) -> list[Path]:
    """Existing numbered backups of `path`, oldest first."""
    p = Path(path)
    pattern = re.compile(re.escape(p.name) + r"\.bak(\d+)$")
    found = []
    if p.parent.is_dir():
        for entry in p.parent.iterdir():
            m = pattern.match(entry.name)
            if m:
                found.append((int(m.group(1)), entry))
    return [e for _, e in sorted(found)]


def save_calibration(cal: Calibration, path: str | os.PathLike) -> Path | None:
    """Validate, then write atomically; returns the backup the previous file was kept as (or None).

    The previous file is hard-linked to its backup name before the rename, so at every instant
    `path` holds either the complete old file or the complete new one.
    """
    p = Path(path)
    data = cal.to_dict()
    calibration_from_dict(json.loads(json.dumps(data)), p)  # refuse to write what we would refuse to read
    text = json.dumps(data, indent=2) + "\n"
    p.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp_name = tempfile.mkstemp(prefix=f".{p.name}.", suffix=".tmp", dir=p.parent)
    backup = None
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as handle:
            handle.write(text)
            handle.flush()
            os.fsync(handle.fileno())
        if p.exists():
            existing = backup_paths(p)
            number = int(existing[-1].name.rsplit(".bak", 1)[1]) + 1 if existing else 1
            backup = p.with_name(f"{p.name}.bak{number}")
            try:
                os.link(p, backup)
            except OSError:  # file systems without hard links (FAT on a USB stick)
                import shutil

                shutil.copy2(p, backup)
        os.replace(tmp_name, p)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp_name)
        raise
    _fsync_dir(p.parent)
    return backup


def _fsync_dir(folder: Path) -> None:
    """Make the rename itself durable (POSIX); a no-op where folders cannot be opened."""
    try:
        fd = os.open(folder, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)
