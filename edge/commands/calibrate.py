"""`binpick calibrate`: the technician's step-by-step calibration wizard.

Every question has a flag, so the same wizard runs interactively at the cell or scripted from a
commissioning script (`--non-interactive`: a missing answer is an error naming the flag, never a
hang). Steps: 1 intrinsics, 2 camera to robot, 3 pick plane and region, 4 validation, 5 write.
Images come from folders, or are captured from the appliance's camera (`--camera CONFIG.toml`)
and saved in the report folder, so a camera run can be repeated from folders later.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import re
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import cv2
import numpy as np

from binpick_core.errors import CommandError
from edge import __version__
from edge.calibration_file import Calibration, CalibrationError, load_calibration, save_calibration
from edge.camera import CorruptFrame
from edge.geometry import CameraModel, GeometryError, PixelToRobot, Plane, RigidTransform
from edge.wizard.boards import Board, load_board
from edge.wizard.capture import CameraCapture, CaptureError
from edge.wizard.intrinsics import IntrinsicsError, calibrate_intrinsics, undistorted_preview
from edge.wizard.robot import (
    HAND_EYE_METHODS,
    StepError,
    draw_touch_points,
    fit_camera_to_robot,
    hand_eye_eye_to_hand,
    locate_board,
    touch_points_camera,
    touch_points_pixels,
    validation_record,
)
from edge.wizard.robot_registers import RobotRegisters
from edge.wizard.views import ViewCollector, ViewRules

IMAGE_SUFFIXES = {".png", ".jpg", ".jpeg", ".bmp", ".tif", ".tiff"}
STEPS = 5
EXIT_FAILED_CHECK = 1


def configure(parser: argparse.ArgumentParser) -> None:
    parser.description = (
        "Calibrate the cell step by step: intrinsics, camera to robot, pick plane and region, "
        "validation; writes calibration/<cell>.json atomically (the previous file is kept as a backup). "
        "Every answer can be given as a flag; --non-interactive never asks."
    )
    g = parser.add_argument_group("general")
    g.add_argument("--cell", help="cell name; the file is <out-dir>/<cell>.json")
    g.add_argument(
        "--out-dir", default="calibration", help="where the file and images go (default: calibration)"
    )
    g.add_argument("--board", help="board definition file (calibration/boards/*.json)")
    g.add_argument("--non-interactive", action="store_true", help="never ask: missing answers are errors")
    g.add_argument("--accept-failed", action="store_true", help="write the file even when a check fails")
    g.add_argument(
        "--render-board", metavar="PNG", help="write a printable image of --board (10 px/mm) and exit"
    )
    c = parser.add_argument_group("capture from the camera (steps 1 and 2)")
    c.add_argument(
        "--camera",
        metavar="CONFIG.toml",
        help="capture the views and the floor image from the camera of this appliance configuration "
        "(saved under <out-dir>/<cell>-report/capture-*); --images / --floor-image take precedence",
    )
    c.add_argument(
        "--camera-views", type=int, metavar="N", help="--non-interactive: capture N intrinsics views"
    )
    c.add_argument(
        "--camera-interval",
        type=float,
        default=2.0,
        metavar="S",
        help="--non-interactive: seconds between captures, to move the board (default 2)",
    )
    s1 = parser.add_argument_group("step 1: intrinsics")
    s1.add_argument("--images", help="folder of board images for the intrinsics")
    s1.add_argument("--intrinsics-from", help="reuse the intrinsics of an existing calibration file instead")
    s1.add_argument("--rms-threshold-px", type=float, default=0.5, help="pass/fail RMS reprojection error")
    s1.add_argument("--max-edge-width-px", type=float, default=ViewRules.max_edge_width_px, help="blur limit")
    s1.add_argument(
        "--min-corner-fraction", type=float, default=ViewRules.min_corner_fraction, help="partial-view limit"
    )
    s2 = parser.add_argument_group("step 2: camera to robot")
    s2.add_argument("--floor-image", help="image of the board lying flat on the bin floor")
    s2.add_argument(
        "--robot-point",
        action="append",
        default=[],
        metavar="LABEL=X,Y,Z",
        help="robot coordinates (mm) of a labelled board point; repeat for each (>= 3, 4 recommended)",
    )
    s2.add_argument(
        "--robot-modbus",
        metavar="HOST:PORT",
        help="read each touched point from the robot's registers (answer 'read' at the prompt)",
    )
    s2.add_argument(
        "--robot-register", type=int, default=0, help="0-based holding register of X (float32 X,Y,Z)"
    )
    s2.add_argument("--robot-device-id", type=int, default=1, help="Modbus device (unit) id of the robot")
    s2.add_argument("--robot-word-order", default="big", choices=("big", "little"), help="float32 word order")
    s2.add_argument("--residual-threshold-mm", type=float, default=2.0, help="pass/fail RMS residual")
    s2.add_argument("--hand-eye-poses", help="JSON of robot poses with the board in the gripper (optional)")
    s2.add_argument("--hand-eye-images", help="folder of the images named in --hand-eye-poses")
    s2.add_argument("--hand-eye-method", default="PARK", choices=sorted(HAND_EYE_METHODS))
    s3 = parser.add_argument_group("step 3: pick plane and region")
    s3.add_argument("--plane", help="'board' (default: the board surface) or 'nx,ny,nz,d' (robot frame, mm)")
    s3.add_argument("--pick-offset-mm", help="pick plane height above the bin floor (mm, default 0)")
    s3.add_argument(
        "--roi", help="'image' (whole image), 'u,v;u,v;...' pixels, or 'robot:x,y,z;...' bin corners in mm"
    )
    s4 = parser.add_argument_group("step 4: validation")
    s4.add_argument("--validate-pixel", help="'V' (board point V, default) or 'u,v' image point to touch")
    s4.add_argument("--validate-touch", help="robot coordinates reached 'x,y,z', or 'skip'")


# ---------------------------------------------------------------- answers: flags, prompts, parsing
class Wizard:
    """Questions answered by a flag, by the technician, or (non-interactive) by a default."""

    def __init__(self, interactive: bool):
        self.interactive = interactive

    def say(self, text: str = "") -> None:
        print(text, flush=True)

    def step(self, number: int, title: str, what: str) -> None:
        self.say()
        self.say(f"=== Step {number}/{STEPS}: {title} ===")
        self.say(what)

    def ask(
        self,
        question: str,
        given: str | None,
        parse: Callable[[str], Any],
        flag: str,
        default: str | None = None,
    ) -> Any:
        if given is not None:
            try:
                value = parse(given)
            except ValueError as exc:
                raise CommandError(f"{flag} {given!r}: {exc}") from None
            self.say(f"{question}: {given}   (from {flag})")
            return value
        if not self.interactive:
            if default is None:
                raise CommandError(f"{flag} is required with --non-interactive ({question.lower()})")
            self.say(f"{question}: {default}   (default)")
            return parse(default)
        suffix = f" [{default}]" if default is not None else ""
        while True:
            try:
                raw = input(f"{question}{suffix}: ").strip()
            except EOFError:
                raise CommandError(
                    "input ended before the wizard finished; script it with flags and --non-interactive"
                ) from None
            if not raw and default is not None:
                raw = default
            try:
                return parse(raw)
            except ValueError as exc:
                self.say(f"  ! {exc}; try again")

    def confirm(self, question: str, accept_flag: bool) -> bool:
        if accept_flag:
            self.say(f"{question} yes   (from --accept-failed)")
            return True
        if not self.interactive:
            return False
        return self.ask(question + " (y/n)", None, _parse_yes_no, "--accept-failed", default="n")


def _parse_yes_no(text: str) -> bool:
    t = text.strip().lower()
    if t in ("y", "yes"):
        return True
    if t in ("n", "no", ""):
        return False
    raise ValueError("answer y or n")


def _floats(text: str, count: int, what: str) -> np.ndarray:
    parts = [p for p in re.split(r"[,\s]+", text.strip()) if p]
    try:
        values = np.array([float(p) for p in parts])
    except ValueError:
        raise ValueError(f"expected {count} numbers for {what}, got {text!r}") from None
    if len(values) != count or not np.all(np.isfinite(values)):
        raise ValueError(f"expected {count} numbers for {what} separated by commas, got {text!r}")
    return values


def _existing_dir(text: str) -> Path:
    p = Path(text).expanduser()
    if not p.is_dir():
        raise ValueError(f"{text!r} is not a folder")
    return p


def _existing_file(text: str) -> Path:
    p = Path(text).expanduser()
    if not p.is_file():
        raise ValueError(f"{text!r} is not a file")
    return p


def _cell_name(text: str) -> str:
    if not re.fullmatch(r"[A-Za-z0-9][A-Za-z0-9_.-]{0,63}", text):
        raise ValueError("use letters, digits, '-', '_' or '.' (e.g. cell-a)")
    return text


def _image_file(text: str) -> tuple[Path, np.ndarray]:
    path = _existing_file(text)
    try:
        return path, _read_image(path)
    except StepError as exc:
        raise ValueError(str(exc)) from None


def _read_image(path: Path) -> np.ndarray:
    image = cv2.imread(str(path), cv2.IMREAD_COLOR)
    if image is None:
        raise StepError(f"{path}: cannot be read as an image")
    return image


def _list_images(folder: Path) -> list[Path]:
    return sorted(p for p in folder.iterdir() if p.suffix.lower() in IMAGE_SUFFIXES and p.is_file())


def _write_image(path: Path, image: np.ndarray) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    if not cv2.imwrite(str(path), image):
        raise CommandError(f"cannot write {path}")


# ---------------------------------------------------------------- steps
def _board_file(text: str) -> tuple[Path, Board]:
    path = _existing_file(text)
    try:
        return path, load_board(path)
    except CalibrationError as exc:
        raise ValueError(str(exc)) from None


def _choose_board(w: Wizard, args) -> tuple[Path, Board]:
    boards = sorted(Path(args.out_dir, "boards").glob("*.json"))
    default = str(boards[0]) if boards else None
    if args.board is None and w.interactive and boards:
        w.say("Boards found: " + ", ".join(str(b) for b in boards))
    path, board = w.ask("Board definition file", args.board, _board_file, "--board", default)
    w.say(
        f"  board {board.name}: {board.kind}, {board.columns}x{board.rows} inner corners, "
        f"{board.square_mm:g} mm squares" + (", legacy layout" if board.legacy_pattern else "")
    )
    return path, board


def _judge(w: Wizard, collector: ViewCollector, label: str, name: str, image: np.ndarray | None) -> None:
    """One view through the per-view check, with the ok/refused line the technician acts on."""
    if image is None:
        w.say(f"  {label} {name}: refused: cannot be read as an image")
        return
    verdict = collector.consider(name, image)
    if verdict.accepted:
        w.say(f"  {label} {name}: ok, {verdict.reason}")
    else:
        w.say(f"  {label} {name}: refused: {verdict.reason} -> {verdict.advice}")


def _views_from_folder(
    w: Wizard, args, board: Board, rules: ViewRules
) -> tuple[ViewCollector, np.ndarray, int]:
    folder = w.ask("Folder of board images", args.images, _existing_dir, "--images")
    files = _list_images(folder)
    if not files:
        raise CommandError(f"{folder}: no images ({', '.join(sorted(IMAGE_SUFFIXES))})")
    collector, first = None, None
    unreadable_before: list[tuple[int, Path]] = []  # judged once the image size is known
    for i, path in enumerate(files, 1):
        image = cv2.imread(str(path), cv2.IMREAD_COLOR)  # each file decoded once
        if collector is None:
            if image is None:
                unreadable_before.append((i, path))
                continue
            first = image
            collector = ViewCollector(board, (first.shape[1], first.shape[0]), rules)
            for j, earlier in unreadable_before:
                _judge(w, collector, f"[{j:2d}/{len(files)}]", earlier.name, None)
        _judge(w, collector, f"[{i:2d}/{len(files)}]", path.name, image)
    if collector is None:
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
    w: Wizard, args, board: Board, rules: ViewRules, capture: CameraCapture
) -> tuple[ViewCollector, np.ndarray, int]:
    """Capture views one by one, each judged at once like a folder's images (and saved)."""
    if w.interactive:
        w.say(f"Capturing from {capture.name}: press Enter for each view, type 'done' when finished.")
    else:
        if args.camera_views is None:
            raise CommandError("--camera-views is required with --camera and --non-interactive")
        w.say(f"Capturing {args.camera_views} views from {capture.name}, every {args.camera_interval:g} s.")
    collector, first, taken = None, None, 0
    while True:
        if w.interactive:
            if not w.ask(
                f"View {taken + 1}: Enter = capture, 'done' = finish", None, _parse_capture, "--camera-views"
            ):
                if collector is not None and collector.accepted:
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
        if collector is None:
            first, collector = image, ViewCollector(board, (image.shape[1], image.shape[0]), rules)
        _judge(w, collector, f"[{taken:2d}{total}]", name, image)
    if collector is None:
        raise CommandError(f"camera {capture.name}: no frame captured")
    w.say(f"  views saved in {capture.views} (repeat this step with --images {capture.views})")
    return collector, first, taken


