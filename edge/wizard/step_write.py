"""Step 5 of the wizard, write: everything measured goes into one calibration file, atomically.

The file is validated before it is written (`save_calibration`), the previous one is kept as a
numbered backup, and the exit status says whether every check passed.
"""

from __future__ import annotations

import datetime as dt
import shlex
from pathlib import Path

import numpy as np

from binpick_core.errors import CommandError
from edge import __version__
from edge.calibration_file import Calibration, CalibrationError, save_calibration
from edge.geometry import CameraModel, Plane, RigidTransform
from edge.wizard.boards import Board
from edge.wizard.prompts import Wizard


def step_write(
    w: Wizard,
    cell: str,
    out_dir: Path,
    report_dir: Path,
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
    """Write <out_dir>/<cell>.json (previous file kept) and say where; returns what was written."""
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
    w.say(f"  {rerun_command(cell, out_dir, path)} ...")
    return cal


def rerun_command(cell: str, out_dir: Path, path: Path) -> str:
    """The command that redoes steps 2-4 into the same file, quoted for a shell.

    It names every option that decides where files go (--cell and --out-dir: the file and the
    report folder); followed as printed without --out-dir, the new file would land in the
    default folder and the appliance would go on reading the old one.
    """
    argv = ["binpick", "calibrate", "--cell", cell, "--out-dir", str(out_dir), "--intrinsics-from", str(path)]
    return shlex.join(argv)
