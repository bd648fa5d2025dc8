"""Step "intrinsics": camera matrix and distortion from the accepted board views.

The pass/fail number is OpenCV's RMS reprojection error; per-view errors point at the views to
retake. One clear outlier (a bent board, motion blur the edge check missed) is dropped and the
fit repeated once, and the report says so, because a technician cannot judge that from RMS alone.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import cv2
import numpy as np

from edge.wizard.views import ViewCollector, ViewVerdict

MIN_VIEWS = 6
RECOMMENDED_VIEWS = 12
RECOMMENDED_COVERAGE = 0.6


class IntrinsicsError(ValueError):
    """Not enough material to calibrate; the message says what to add."""


@dataclass
class IntrinsicsResult:
    camera_matrix: np.ndarray
    dist_coeffs: np.ndarray
    image_size: tuple[int, int]
    rms_px: float
    per_view_px: dict[str, float]
    threshold_px: float
    coverage: float
    dropped: list[str] = field(default_factory=list)
    advice: list[str] = field(default_factory=list)

    @property
    def passed(self) -> bool:
        return self.rms_px <= self.threshold_px

    def report(self) -> dict:
        """What goes into the calibration file's "intrinsics" section (besides matrix/coefficients)."""
        return {
            "rms_px": round(self.rms_px, 4),
            "threshold_px": self.threshold_px,
            "passed": self.passed,
            "views": len(self.per_view_px),
            "per_view_px": {k: round(v, 4) for k, v in self.per_view_px.items()},
            "dropped_views": self.dropped,
            "coverage": round(self.coverage, 3),
        }


def _fit(
    views: list[ViewVerdict], image_size: tuple[int, int]
) -> tuple[float, np.ndarray, np.ndarray, np.ndarray]:  # rms px, camera matrix, distortion, per-view rms
    objects = [v.detection.object_points.reshape(-1, 1, 3) for v in views]
    images = [v.detection.image_points.reshape(-1, 1, 2) for v in views]
    criteria = (cv2.TERM_CRITERIA_COUNT | cv2.TERM_CRITERIA_EPS, 100, 1e-12)
    rms, k, d, _, _, _, _, per_view = cv2.calibrateCameraExtended(
        objects, images, tuple(image_size), None, None, criteria=criteria
    )
    return float(rms), k, d.ravel(), per_view.ravel()


def calibrate_intrinsics(collector: ViewCollector, threshold_px: float = 0.5) -> IntrinsicsResult:
    """calibrateCamera over the accepted views, with one outlier pass and advice on failure."""
    views = list(collector.accepted)
    if len(views) < MIN_VIEWS:
        raise IntrinsicsError(
            f"only {len(views)} usable views; at least {MIN_VIEWS} are needed "
            f"({RECOMMENDED_VIEWS} recommended): "
            "take more images with the board at other positions and tilts"
        )
    rms, k, d, per_view = _fit(views, collector.image_size)
    dropped: list[str] = []
    worst = int(np.argmax(per_view))
    median = float(np.median(per_view))
    if per_view[worst] > max(3.0 * median, threshold_px) and len(views) - 1 >= MIN_VIEWS:
        dropped.append(views[worst].name)
        views = views[:worst] + views[worst + 1 :]
        rms, k, d, per_view = _fit(views, collector.image_size)
    result = IntrinsicsResult(
        camera_matrix=k,
        dist_coeffs=d,
        image_size=tuple(collector.image_size),
        rms_px=rms,
        per_view_px={v.name: float(e) for v, e in zip(views, per_view, strict=True)},
        threshold_px=threshold_px,
        coverage=collector.coverage_fraction(),
        dropped=dropped,
    )
    result.advice = _advice(result, len(views))
    return result


def _advice(result: IntrinsicsResult, n_views: int) -> list[str]:
    advice = []
    if result.dropped:
        advice.append(
            f"dropped view {', '.join(result.dropped)} (its error was far above the others): retake it"
        )
    if not result.passed:
        bad = [n for n, e in result.per_view_px.items() if e > result.threshold_px]
        if bad:
            advice.append(
                f"views above {result.threshold_px:g} px: {', '.join(bad)}: retake them (blur, glare)"
            )
        advice.append(
            "check that the board is flat and rigid and that square_mm in the board file is the printed size"
        )
    if n_views < RECOMMENDED_VIEWS:
        advice.append(f"{n_views} views used; {RECOMMENDED_VIEWS} or more give steadier results")
    if result.coverage < RECOMMENDED_COVERAGE:
        advice.append(
            f"corners cover {100 * result.coverage:.0f}% of the image: add views with the board near the "
            "edges and corners of the image (distortion is largest there)"
        )
    return advice


def undistorted_preview(image: np.ndarray, camera_matrix: np.ndarray, dist_coeffs: np.ndarray) -> np.ndarray:
    """The image with distortion removed, same size, every source pixel kept (alpha = 1).

    Straight edges of the bin and board must look straight here; curved ones mean bad intrinsics.
    """
    h, w = image.shape[:2]
    new_k, _ = cv2.getOptimalNewCameraMatrix(camera_matrix, dist_coeffs, (w, h), 1.0, (w, h))
    return cv2.undistort(image, camera_matrix, dist_coeffs, None, new_k)