def step_intrinsics(
    w: Wizard, args, board: Board, report_dir: Path, capture: CameraCapture | None = None
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
    rules = ViewRules(min_corner_fraction=args.min_corner_fraction, max_edge_width_px=args.max_edge_width_px)
    if capture is not None and args.images is None:
        collector, first, count = _views_from_camera(w, args, board, rules, capture)
    else:
        collector, first, count = _views_from_folder(w, args, board, rules)
    size = collector.image_size
    w.say(
        f"Accepted {len(collector.accepted)} of {count} views. Coverage of the image "
        f"({100 * collector.coverage_fraction():.0f}% of cells):"
    )
    w.say(collector.coverage_text())
    _write_image(report_dir / "coverage.png", collector.coverage_image(first))
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
    _write_image(report_dir / "undistorted.png", preview)
    w.say(
        f"  saved {report_dir / 'coverage.png'} and {report_dir / 'undistorted.png'} "
        "(straight lines must look straight)"
    )
    if not result.passed and not w.confirm(
        "Intrinsics failed the check. Continue anyway?", args.accept_failed
    ):
        raise _Stop("intrinsics failed: retake the views named above and run the wizard again")
    return CameraModel(k, result.dist_coeffs, size), result.report()


class _Stop(Exception):
    """A check failed and the technician chose not to go on: nothing is written, exit 1."""


def _parse_robot_points(values: list[str], labels: list[str]) -> dict[str, np.ndarray]:
    points = {}
    for item in values:
        label, sep, coords = item.partition("=")
        if not sep:
            raise CommandError(f"--robot-point {item!r}: expected LABEL=X,Y,Z, e.g. A=412.5,-20,35.2")
        if label not in labels:
            raise CommandError(f"--robot-point {item!r}: the board's points are {', '.join(labels)}")
        try:
            points[label] = _floats(coords, 3, f"point {label}")
        except ValueError as exc:
            raise CommandError(f"--robot-point {item!r}: {exc}") from None
    return points


def _robot_registers(args) -> RobotRegisters | None:
    if not args.robot_modbus:
        return None
    try:
        return RobotRegisters.parse(
            args.robot_modbus, args.robot_register, args.robot_device_id, args.robot_word_order
        )
    except ValueError as exc:
        raise CommandError(f"--robot-modbus: {exc}") from None


def _touched_point(
    what: str, registers: RobotRegisters | None, w: Wizard
) -> Callable[[str], np.ndarray | None]:
    """Typed x,y,z, or 'read' from the robot's registers (a failed read is asked again)."""
    typed = _optional_xyz(what)

    def parse(text: str) -> np.ndarray | None:
        if registers is None or text.strip().lower() != "read":
            return typed(text)
        try:
            xyz = registers.read_xyz()
        except StepError as exc:
            raise ValueError(str(exc)) from None
        w.say(f"  read from the robot: x {xyz[0]:.2f}  y {xyz[1]:.2f}  z {xyz[2]:.2f} mm")
        return xyz

    return parse


def _optional_xyz(what: str) -> Callable[[str], np.ndarray | None]:
    def parse(text: str) -> np.ndarray | None:
        if text.strip().lower() in ("", "skip", "-"):
            return None
        return _floats(text, 3, what)

    return parse


def _floor_from_camera(w: Wizard, args, capture: CameraCapture) -> tuple[Path, np.ndarray]:
    """Capture the floor image (on Enter, or after --camera-interval when scripted) and keep it."""
    if w.interactive:
        w.ask(
            f"Lay the board on the bin floor, then Enter = capture from {capture.name}",
            None,
            _parse_enter,
            "--floor-image",
        )
    else:
        time.sleep(args.camera_interval)
    try:
        image = capture.grab()
    except CorruptFrame as exc:
        raise StepError(f"floor image: {exc}") from None
    path = capture.save("floor.png", image)
    w.say(f"  captured {path} (repeat this step with --floor-image {path})")
    return path, image


def _parse_enter(text: str) -> bool:
    if text.strip():
        raise ValueError("press Enter to capture")
    return True


def step_camera_to_robot(
    w: Wizard, args, board: Board, camera: CameraModel, report_dir: Path, capture: CameraCapture | None = None
):
    w.step(
        2,
        "camera to robot",
        "Lay the board flat on the bin floor, fully in view, and take one image. Then jog the robot's\n"
        "tool tip onto each labelled board point (see the saved floor image) and enter its robot\n"
        "coordinates (mm).",
    )
    while True:
        if capture is not None and args.floor_image is None:
            floor_path, floor_image = _floor_from_camera(w, args, capture)
        else:
            floor_path, floor_image = w.ask(
                "Image of the board on the bin floor", args.floor_image, _image_file, "--floor-image"
            )
        if (floor_image.shape[1], floor_image.shape[0]) != camera.image_size:
            raise CommandError(
                f"{floor_path}: image is {floor_image.shape[1]}x{floor_image.shape[0]}, "
                f"the intrinsics are for {camera.image_size[0]}x{camera.image_size[1]}"
            )
        try:
            pose = locate_board(board, floor_image, camera)
            break
        except StepError as exc:
            if capture is None or args.floor_image is not None or not w.interactive:
                raise CommandError(f"{floor_path}: {exc}") from None
            w.say(
                f"  {floor_path.name}: refused: {exc} -> lay the board flat, fully in view, and capture again"
            )
    distance = float(np.linalg.norm(pose.camera_from_board.translation))
    w.say(
        f"  board found: {pose.detection.count} corners, {distance:.0f} mm from the camera, "
        f"reprojection {pose.reprojection_rms_px:.3f} px"
    )
    labels_px = touch_points_pixels(board, pose, camera)
    centre_px = _validation_point(board, pose, camera)
    marked = draw_touch_points(floor_image, labels_px, {"V": centre_px})
    _write_image(report_dir / "floor_points.png", marked)
    w.say(f"  labelled points drawn in {report_dir / 'floor_points.png'}:")
    for label, (u, v) in labels_px.items():
        w.say(f"    {label} at pixel ({u:.0f}, {v:.0f})")
    camera_points = touch_points_camera(board, pose)
    labels = list(camera_points)
    robot_points = _parse_robot_points(args.robot_point, labels)
    hand_eye = _hand_eye(w, args, board, camera)
    if w.interactive and not args.robot_point:
        registers = _robot_registers(args)
        w.say("  For each point enter x,y,z in mm; Enter skips a point (3 needed, 4 recommended).")
        if registers:
            w.say(f"  Or type 'read' to take the robot's position from {registers.where()}.")
        for label in labels:
            parse = _touched_point(f"point {label}", registers, w)
            value = w.ask(f"Robot coordinates of {label}", None, parse, "--robot-point", "skip")
            if value is not None:
                robot_points[label] = value
    if len(robot_points) < 3 and hand_eye is None:
        raise CommandError(
            f"{len(robot_points)} robot point(s) given; at least 3 are needed (4 recommended): "
            f"--robot-point LABEL=X,Y,Z for {', '.join(labels)}"
        )
    if robot_points:
        try:
            fit = fit_camera_to_robot(camera_points, robot_points, args.residual_threshold_mm)
        except StepError as exc:
            raise CommandError(str(exc)) from None
        w.say("  point   residual (mm)")
        for p in fit.points:
            w.say(f"    {p['name']:<5} {p['residual_mm']:8.3f}")
        transform, report, passed = fit.robot_from_camera, fit.report(), fit.passed
        w.say(
            f"  RMS residual {fit.rms_mm:.3f} mm (limit {fit.threshold_mm:g} mm): "
            + ("PASS" if passed else "FAIL")
        )
        for line in fit.advice:
            w.say(f"  advice: {line}")
    else:
        transform = hand_eye.robot_from_camera
        rms = hand_eye.consistency_rms_mm
        passed = rms <= args.residual_threshold_mm and not hand_eye.warnings
        report = {
            "method": f"hand-eye:{hand_eye.method}",
            "rms_mm": round(rms, 4),
            "threshold_mm": args.residual_threshold_mm,
            "passed": passed,
            "points": [],
        }
        w.say(
            f"  hand-eye spread {rms:.3f} mm (limit {args.residual_threshold_mm:g} mm): "
            + ("PASS" if passed else "FAIL")
        )
    if hand_eye is not None and robot_points:
        centre = transform.apply(pose.camera_from_board.translation)
        other = hand_eye.robot_from_camera.apply(pose.camera_from_board.translation)
        w.say(
            f"  hand-eye and board points differ by {np.linalg.norm(centre - other):.2f} mm "
            "at the board origin"
        )
    if not passed and not w.confirm("Camera to robot failed the check. Continue anyway?", args.accept_failed):
        raise _Stop("camera to robot failed: follow the advice above and run the wizard again")
    return pose, transform, report, (None if hand_eye is None else hand_eye.report()), floor_image, centre_px


def _validation_point(board: Board, pose, camera: CameraModel) -> tuple[float, float]:
    """Pixel of the board corner nearest the board's middle: a point not used by the fit."""
    cid = (board.rows // 2) * board.columns + board.columns // 2
    xyz = pose.camera_from_board.apply(board.corner_object_points()[cid].astype(np.float64))
    u, v = camera.project(xyz.reshape(1, 3))[0]
    return float(u), float(v)


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


def _hand_eye(w: Wizard, args, board: Board, camera: CameraModel):
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
            image = _read_image(Path(args.hand_eye_images) / entry["image"])
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


def _parse_plane(text: str) -> Plane | None:
    if text.strip().lower() in ("", "board"):
        return None
    v = _floats(text, 4, "the plane nx,ny,nz,d")
    try:
        return Plane(v[:3], v[3])
    except GeometryError as exc:
        raise ValueError(str(exc)) from None


def _parse_offset(text: str) -> float:
    value = _floats(text, 1, "the pick offset")[0]
    if not -500 <= value <= 1000:
        raise ValueError(f"pick offset {value} mm is outside -500..1000 mm")
    return float(value)


def step_plane_and_region(w: Wizard, args, camera, transform, pose, floor_image, report_dir: Path):
    w.step(
        3,
        "pick plane and region",
        "Depth comes from a plane parallel to the bin floor (one camera cannot measure it). The floor is\n"
        "taken from the board; the pick plane is raised by the pick offset (about half a pile's height).",
    )
    from edge.wizard.robot import board_plane_in_robot

    plane = w.ask(
        "Bin floor plane ('board' or nx,ny,nz,d in robot mm)", args.plane, _parse_plane, "--plane", "board"
    )
    source = "entered"
    if plane is None:
        plane, source = board_plane_in_robot(pose, transform), "board"
    w.say(
        f"  floor plane: normal ({', '.join(f'{x:+.4f}' for x in plane.normal)}), "
        f"offset {plane.offset:.2f} mm ({source})"
    )
    offset = w.ask(
        "Pick height above the floor (mm)", args.pick_offset_mm, _parse_offset, "--pick-offset-mm", "0"
    )
    try:
        floor = PixelToRobot(camera, transform, plane)
    except GeometryError as exc:
        raise CommandError(f"plane: {exc}") from None
    width, height = camera.image_size

    def parse_roi(text: str):
        t = text.strip()
        if t.lower() in ("", "image"):
            return None  # the whole image (contracts.md: roi_polygon None)
        if t.lower().startswith("robot:"):
            corners = [_floats(c, 3, "a bin corner x,y,z") for c in t[6:].split(";") if c.strip()]
            if len(corners) < 3:
                raise ValueError("at least 3 bin corners are needed")
            try:
                return floor.robots_to_pixels(np.array(corners))
            except GeometryError as exc:
                raise ValueError(str(exc)) from None
        poly = np.array([_floats(c, 2, "a vertex u,v") for c in t.split(";") if c.strip()])
        if len(poly) < 3:
            raise ValueError("at least 3 vertices u,v;u,v;u,v are needed")
        return poly

    roi = w.ask(
        "Region of interest ('image', 'u,v;u,v;...' pixels, or 'robot:x,y,z;...' bin corners)",
        args.roi,
        parse_roi,
        "--roi",
        "image",
    )
    overlay = floor_image.copy()
    drawn = (
        roi
        if roi is not None
        else np.array([[0, 0], [width - 1, 0], [width - 1, height - 1], [0, height - 1]])
    )
    cv2.polylines(overlay, [np.round(drawn).astype(np.int32).reshape(-1, 1, 2)], True, (0, 255, 0), 2)
    _write_image(report_dir / "roi.png", overlay)
    what = "the whole image" if roi is None else f"{len(roi)} vertices"
    w.say(f"  region: {what}, drawn in {report_dir / 'roi.png'}")
    return plane, source, offset, roi, floor


def step_validation(w: Wizard, args, floor: PixelToRobot, centre_px, threshold_mm: float) -> list[dict]:
    w.step(
        4,
        "validation",
        "The wizard maps an image point to robot coordinates; touch that point with the tool tip and enter\n"
        "where the robot is. The error is recorded in the file.",
    )

    def parse_pixel(text: str):
        if text.strip().upper() in ("", "V"):
            return centre_px
        return tuple(_floats(text, 2, "the pixel u,v"))

    pixel = w.ask(
        "Image point to check ('V' = board point V, or u,v)",
        args.validate_pixel,
        parse_pixel,
        "--validate-pixel",
        "V",
    )
    try:
        predicted = floor.pixel_to_robot(*pixel)
    except GeometryError as exc:
        raise CommandError(f"--validate-pixel: {exc}") from None
    w.say(
        f"  pixel ({pixel[0]:.1f}, {pixel[1]:.1f}) is at robot x {predicted[0]:.2f}  y {predicted[1]:.2f}  "
        f"z {predicted[2]:.2f} mm on the floor"
    )
    touched = w.ask(
        "Robot coordinates where the tip touches that point (x,y,z or 'skip')",
        args.validate_touch,
        _optional_xyz("the touched point"),
        "--validate-touch",
        "skip",
    )
    if touched is None:
        w.say("  validation skipped (recommended after every calibration)")
        return []
    record = validation_record(floor, pixel, touched)
    record["threshold_mm"] = threshold_mm
    record["passed"] = record["error_mm"] <= threshold_mm
    verdict = "PASS" if record["passed"] else "FAIL: check the tool-centre point and redo step 2"
    w.say(f"  touch error {record['error_mm']:.2f} mm (limit {threshold_mm:g} mm): {verdict}")
    return [record]


def main(args: argparse.Namespace) -> int:
    w = Wizard(interactive=not args.non_interactive)
    if args.render_board:
        if not args.board:
            raise CommandError("--render-board needs --board")
        try:
            board = load_board(args.board)
        except CalibrationError as exc:
            raise CommandError(str(exc)) from None
        _write_image(Path(args.render_board), board.image(10.0, margin_mm=10.0))
        w.say(
            f"wrote {args.render_board} at 10 px/mm: print at 254 dpi (100 %), check a square measures "
            f"{board.square_mm:g} mm"
        )
        return 0
    if args.camera_views is not None and args.camera_views < 1:
        raise CommandError(f"--camera-views {args.camera_views}: expected at least 1 view")
    if not 0 <= args.camera_interval <= 3600:
        raise CommandError(f"--camera-interval {args.camera_interval:g}: expected 0 to 3600 seconds")
    w.say(f"binpick calibration wizard {__version__}: {STEPS} steps. Ctrl-C stops without writing anything.")
    cell = w.ask("Cell name", args.cell, _cell_name, "--cell", "cell")
    out_dir = Path(args.out_dir)
    report_dir = out_dir / f"{cell}-report"
    board_path, board = _choose_board(w, args)
    capture = None
    try:
        if args.camera:
            capture = CameraCapture(args.camera, report_dir)
        camera, intrinsics = step_intrinsics(w, args, board, report_dir, capture)
        pose, transform, extrinsics, hand_eye, floor_image, centre_px = step_camera_to_robot(
            w, args, board, camera, report_dir, capture
        )
        plane, source, offset, roi, floor = step_plane_and_region(
            w, args, camera, transform, pose, floor_image, report_dir
        )
        validation = step_validation(w, args, floor, centre_px, args.residual_threshold_mm)
    except _Stop as stop:
        w.say(f"Stopped: {stop}. Nothing was written.")
        return EXIT_FAILED_CHECK
    except (StepError, GeometryError) as exc:
        raise CommandError(f"{exc}. Nothing was written.") from None
    except CaptureError as exc:
        raise CommandError(str(exc)) from None
    finally:
        if capture is not None:
            capture.close()  # before step 5: the appliance may take the camera back right after
    w.step(5, "write", "")
    cal = Calibration(
        cell=cell,
        image_size=camera.image_size,
        camera_matrix=camera.camera_matrix,
        dist_coeffs=camera.dist_coeffs,
        robot_from_camera=transform.matrix(),
        plane_normal=plane.normal,
        plane_offset_mm=plane.offset,
        pick_height_offset_mm=offset,
        roi_polygon=roi,
        intrinsics_report=intrinsics,
        extrinsics_report=extrinsics,
        plane_source=source,
        board=dict(board.source, file=str(board_path)),
        validation=validation,
        hand_eye=hand_eye,
        created=dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds"),
        wizard_version=__version__,
    )
    path = out_dir / f"{cell}.json"
    try:
        backup = save_calibration(cal, path)
    except CalibrationError as exc:
        raise CommandError(f"refusing to write: {exc}") from None
    except OSError as exc:
        raise CommandError(f"cannot write {path}: {exc}") from None
    w.say(f"Wrote {path}" + (f" (previous file kept as {backup})" if backup else ""))
    status = "all checks passed" if cal.passed else "WRITTEN WITH FAILED CHECKS (--accept-failed)"
    w.say(f"  {status}; images in {report_dir}")
    w.say(f"Next: the appliance reads {path}. After a bump, redo steps 2-4 keeping the intrinsics:")
    w.say(f"  binpick calibrate --cell {cell} --intrinsics-from {path} ...")
    return 0 if cal.passed else EXIT_FAILED_CHECK
