"""Calibration boards: definition files, detection, and printable images.

A board file (JSON, in `calibration/boards/`) says everything a detector would otherwise have to
guess, in particular whether a ChArUco board uses OpenCV's legacy corner layout (boards printed
before OpenCV 4.6 with an even number of rows): a wrong guess finds the markers but no corners.

Board frame (both kinds, as OpenCV's CharucoBoard): origin at the outer top-left corner of the
printed grid, x along the columns, y along the rows, z into the board; inner corner (c, r) is at
((c + 1) * square, (r + 1) * square, 0) mm and has id r * columns + c, where `columns` counts
inner corners (a chessboard file gives `inner_corners`, a ChArUco file `squares`, one more each).
The square diagonally outside inner corner 0 is black; touch points are named corners.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import cv2
import numpy as np

from edge.calibration_file import CalibrationError

BOARD_TYPES = ("chessboard", "charuco")


@dataclass(frozen=True)
class Detection:
    """Corners found in one image: ids, pixel positions, board-frame positions (mm)."""

    ids: np.ndarray  # (N,) int
    image_points: np.ndarray  # (N, 2) float32
    object_points: np.ndarray  # (N, 3) float32
    total: int  # corners on the whole board

    @property
    def count(self) -> int:
        return len(self.ids)

    @property
    def fraction(self) -> float:
        return self.count / self.total


@dataclass(frozen=True, eq=False)  # identity hash: the definition dicts are not hashable
class Board:
    """A board definition read from a file; `source` is kept in the calibration file."""

    name: str
    kind: str
    columns: int  # inner corners along x
    rows: int  # inner corners along y
    square_mm: float
    marker_mm: float = 0.0
    dictionary: str = ""
    legacy_pattern: bool = False
    touch_points: dict[str, int] = field(default_factory=dict)  # label -> corner id
    source: dict = field(default_factory=dict)

    @property
    def total_corners(self) -> int:
        return self.columns * self.rows

    @property
    def symmetric(self) -> bool:
        """A chessboard that looks the same turned by 180 degrees (both inner-corner counts odd or even).

        Its corners are found but cannot be numbered physically: fine for intrinsics (each view's
        pose absorbs the turn), not for touching labelled corners or for hand-eye.
        """
        return self.kind == "chessboard" and (self.columns + self.rows) % 2 == 0

    def orientation_problem(self) -> str:
        """Why a symmetric board cannot be used where its orientation matters, and what to do."""
        return (
            f"needs the board's orientation, and board {self.name} ({self.columns}x{self.rows} inner "
            "corners) looks the same turned by 180 degrees, so its corner A cannot be told from C: "
            "use a chessboard with one odd and one even count (e.g. 9x6) or a ChArUco board here "
            "(it is fine for the intrinsics)"
        )

    def corner_object_points(self) -> np.ndarray:
        """(columns*rows, 3) board-frame positions (mm) indexed by corner id."""
        c, r = np.meshgrid(np.arange(self.columns), np.arange(self.rows))
        pts = np.column_stack(
            [(c.ravel() + 1) * self.square_mm, (r.ravel() + 1) * self.square_mm, np.zeros(c.size)]
        )
        return pts.astype(np.float32)

    def charuco_board(self) -> cv2.aruco.CharucoBoard:
        dictionary = cv2.aruco.getPredefinedDictionary(getattr(cv2.aruco, self.dictionary))
        board = cv2.aruco.CharucoBoard(
            (self.columns + 1, self.rows + 1), self.square_mm, self.marker_mm, dictionary
        )
        board.setLegacyPattern(self.legacy_pattern)
        return board

    def image(self, px_per_mm: float, margin_mm: float = 0.0) -> np.ndarray:
        """A printable (or renderable) 8-bit image of the board at `px_per_mm`, white margin around it."""
        width_mm = (self.columns + 1) * self.square_mm
        height_mm = (self.rows + 1) * self.square_mm
        w, h = round(width_mm * px_per_mm), round(height_mm * px_per_mm)
        if self.kind == "charuco":
            img = self.charuco_board().generateImage((w, h), marginSize=0, borderBits=1)
        else:
            ys, xs = np.mgrid[0:h, 0:w]
            col = np.floor((xs + 0.5) / px_per_mm / self.square_mm).astype(int)
            row = np.floor((ys + 0.5) / px_per_mm / self.square_mm).astype(int)
            img = np.where((col + row) % 2 == 0, 0, 255).astype(np.uint8)
        m = round(margin_mm * px_per_mm)
        return cv2.copyMakeBorder(img, m, m, m, m, cv2.BORDER_CONSTANT, value=255)

    def detect(
        self, gray: np.ndarray, camera_matrix: np.ndarray | None = None, dist_coeffs: np.ndarray | None = None
    ) -> Detection | None:
        """Find the board's corners in an 8-bit grayscale image; None when no usable corners."""
        if self.kind == "charuco":
            return self._detect_charuco(gray, camera_matrix, dist_coeffs)
        return self._detect_chessboard(gray)

    def _detect_chessboard(self, gray: np.ndarray) -> Detection | None:
        # The classic detector + cornerSubPix measured 2-4x more accurate (0.03 px vs 0.06-0.15 px
        # mean error on rendered views) and 20x faster than findChessboardCornersSB here; the
        # sector-based one is the fallback for blur and uneven light, refined the same way.
        size = (self.columns, self.rows)
        classic = cv2.CALIB_CB_ADAPTIVE_THRESH | cv2.CALIB_CB_NORMALIZE_IMAGE | cv2.CALIB_CB_FAST_CHECK
        found, corners = cv2.findChessboardCorners(gray, size, flags=classic)
        if not found:
            found, corners = cv2.findChessboardCornersSB(gray, size, flags=cv2.CALIB_CB_NORMALIZE_IMAGE)
        if not found:
            return None
        pts = corners.reshape(-1, 2).astype(np.float32)
        spacing = float(
            np.median(np.linalg.norm(np.diff(pts.reshape(self.rows, self.columns, 2), axis=1), axis=2))
        )
        # Half-window of a fifth of a square: on OpenCV's real stereo sample photos (JPEG, 640x480,
        # squares 31-43 px) 0.35 of a square gave 0.60/0.87 px RMS and fx 7-8 sigma off, OpenCV's
        # tutorial 11x11 window 0.41/0.46 px, a fifth 0.18/0.19 px (tests/test_calibration_real_photos.py).
        half = int(np.clip(0.2 * spacing, 2, 15))
        criteria = (cv2.TERM_CRITERIA_EPS | cv2.TERM_CRITERIA_COUNT, 50, 1e-3)
        pts = cv2.cornerSubPix(gray, pts.reshape(-1, 1, 2), (half, half), (-1, -1), criteria)
        grid = pts.reshape(self.rows, self.columns, 2)
        if not self.symmetric and not self._first_square_is_black(gray, grid):
            grid = grid[::-1, ::-1]  # the detector started from the opposite corner
        ids = np.arange(self.total_corners)
        return Detection(
            ids, grid.reshape(-1, 2).astype(np.float32), self.corner_object_points(), self.total_corners
        )

    def _first_square_is_black(self, gray: np.ndarray, grid: np.ndarray) -> bool:
        """Is the square diagonally outside corner 0 darker than its neighbour along the first row?

        Only meaningful when the pattern is not 180-degree symmetric (columns + rows odd); it makes
        the corner ids, and so the touch points, physical. Symmetric boards skip it (`symmetric`).
        """
        src = np.array(
            [[0, 0], [self.columns - 1, 0], [self.columns - 1, self.rows - 1], [0, self.rows - 1]], np.float32
        )
        dst = np.array([grid[0, 0], grid[0, -1], grid[-1, -1], grid[-1, 0]], np.float32)
        h = cv2.getPerspectiveTransform(src, dst)
        probes = cv2.perspectiveTransform(np.array([[[-0.5, -0.5], [0.5, -0.5]]], np.float32), h)[0]
        values = []
        for x, y in probes:
            xi = int(np.clip(round(x), 0, gray.shape[1] - 1))
            yi = int(np.clip(round(y), 0, gray.shape[0] - 1))
            values.append(float(gray[max(yi - 1, 0) : yi + 2, max(xi - 1, 0) : xi + 2].mean()))
        return values[0] < values[1]

    def _detect_charuco(
        self, gray: np.ndarray, camera_matrix: np.ndarray | None, dist_coeffs: np.ndarray | None
    ) -> Detection | None:
        params = cv2.aruco.CharucoParameters()
        params.tryRefineMarkers = True  # recovers markers the first pass misses (glare, steep views)
        if camera_matrix is not None:
            params.cameraMatrix = np.asarray(camera_matrix, np.float64)
            params.distCoeffs = np.asarray(dist_coeffs, np.float64)
        detector_params = cv2.aruco.DetectorParameters()
        detector_params.cornerRefinementMethod = cv2.aruco.CORNER_REFINE_SUBPIX
        detector = cv2.aruco.CharucoDetector(self.charuco_board(), params, detector_params)
        corners, ids, _, _ = detector.detectBoard(gray)
        if ids is None or len(ids) < 4:
            return None
        ids = ids.ravel().astype(int)
        objects = self.corner_object_points()[ids]
        return Detection(ids, corners.reshape(-1, 2).astype(np.float32), objects, self.total_corners)


