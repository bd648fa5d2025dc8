"""Step 5 of the wizard, write: everything measured goes into one calibration file, atomically.

The file is validated before it is written (`save_calibration`), the previous one is kept as a
numbered backup, and the exit status says whether every check passed. Right after it, this
run's report images replace the report folder, the old one kept with the same number
(`edge/wizard/report.py`), so the images always describe the file beside them.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import shlex
import signal
import threading
from collections.abc import Iterator
from pathlib import Path

import numpy as np

from binpick_core.errors import CommandError
from edge import __version__
from edge.calibration_file import Calibration, CalibrationError, save_calibration
from edge.geometry import CameraModel, Plane, RigidTransform
from edge.wizard.boards import Board
from edge.wizard.prompts import Wizard
from edge.wizard.report import ReportFolder


def step_write(
    w: Wizard,
    cell: str,
    out_dir: Path,
    report: ReportFolder,
    board_path: Path,
    board: Board,
    camera: CameraModel,
    transform: RigidTransform,
    plane: Plane,
    plane_source: str,
    offset_mm: float,
    roi: np.ndarray | None,
    intrinsics: dict,
    extrinsics: dict,
    hand_eye: dict | None,
    validation: list[dict],
) -> Calibration:
    """Write <out_dir>/<cell>.json (previous file kept), put this run's report images in place
    (previous folder kept), and say where; returns what was written."""
    w.step(5, "write", "")
    cal = Calibration(
        cell=cell,
        image_size=camera.image_size,
        camera_matrix=camera.camera_matrix,
        dist_coeffs=camera.dist_coeffs,
        robot_from_camera=transform.matrix(),
        plane_normal=plane.normal,
        plane_offset_mm=plane.offset,
        pick_height_offset_mm=offset_mm,
        roi_polygon=roi,
        intrinsics_report=intrinsics,
        extrinsics_report=extrinsics,
        plane_source=plane_source,
        board=dict(board.source, file=str(board_path)),
        validation=validation,
        hand_eye=hand_eye,
        created=dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds"),
        wizard_version=__version__,
    )
    path = out_dir / f"{cell}.json"
    problem = None
    with _ctrl_c_deferred():  # the file and its report images change together or not at all
        try:
            backup = save_calibration(cal, path)
        except CalibrationError as exc:
            raise CommandError(f"refusing to write: {exc}") from None
        except OSError as exc:
            raise CommandError(f"cannot write {path}: {exc}") from None
        report.written = path
        try:
            old_images = report.publish(backup)
        except OSError as exc:  # the file is written and valid: say where the images are instead
            problem = f"{exc.filename}: {exc.strerror}" if exc.filename else str(exc)
    w.say(f"Wrote {path}" + (f" (previous file kept as {backup})" if backup else ""))
    if problem is not None:
        w.say(f"  WARNING: the report images stay in {report.staging} ({problem})")
        images = report.staging
    else:
        images = report.final
        if old_images is not None:
            w.say(f"  previous report images kept as {old_images}")
    status = "all checks passed" if cal.passed else "WRITTEN WITH FAILED CHECKS (--accept-failed)"
    w.say(f"  {status}; images in {images}")
    w.say(f"Next: the appliance reads {path}. After a bump, redo steps 2-4 keeping the intrinsics:")
    w.say(f"  {rerun_command(cell, out_dir, path)} ...")
    return cal


@contextlib.contextmanager
def _ctrl_c_deferred() -> Iterator[None]:
    """Hold a Ctrl-C (SIGINT) until the block is done, then raise it: a KeyboardInterrupt between
    writing the file and renaming its report folder would leave the report of the old file beside
    the new one (or none)."""
    if threading.current_thread() is not threading.main_thread():  # only it can set handlers
        yield
        return
    received = []
    previous = signal.signal(signal.SIGINT, lambda *_: received.append(True))
    try:
        yield
    finally:
        signal.signal(signal.SIGINT, previous)
    if received:
        raise KeyboardInterrupt


def rerun_command(cell: str, out_dir: Path, path: Path) -> str:
    """The command that redoes steps 2-4 into the same file, quoted for a shell.

    It names every option that decides where files go (--cell and --out-dir: the file and the
    report folder); followed as printed without --out-dir, the new file would land in the
    default folder and the appliance would go on reading the old one.
    """
    argv = ["binpick", "calibrate", "--cell", cell, "--out-dir", str(out_dir), "--intrinsics-from", str(path)]
    return shlex.join(argv)
