"""Step 1 of the wizard, intrinsics: views from a folder or the camera, judged one by one, then fitted.

Each view gets its ok/refused line at once (the technician acts on it while the board is still
in hand); the accepted ones go to `calibrate_intrinsics` and the report shows what to retake.
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import cv2
import numpy as np

from binpick_core.errors import CommandError
from edge.calibration_file import CalibrationError, load_calibration
from edge.camera import CorruptFrame
from edge.geometry import CameraModel
from edge.wizard.boards import Board
from edge.wizard.capture import CameraCapture
from edge.wizard.intrinsics import MIN_VIEWS, IntrinsicsError, calibrate_intrinsics, undistorted_preview
from edge.wizard.prompts import IMAGE_SUFFIXES, Stop, Wizard, existing_dir, list_images, write_image
from edge.wizard.views import ViewCollector, ViewRules


def _judge(
    w: Wizard, collector: ViewCollector, label: str, name: str, image: np.ndarray | None
) -> np.ndarray | None:
    """One view through the per-view check, with the ok/refused line the technician acts on;
    returns the image when it was accepted (the first accepted one is the report's background)."""
    if image is None:
        w.say(f"  {label} {name}: refused: cannot be read as an image")
        return None
    verdict = collector.consider(name, image)
    if verdict.accepted:
        w.say(f"  {label} {name}: ok, {verdict.reason}")
        return image
    w.say(f"  {label} {name}: refused: {verdict.reason} -> {verdict.advice}")
    return None


def _views_from_folder(
    w: Wizard, args: argparse.Namespace, board: Board, rules: ViewRules
) -> tuple[ViewCollector, np.ndarray | None, int]:
    folder = w.ask("Folder of board images", args.images, existing_dir, "--images")
    files = list_images(folder)
    if not files:
        raise CommandError(f"{folder}: no images ({', '.join(sorted(IMAGE_SUFFIXES))})")
    collector, first, readable = ViewCollector(board, None, rules), None, 0
    for i, path in enumerate(files, 1):
        image = cv2.imread(str(path), cv2.IMREAD_COLOR)  # each file decoded once
        readable += image is not None
        accepted = _judge(w, collector, f"[{i:2d}/{len(files)}]", path.name, image)
        if first is None:
            first = accepted
    if not readable:
        raise CommandError(f"{folder}: none of the {len(files)} image files can be read")
    return collector, first, len(files)


def _parse_capture(text: str) -> bool:
    t = text.strip().lower()
    if t in ("", "c", "capture"):
        return True
    if t in ("done", "d"):
        return False
    raise ValueError("press Enter to capture a view, or type done")


def _views_from_camera(
    w: Wizard, args: argparse.Namespace, board: Board, rules: ViewRules, capture: CameraCapture
) -> tuple[ViewCollector, np.ndarray | None, int]:
    """Capture views one by one, each judged at once like a folder's images (and saved)."""
    if w.interactive:
        w.say(f"Capturing from {capture.name}: press Enter for each view, type 'done' when finished.")
    else:
        if args.camera_views is None:
            raise CommandError("--camera-views is required with --camera and --non-interactive")
        w.say(f"Capturing {args.camera_views} views from {capture.name}, every {args.camera_interval:g} s.")
    collector, first, taken, grabbed = ViewCollector(board, None, rules), None, 0, 0
    while True:
        if w.interactive:
            if not w.ask(
                f"View {taken + 1}: Enter = capture, 'done' = finish", None, _parse_capture, "--camera-views"
            ):
                if collector.accepted:
                    break
                w.say("  ! no view accepted yet: capture at least one")
                continue
        else:
            if taken >= args.camera_views:
                break
            if taken:
                time.sleep(args.camera_interval)
        taken += 1
        name = f"view-{taken:03d}.png"
        total = "" if w.interactive else f"/{args.camera_views}"
        try:
            image = capture.grab()
        except CorruptFrame as exc:
            w.say(f"  [{taken:2d}{total}] {name}: refused: {exc}")
            continue
        capture.save(f"views/{name}", image)
        grabbed += 1
        accepted = _judge(w, collector, f"[{taken:2d}{total}]", name, image)
        if first is None:
            first = accepted
    if not grabbed:
        raise CommandError(f"camera {capture.name}: no frame captured")
    w.say(f"  views saved in {capture.views} (repeat this step with --images {capture.views})")
    return collector, first, taken


def _no_view_accepted(collector: ViewCollector, board: Board, board_path: Path, count: int) -> str:
    """The step's one error line when no view was accepted. When the board was found in none of
    them, the per-view advice (whole board in view, light) misleads: a board file that does not
    describe the printed board finds nothing in any photo, so the line points at the file."""
    if collector.boards_found:
        return (
            f"no view of {count} accepted: retake the views as each refusal above says "
            f"(at least {MIN_VIEWS} usable views are needed)"
        )
    what = (
        f"inner_corners ({board.columns}x{board.rows}: the corners where four squares meet, one fewer "
        "than the squares each way) and square_mm"
        if board.kind == "chessboard"
        else "its size in squares, dictionary and legacy_pattern"
    )
    return (
        f"the board of {board_path} ({board.name}) was found in none of the {count} views: check that "
        f"the file describes the printed board, its {what}"
    )


def step_intrinsics(
    w: Wizard,
    args: argparse.Namespace,
    board: Board,
    board_path: Path,
    report_dir: Path,
    capture: CameraCapture | None = None,
) -> tuple[CameraModel, dict]:
    w.step(
        1,
        "intrinsics",
        "Hold the board at 12-20 positions covering the whole image (corners too), tilted up to\n"
        "~40 degrees, still and in focus. Each image is checked as it is read.",
    )
    if args.intrinsics_from:
        try:
            previous = load_calibration(args.intrinsics_from)
        except CalibrationError as exc:
            raise CommandError(str(exc)) from None
        w.say(
            f"Reusing the intrinsics of {args.intrinsics_from} "
            f"(RMS {previous.intrinsics_report.get('rms_px')} px)"
        )
        camera = CameraModel(previous.camera_matrix, previous.dist_coeffs, previous.image_size)
        return camera, dict(previous.intrinsics_report, reused_from=str(args.intrinsics_from))
    rules = ViewRules(
        min_corners=args.min_corners,
        max_edge_width_px=args.max_edge_width_px,
        max_edge_width_fraction=args.max_edge_width_fraction,
    )
    if capture is not None and args.images is None:
        collector, first, count = _views_from_camera(w, args, board, rules, capture)
    else:
        collector, first, count = _views_from_folder(w, args, board, rules)
    if first is None:
        raise CommandError(_no_view_accepted(collector, board, board_path, count))
    size = collector.image_size
    w.say(
        f"Accepted {len(collector.accepted)} of {count} views. Coverage of the image "
        f"({100 * collector.coverage_fraction():.0f}% of cells):"
    )
    w.say(collector.coverage_text())
    write_image(report_dir / "coverage.png", collector.coverage_image(first))
    try:
        result = calibrate_intrinsics(collector, args.rms_threshold_px)
    except IntrinsicsError as exc:
        raise CommandError(str(exc)) from None
    k = result.camera_matrix
    w.say(f"  fx {k[0, 0]:.2f}  fy {k[1, 1]:.2f}  cx {k[0, 2]:.2f}  cy {k[1, 2]:.2f}  (pixels)")
    w.say("  distortion " + " ".join(f"{c:+.5f}" for c in result.dist_coeffs))
    worst = sorted(result.per_view_px.items(), key=lambda kv: -kv[1])[:3]
    w.say("  worst views: " + ", ".join(f"{n} {e:.3f} px" for n, e in worst))
    verdict = "PASS" if result.passed else "FAIL"
    w.say(f"  RMS reprojection error {result.rms_px:.3f} px (limit {result.threshold_px:g} px): {verdict}")
    for line in result.advice:
        w.say(f"  advice: {line}")
    preview = undistorted_preview(first, k, result.dist_coeffs)
    write_image(report_dir / "undistorted.png", preview)
    w.say(
        f"  saved {report_dir / 'coverage.png'} and {report_dir / 'undistorted.png'} "
        "(straight lines must look straight)"
    )
    if not result.passed and not w.confirm(
        "Intrinsics failed the check. Continue anyway?", args.accept_failed
    ):
        raise Stop("intrinsics failed: retake the views named above and run the wizard again")
    return CameraModel(k, result.dist_coeffs, size), result.report()
