"""`binpick calibrate`: the technician's step-by-step calibration wizard (arguments and order).

Every question has a flag, so the same wizard runs interactively at the cell or scripted from a
commissioning script (`--non-interactive`: a missing answer is an error naming the flag, never a
hang). Steps: 1 intrinsics, 2 camera to robot, 3 pick plane and region, 4 validation, 5 write;
each lives in `edge/wizard/step_*.py`, this module only declares the flags and runs the steps.
Images come from folders, or are captured from the appliance's camera (`--camera CONFIG.toml`)
and saved in the report folder, so a camera run can be repeated from folders later.
"""

from __future__ import annotations

import argparse
import math
from pathlib import Path

from binpick_core.errors import CommandError
from edge import __version__
from edge.calibration_file import CalibrationError
from edge.geometry import GeometryError
from edge.wizard.boards import Board, load_board
from edge.wizard.capture import CameraCapture, CaptureError
from edge.wizard.hand_eye import DEFAULT_TOLERANCE_MM, HAND_EYE_METHODS, POSE_ERRORS, SETUPS
from edge.wizard.prompts import STEPS, Stop, Wizard, cell_name, check_given, choose_board, write_image
from edge.wizard.report import ReportFolder
from edge.wizard.robot import StepError
from edge.wizard.step_camera_to_robot import check_touch_flags, step_camera_to_robot
from edge.wizard.step_hand_eye import PosesFile, read_poses
from edge.wizard.step_intrinsics import step_intrinsics
from edge.wizard.step_plane import parse_offset, parse_plane, roi_text, step_plane_and_region
from edge.wizard.step_validation import parse_pixel, parse_touch, step_validation
from edge.wizard.step_write import step_write
from edge.wizard.views import ViewRules

EXIT_FAILED_CHECK = 1
EXIT_INTERRUPTED = 130  # as a shell reports a command ended by SIGINT


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
    s1.add_argument(
        "--rms-threshold-px", type=float, default=0.5, help="pass/fail RMS reprojection error (default 0.5)"
    )
    s1.add_argument(
        "--max-edge-width-px",
        type=float,
        default=ViewRules.max_edge_width_px,
        help=f"blur limit in pixels, the floor (default {ViewRules.max_edge_width_px:g})",
    )
    s1.add_argument(
        "--max-edge-width-fraction",
        type=float,
        default=ViewRules.max_edge_width_fraction,
        help="blur limit as a share of the square's side in pixels; the larger limit applies "
        f"(default {ViewRules.max_edge_width_fraction:g})",
    )
    s1.add_argument(
        "--min-corners",
        type=int,
        default=ViewRules.min_corners,
        help=f"fewest corners in a view, over >= 2 rows and 2 columns (default {ViewRules.min_corners})",
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
        "--robot-register",
        type=int,
        default=0,
        help="0-based holding register of X (float32 X,Y,Z; default 0)",
    )
    s2.add_argument(
        "--robot-device-id", type=int, default=1, help="Modbus device (unit) id of the robot (default 1)"
    )
    s2.add_argument(
        "--robot-word-order",
        default="big",
        choices=("big", "little"),
        help="float32 word order (default big)",
    )
    s2.add_argument(
        "--residual-threshold-mm",
        type=float,
        default=2.0,
        help="pass/fail RMS residual of the touched points (default 2)",
    )
    s2.add_argument(
        "--hand-eye-poses", help="JSON of robot poses, one per image (optional; see --hand-eye-setup)"
    )
    s2.add_argument("--hand-eye-images", help="folder of the images named in --hand-eye-poses")
    s2.add_argument(
        "--hand-eye-method",
        default="PARK",
        choices=sorted(HAND_EYE_METHODS),
        help="closed form (the start; default PARK)",
    )
    s2.add_argument(
        "--hand-eye-setup",
        default="eye-to-hand",
        choices=SETUPS,
        help="eye-to-hand: fixed camera, board in the gripper (default); eye-in-hand: camera on the gripper",
    )
    s2.add_argument(
        "--hand-eye-pose-errors",
        default="exact",
        choices=POSE_ERRORS,
        help="exact: the robot's poses are taken as given (default); estimate: each pose is corrected and "
        "the robot's error spread estimated from the photos (an arm without a kinematic calibration)",
    )
    s2.add_argument(
        "--hand-eye-tolerance-mm",
        type=float,
        default=DEFAULT_TOLERANCE_MM,
        help="pass/fail: predicted RMS error on the bin floor, worst of the image's corners and centre "
        f"(default {DEFAULT_TOLERANCE_MM:g} mm, the touch-point fit's limit)",
    )
    s3 = parser.add_argument_group("step 3: pick plane and region")
    s3.add_argument("--plane", help="'board' (default: the board surface) or 'nx,ny,nz,d' (robot frame, mm)")
    s3.add_argument("--pick-offset-mm", help="pick plane height above the bin floor (mm, default 0)")
    s3.add_argument(
        "--roi", help="'image' (whole image), 'u,v;u,v;...' pixels, or 'robot:x,y,z;...' bin corners in mm"
    )
    s4 = parser.add_argument_group("step 4: validation")
    s4.add_argument("--validate-pixel", help="'V' (board point V, default) or 'u,v' image point to touch")
    s4.add_argument("--validate-touch", help="robot coordinates reached 'x,y,z', or 'skip'")


