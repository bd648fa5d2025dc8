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
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from edge.atomic_file import create_temp_beside, fsync_dir, keep_backup
from edge.geometry import CameraModel, GeometryError, PixelToRobot, Plane, RigidTransform

FORMAT = "binpick.calibration"
VERSION = 1
_DIST_LENGTHS = (4, 5, 8, 12, 14)
# Focal lengths as a multiple of the image's longer side: 0.05 is a fisheye's ~170 degrees, 100 a
# telephoto's ~0.6 degrees. Outside, the file is corrupt, not a lens: at fx = 1e308 every pixel
# maps to one point (extents 0 mm) and drawing a projected point overflows.
_FOCAL_RANGE = (0.05, 100.0)
_DIST_LIMIT = 1e3  # |coefficient|; fitted lenses stay far below (rational models reach ~100)
_ROUND_TRIP_PX = 0.5  # pixel -> robot -> pixel over a grid of the image comes back this close


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


# A cell's name, as `binpick calibrate --cell` takes it and `[calibration] cell` names it (it is
# also the file's name in calibration/): letters, digits, '-', '_', '.'.
CELL_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]{0,63}")
CELL_NAME_HINT = "use letters, digits, '-', '_' or '.' (e.g. cell-a)"


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
        return not self.failed_checks()

    def failed_checks(self) -> list[str]:
        """One line per check that failed when the wizard wrote the file, with the measured value
        against its limit; empty when every check passed. A file written with `--accept-failed` is
        used all the same (the technician accepted it knowingly): these lines are what the
        appliance's WARNING, status page and `--check-config` say about it, so that nobody takes
        its millimetres for checked ones."""
        failed = []
        intrinsics = self.intrinsics_report
        if not intrinsics.get("passed"):
            failed.append(
                f"intrinsics: RMS reprojection error {_shown(intrinsics.get('rms_px'))} px "
                f"(limit {_shown(intrinsics.get('threshold_px'))} px)"
            )
        extrinsics = self.extrinsics_report
        if not extrinsics.get("passed"):
            if "predicted_error_mm" in extrinsics:  # hand-eye without robot points decided it
                # files written before 2026-12-06 hold the 3-sigma bound there (no bound_3sigma_mm)
                what = "predicted RMS error" if "bound_3sigma_mm" in extrinsics else "predicted 3-sigma error"
                failed.append(
                    f"camera_to_robot ({extrinsics.get('method', 'hand-eye')}): {what} "
                    f"{_shown(extrinsics.get('predicted_error_mm'))} mm "
                    f"(tolerance {_shown(extrinsics.get('tolerance_mm'))} mm)"
                )
            else:
                failed.append(
                    f"camera_to_robot: RMS residual {_shown(extrinsics.get('rms_mm'))} mm "
                    f"(limit {_shown(extrinsics.get('threshold_mm'))} mm)"
                )
        for record in self.validation:
            if isinstance(record, dict) and not record.get("passed", True):
                failed.append(
                    f"validation at pixel {_shown(record.get('pixel'))}: error "
                    f"{_shown(record.get('error_mm'))} mm (limit {_shown(record.get('threshold_mm'))} mm)"
                )
        return failed

    def other_cell(self, expected: str) -> str:
        """Why this file is not for the cell `expected` names ("" when it is, or none is expected).

        A calibration copied from the cell beside this one has valid fields and the same image
        size: every check passes and every grasp lands where that other camera would have put it.
        The cell name the wizard wrote (`--cell`) is the one thing that tells them apart."""
        if not expected or self.cell == expected:
            return ""
        return (
            f"calibration is for cell {self.cell!r}, but this appliance is cell {expected!r} "
            f"([calibration] cell): put this cell's file in place, or run binpick calibrate --cell {expected}"
        )

    def failed_checks_note(self) -> str:
        """What the appliance's WARNING and `--check-config` say of a file whose checks failed
        ("did not pass its checks when written (...): ..."), "" when every check passed."""
        failed = "; ".join(self.failed_checks())
        if not failed:
            return ""
        return f"did not pass its checks when written (binpick calibrate --accept-failed): {failed}"

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


def _shown(value: Any) -> str:
    """A report's number as a person reads it (4 significant digits); "?" where it is missing."""
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        return f"{value:.4g}"
    if isinstance(value, list):
        return "(" + ", ".join(_shown(v) for v in value) + ")"
    return "?" if value is None else str(value)


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
    low, high = (f * max(width, height) for f in _FOCAL_RANGE)
    if not (low <= k[0, 0] <= high and low <= k[1, 1] <= high):
        raise r.fail(
            "intrinsics.camera_matrix",
            k.tolist(),
            f"focal lengths fx, fy from {low:g} to {high:g} px ({_FOCAL_RANGE[0]:g} to {_FOCAL_RANGE[1]:g} "
            f"times the {width}x{height} image's longer side)",
        )
    dist = r.array("intrinsics.dist_coeffs", (None,))
    if len(dist) not in _DIST_LENGTHS:
        raise r.fail(
            "intrinsics.dist_coeffs", dist.tolist(), f"{', '.join(map(str, _DIST_LENGTHS))} coefficients"
        )
    if np.abs(dist).max() > _DIST_LIMIT:
        raise r.fail("intrinsics.dist_coeffs", dist.tolist(), f"coefficients within +-{_DIST_LIMIT:g}")
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
            "a rigid 4x4 transform (orthonormal rotation with determinant +1, last row 0 0 0 1)",
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
        if polygon_area(roi) < 1.0:  # every cycle would find its region empty
            raise r.fail("roi_polygon", roi_raw, "a polygon enclosing at least 1 square pixel")
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
        geometry = cal.geometry
        geometry.pixel_to_robot(width / 2.0, height / 2.0)
    except GeometryError as exc:
        raise r.fail(
            "plane", data["plane"], f"a plane the image centre's ray meets in front of the camera ({exc})"
        ) from None
    _check_round_trip(r, geometry, data, cal.roi_polygon)
    return cal