def load_board(path: str | Path) -> Board:
    """Read and check a board file; errors name the file and the field."""
    p = Path(path)
    try:
        data = json.loads(p.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise CalibrationError(p, "<file>", "<missing>", "a board file (see calibration/boards/)") from None
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise CalibrationError(p, "<file>", str(exc), "a readable JSON board definition") from None
    if not isinstance(data, dict):
        raise CalibrationError(p, "<root>", type(data).__name__, "a JSON object")

    def need(name: str, check: Callable[[Any], object], expected: str) -> Any:  # a JSON value, checked
        if name not in data:
            raise CalibrationError(p, name, "<missing>", expected)
        if not check(data[name]):
            raise CalibrationError(p, name, data[name], expected)
        return data[name]

    def is_pos(x: object) -> bool:
        return isinstance(x, (int, float)) and not isinstance(x, bool) and x > 0

    kind = need("type", lambda v: v in BOARD_TYPES, f"one of {BOARD_TYPES}")
    name = need("name", lambda v: isinstance(v, str) and v, "a non-empty string")
    square = float(need("square_mm", is_pos, "the printed square side in mm, > 0"))
    kwargs: dict = {}
    if kind == "chessboard":
        cols, rows = need(
            "inner_corners",
            lambda v: isinstance(v, list) and len(v) == 2 and all(isinstance(n, int) and n >= 3 for n in v),
            "[columns, rows] of inner corners, each >= 3",
        )
    else:
        sx, sy = need(
            "squares",
            lambda v: isinstance(v, list) and len(v) == 2 and all(isinstance(n, int) and n >= 3 for n in v),
            "[columns, rows] of squares, each >= 3",
        )
        cols, rows = sx - 1, sy - 1
        marker = float(
            need("marker_mm", lambda v: is_pos(v) and v < square, f"marker side in mm, 0 < x < {square}")
        )
        dictionary = need(
            "dictionary",
            lambda v: isinstance(v, str) and v.startswith("DICT_") and hasattr(cv2.aruco, v),
            "an OpenCV ArUco dictionary name such as DICT_5X5_100",
        )
        legacy = need(
            "legacy_pattern",
            lambda v: isinstance(v, bool),
            "true (printed with OpenCV < 4.6 and an even number of rows) or false",
        )
        kwargs = {"marker_mm": marker, "dictionary": dictionary, "legacy_pattern": legacy}
        markers_needed = (sx * sy) // 2
        if (
            markers_needed
            > cv2.aruco.getPredefinedDictionary(getattr(cv2.aruco, dictionary)).bytesList.shape[0]
        ):
            raise CalibrationError(
                p, "dictionary", dictionary, f"a dictionary with at least {markers_needed} markers"
            )
    default_touch = {"A": [0, 0], "B": [cols - 1, 0], "C": [cols - 1, rows - 1], "D": [0, rows - 1]}
    touch_raw = data.get("touch_points", default_touch)
    touch: dict[str, int] = {}
    if not isinstance(touch_raw, dict) or len(touch_raw) < 3:
        raise CalibrationError(
            p, "touch_points", touch_raw, "an object of at least 3 labels -> [column, row]"
        )
    for label, cr in touch_raw.items():
        if not (
            isinstance(cr, list)
            and len(cr) == 2
            and all(isinstance(n, int) for n in cr)
            and 0 <= cr[0] < cols
            and 0 <= cr[1] < rows
        ):
            raise CalibrationError(
                p, f"touch_points.{label}", cr, f"[column, row] with 0 <= column < {cols}, 0 <= row < {rows}"
            )
        touch[str(label)] = cr[1] * cols + cr[0]
    return Board(name, kind, cols, rows, square, touch_points=touch, source=data, **kwargs)