def main(args: argparse.Namespace) -> int:
    w = Wizard(interactive=not args.non_interactive)
    if args.render_board:
        if not args.board:
            raise CommandError("--render-board needs --board")
        try:
            board = load_board(args.board)
        except CalibrationError as exc:
            raise CommandError(str(exc)) from None
        _check_render_path(Path(args.render_board))
        write_image(Path(args.render_board), board.image(10.0, margin_mm=10.0))
        w.say(
            f"wrote {args.render_board} at 10 px/mm: print at 254 dpi (100 %), check a square measures "
            f"{board.square_mm:g} mm"
        )
        return 0
    if args.camera_views is not None and args.camera_views < 1:
        raise CommandError(f"--camera-views {args.camera_views}: expected at least 1 view")
    if not 0 <= args.camera_interval <= 3600:
        raise CommandError(f"--camera-interval {args.camera_interval:g}: expected 0 to 3600 seconds")
    if args.min_corners < 4:
        raise CommandError(f"--min-corners {args.min_corners}: expected at least 4 (a pose needs 4 corners)")
    if args.max_edge_width_px <= 0 or not 0 <= args.max_edge_width_fraction < 1:
        raise CommandError(
            f"--max-edge-width-px {args.max_edge_width_px:g} / --max-edge-width-fraction "
            f"{args.max_edge_width_fraction:g}: expected > 0 px and a share from 0 to below 1"
        )
    # Written into the file as the pass/fail limits: inf is not JSON, and nan or <= 0 would fail
    # every fit with advice to retake good views.
    for flag, value, unit in (
        ("--rms-threshold-px", args.rms_threshold_px, "px"),
        ("--residual-threshold-mm", args.residual_threshold_mm, "mm"),
        ("--hand-eye-tolerance-mm", args.hand_eye_tolerance_mm, "mm"),
    ):
        if not (math.isfinite(value) and value > 0):
            raise CommandError(f"{flag} {value:g}: expected a finite number > 0 ({unit})")
    w.say(f"binpick calibration wizard {__version__}: {STEPS} steps. Ctrl-C stops without writing anything.")
    report = None
    try:
        cell = w.ask("Cell name", args.cell, cell_name, "--cell", "cell")
        out_dir = Path(args.out_dir)
        _check_out_dir(out_dir)
        report = ReportFolder(out_dir, cell)
        _check_report_folders(report)
        board_path, board = choose_board(w, args)
        check_later_answers(args, board)
        poses = read_poses(args)  # before step 1: a typo in the file must not wait for the fits
        return _run_steps(w, args, cell, out_dir, report, board_path, board, poses)
    except KeyboardInterrupt:
        w.say()  # off the prompt line the ^C was typed on
        if report is None or report.written is None:
            if report is not None:
                report.discard()
            w.say("interrupted: nothing was written")
        else:
            w.say(f"interrupted after {report.written} was written")
        return EXIT_INTERRUPTED