def polygon_area(polygon: np.ndarray) -> float:
    """Area (square pixels) of a closed polygon (N x 2), by the shoelace formula."""
    u, v = np.asarray(polygon, dtype=np.float64).T
    return float(abs(np.dot(u, np.roll(v, -1)) - np.dot(v, np.roll(u, -1))) / 2.0)


def _check_round_trip(r: _Reader, geometry: PixelToRobot, data: dict, roi: np.ndarray | None) -> None:
    """Refuse a file whose numbers are each plausible but together do not map pixels and back.

    A 5x5 grid over where grasps can be (the ROI's bounding box, else the whole image; corners
    included) goes pixel -> ray -> pixel (the lens alone: a distortion polynomial that folds back
    there fails here), then pixel -> robot mm -> pixel (the whole chain: magnitudes that lose all
    precision fail here). A grid pixel whose ray misses the pick plane (the horizon in view) is
    skipped; the centre's ray was checked. A lens model fitted on boards in the middle may fold
    back in an image corner the ROI leaves out: that corner is never used, so it is not judged.
    """
    width, height = geometry.camera.image_size
    u0, v0, u1, v1 = 0.0, 0.0, width - 1.0, height - 1.0
    if roi is not None:
        u0, v0 = np.maximum(roi.min(axis=0), 0.0)
        u1, v1 = np.minimum(roi.max(axis=0), [width - 1.0, height - 1.0])
    us, vs = np.meshgrid(np.linspace(u0, u1, 5), np.linspace(v0, v1, 5))
    grid = np.column_stack([us.ravel(), vs.ravel()])

    def off_by(back: np.ndarray, pixels: np.ndarray) -> tuple[float, np.ndarray] | None:
        error = np.linalg.norm(np.asarray(back, dtype=np.float64) - pixels, axis=1)
        bad = np.nonzero(~(error <= _ROUND_TRIP_PX))[0]
        return None if not len(bad) else (float(error[bad[0]]), pixels[bad[0]])

    def say(found: tuple[float, np.ndarray], what: str) -> str:
        error, (u, v) = found
        return f"{what}: pixel ({u:g}, {v:g}) comes back {error:.3g} px off (limit {_ROUND_TRIP_PX:g} px)"

    camera = geometry.camera
    with np.errstate(all="ignore"):
        rays = camera.pixels_to_rays(grid)
        back = camera.project(rays) if np.all(np.isfinite(rays)) else np.full_like(grid, np.nan)
    found = off_by(back, grid)
    if found:
        raise r.fail(
            "intrinsics.dist_coeffs",
            data["intrinsics"]["dist_coeffs"],
            say(found, "a lens model that maps every pixel where grasps can be to a ray and back")
            + "; take views with the board in that part of the image, or set a region of interest "
            "that leaves it out",
        )
    hits, points = [], []
    for pixel in grid:
        try:
            points.append(geometry.pixel_to_robot(*pixel))
            hits.append(pixel)
        except GeometryError:
            continue
    if not hits:  # an ROI above the horizon: no grasp there can reach the pick plane
        raise r.fail(
            "roi_polygon", data.get("roi_polygon"), "a region whose pixels' rays meet the pick plane"
        )
    with np.errstate(all="ignore"):
        try:
            back = geometry.robots_to_pixels(np.array(points))
        except GeometryError:
            back = np.full((len(hits), 2), np.nan)
    found = off_by(back, np.array(hits))
    if found:
        raise r.fail(
            "plane", data["plane"], say(found, "a camera pose and plane that map pixels to robot mm and back")
        )


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
    except RecursionError:  # thousands of nested brackets: no calibration looks like that
        raise CalibrationError(p, "<file>", "JSON nested too deeply", "a calibration JSON document") from None
    return calibration_from_dict(data, p)


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
    fd, tmp_name = create_temp_beside(p)  # the mode of the file it replaces, not mkstemp's 0600
    backup = None
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as handle:
            handle.write(text)
            handle.flush()
            os.fsync(handle.fileno())
        backup = keep_backup(p)
        os.replace(tmp_name, p)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp_name)
        raise
    fsync_dir(p.parent)
    return backup
