"""The wizard's report folder: images that describe the calibration file they sit beside.

Steps 1-3 draw their images (`coverage.png`, `undistorted.png`, `floor_points.png`, `roi.png`)
into `<cell>-report.new/` beside the report folder, and the paths they print are those. Step 5,
right after `<cell>.json` is written, keeps the old `<cell>-report/` as `<cell>-report.bak<N>`
(N the json backup's number, so the two describe the same calibration) and renames the new folder
into place. A run that writes nothing (a failed check, an error) leaves `<cell>.json` and
`<cell>-report/` as they were and its images in `<cell>-report.new/`, which the next run replaces;
Ctrl-C removes them.

Camera captures (`capture-<time>/`) are raw material, not report: they are saved straight into
`<cell>-report/` and never staged, so a failed run's views are there for a rerun with `--images`;
when the folder is replaced they move into the new one.
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path

from edge.atomic_file import backup_paths, fsync_dir

CAPTURES = "capture-*"


class ReportFolder:
    """`<out_dir>/<cell>-report` (`final`) and the run's images in progress (`staging`)."""

    def __init__(self, out_dir: Path, cell: str):
        self.final = out_dir / f"{cell}-report"
        self.staging = out_dir / f"{cell}-report.new"
        self.written: Path | None = None  # the calibration file, once step 5 has written it

    def start(self) -> None:
        """Clear what an earlier run that wrote nothing left in `staging` (its captures, if a run was
        cut off while step 5 moved them, go back to `final` first: they are never deleted)."""
        if not self.staging.is_dir():
            return
        for capture in sorted(self.staging.glob(CAPTURES)):
            self.final.mkdir(parents=True, exist_ok=True)
            os.replace(capture, self.final / capture.name)
        shutil.rmtree(self.staging)

    def discard(self) -> None:
        """Ctrl-C: the run's images go (captures are not here, they stay in `final`)."""
        shutil.rmtree(self.staging, ignore_errors=True)

    def publish(self, json_backup: Path | None) -> Path | None:
        """Put this run's images in place as `final`, the old folder kept as a numbered backup
        (returned; None when there was none). Captures in the old folder move to the new one."""
        if not self.staging.is_dir():
            self.staging.mkdir(parents=True)  # a run that drew nothing: the report is still this run's
        backup = None
        if self.final.is_dir():
            for capture in sorted(self.final.glob(CAPTURES)):
                os.replace(capture, self.staging / capture.name)
            backup = self._backup_name(json_backup)
            os.replace(self.final, backup)
        os.replace(self.staging, self.final)
        fsync_dir(self.final.parent)
        return backup

    def _backup_name(self, json_backup: Path | None) -> Path:
        """`<cell>-report.bak<N>`: the json backup's N when that name is free, else the next free N."""
        if json_backup is not None:
            same = self.final.with_name(f"{self.final.name}.bak{json_backup.name.rsplit('.bak', 1)[1]}")
            if not same.exists():
                return same
        taken = [int(b.name.rsplit(".bak", 1)[1]) for b in backup_paths(self.final)]
        return self.final.with_name(f"{self.final.name}.bak{max(taken, default=0) + 1}")