def _run_steps(
    w: Wizard,
    args: argparse.Namespace,
    cell: str,
    out_dir: Path,
    report: ReportFolder,
    board_path: Path,
    board: Board,
    poses: PosesFile | None,
) -> int:
    """Steps 1-5. The images go to the report's staging folder until step 5 puts them in place."""
    report.start()
    report_dir = report.staging
    capture = None
    try:
        if args.camera:
            capture = CameraCapture(args.camera, report.final)  # captures are never staged
        camera, intrinsics = step_intrinsics(w, args, board, board_path, report_dir, capture)
        pose, transform, extrinsics, hand_eye, floor_image, centre_px = step_camera_to_robot(
            w, args, board, camera, report_dir, capture, poses
        )
        plane, source, offset, roi, floor = step_plane_and_region(
            w, args, camera, transform, pose, floor_image, report_dir
        )
        validation = step_validation(w, args, floor, centre_px, args.residual_threshold_mm)
    except Stop as stop:
        kept = f"; this run's images are in {report.staging}" if report.staging.is_dir() else ""
        w.say(f"Stopped: {stop}. Nothing was written{kept}.")
        return EXIT_FAILED_CHECK
    except (StepError, GeometryError) as exc:
        raise CommandError(f"{exc}. Nothing was written.") from None
    except CaptureError as exc:
        raise CommandError(str(exc)) from None
    except OSError as exc:  # the report images: a full disk, a folder that cannot be written
        where = f"{exc.filename}: {exc.strerror}" if exc.filename else str(exc)
        raise CommandError(f"{where}. Nothing was written.") from None
    finally:
        if capture is not None:
            capture.close()  # before step 5: the appliance may take the camera back right after
    cal = step_write(
        w,
        cell,
        out_dir,
        report,
        board_path,
        board,
        camera,
        transform,
        plane,
        source,
        offset,
        roi,
        intrinsics,
        extrinsics,
        hand_eye,
        validation,
    )
    return 0 if cal.passed else EXIT_FAILED_CHECK


def check_later_answers(args: argparse.Namespace, board: Board) -> None:
    """Every later step's flags through that step's own parser before step 1 runs.

    Step 1 with full intrinsics and hand-eye take minutes; a typo in --plane or --validate-touch
    must not wait for them. What needs a measurement (robot corners of --roi projected, point V)
    is still done in its step, with the same parser.
    """
    for flag, given, parse in (
        ("--plane", args.plane, parse_plane),
        ("--pick-offset-mm", args.pick_offset_mm, parse_offset),
        ("--roi", args.roi, roi_text),
        ("--validate-pixel", args.validate_pixel, parse_pixel),
        ("--validate-touch", args.validate_touch, parse_touch),
    ):
        if given is not None:
            check_given(flag, given, parse)
    check_touch_flags(args, board)


def _check_report_folders(report: ReportFolder) -> None:
    """A file where the report folder (or its staging folder) goes is refused before step 1."""
    for folder in (report.final, report.staging):
        if folder.exists() and not folder.is_dir():
            raise CommandError(
                f"{folder}: a file where the wizard keeps its report images; expected a folder (move it away)"
            )


def _check_out_dir(out_dir: Path) -> None:
    """Refuse an --out-dir that is (or lies under) a file before any step runs, naming it: the
    first image written would otherwise fail with NotADirectoryError after the technician's work."""
    for folder in (out_dir, *out_dir.parents):
        if folder.exists():
            if not folder.is_dir():
                where = "" if folder == out_dir else f" ({folder} is a file)"
                raise CommandError(
                    f"--out-dir {out_dir}: not a folder{where}; expected a folder to write into"
                )
            return


# Lossless formats only: a JPEG's ringing round the squares' edges is printed with the board.
RENDER_SUFFIXES = (".png", ".tif", ".tiff", ".bmp")


def _check_render_path(path: Path) -> None:
    """Name the flag and the path before rendering: OpenCV's own error names neither."""
    if path.is_dir():
        raise CommandError(f"--render-board {path}: is a folder; expected a .png file to write")
    if path.suffix.lower() not in RENDER_SUFFIXES:
        raise CommandError(
            f"--render-board {path}: expected a .png file (or {', '.join(RENDER_SUFFIXES[1:])}: lossless, "
            "for printing)"
        )
