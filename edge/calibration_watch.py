"""The calibration the cycle uses, reloaded when the wizard replaces the file.

The wizard writes the calibration file atomically (`edge.calibration_file.save_calibration`):
the cycle calls `refresh` once per cycle (one `stat`) and a commissioning run takes effect
without restarting the appliance. A change is any change of the file's identity, size, mtime or
ctime (`_FileState`), not of the mtime alone. A missing file is pixel mode, or a failed cycle
where `[calibration] required` says so. A file that is there but cannot be used (an editor's save
caught half-written, a field that fails validation, another image size than the camera's, a
folder, unreadable) is refused in one log line and the calibration loaded before stays in use;
with none loaded before, it is pixel mode or failed cycles, as for a missing file. A file for
another image size than the camera's frames is judged frame by frame: the one in use before it
stays in use for frames of its own size, and the new file is taken up by the first frame of its
size. A frame of another size than any calibration's is in pixel mode for that frame only. A
file written with `binpick calibrate --accept-failed` (its checks failed) is used, with one
WARNING naming what failed, and `failed_checks` says so to the page while it is in use. Where
`[calibration] cell` names the cell, a file written for another cell is refused like an invalid one.
"""

from __future__ import annotations

import logging
import os
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from edge.calibration_file import Calibration

log = logging.getLogger("binpick")

# What `refresh` compares between cycles: (device, inode, size, mtime ns, ctime ns) of the file;
# None when it is missing; the OS error's text when it cannot be looked at. The mtime alone
# missed a file put in place with the old one's mtime (`cp -p`, `rsync -t`, tar) or rewritten
# within one timestamp tick (4 ms with coarse kernel timestamps, 1-2 s on some filesystems):
# the rename gives a new inode, a rewrite a new size or ctime, and utime() a new ctime.
_FileState = tuple[int, int, int, int, int] | str | None
_NEVER_SEEN = "<never looked at>"  # the first refresh always loads


class CalibrationWatcher:
    """Watches the calibration file and reloads it when it changes on disk (the wizard replaces
    it atomically); `current` is the calibration this cycle's frame uses, or None (pixel mode);
    `error` says what is wrong, with the file on disk (also while the calibration loaded before
    it stays in use) or with this frame's size."""

    def __init__(self, path: str, required: bool, cell: str = ""):
        self.path = path
        self.required = required
        self.cell = cell  # the cell a file must be for ("" = any)
        self.current: Calibration | None = None
        self.error = ""
        # The newest calibration read from the file, and the one in use before it (kept while the
        # newest is for another image size than the camera's frames). Which applies is decided per
        # frame, by its size: judging a new file against the last frame's size refused a good file
        # for good after one odd frame.
        self._loaded: Calibration | None = None
        self._before: Calibration | None = None
        self._in_use: Calibration | None = None  # the one frames used since the last load
        self._file_error = ""  # what is wrong with the file on disk, "" when it is `_loaded`
        self._size_warned: tuple[int, int] | None = None  # the other frame size last warned about
        self._before_warned = False  # `_before` stands in for `_loaded`: said once per file
        self._say_back = False  # a size warning's "in use again" line is still due
        self._seen: _FileState = _NEVER_SEEN
        self.refresh()

    def refresh(self) -> None:
        if not self.path:
            return
        seen = _file_state(self.path)
        if seen == self._seen:
            return
        self._seen = seen
        if seen is None:
            self._loaded = self._before = self._in_use = self.current = None
            self.error = self._file_error = f"{self.path}: calibration file not found"
            self._warn()
            return
        try:
            from edge.calibration_file import load_calibration

            calibration = load_calibration(self.path)
        except Exception as exc:  # CalibrationError names the field; anything else is reported too
            self._refuse(str(exc))
            return
        other = calibration.other_cell(self.cell)
        if other:
            self._refuse(f"{self.path}: {other}")
            return
        # the one a frame used since the last load, else the last loaded (no frame came between)
        self._before = self._in_use or self._loaded or self._before
        self._in_use = None
        self._loaded = self.current = calibration
        self.error = self._file_error = ""
        self._size_warned, self._before_warned, self._say_back = None, False, False
        note = calibration.failed_checks_note()
        if note:  # used all the same: the technician accepted it knowingly, but it must show
            log.warning("calibration loaded from %s, but it %s; grasps use it all the same", self.path, note)
        else:
            log.info("calibration loaded from %s", self.path)

    def match_frame(self, width: int, height: int) -> None:
        """The calibration for a frame of `width` x `height`: its intrinsics and ROI are in its
        image size's pixels, so another size would put every grasp in wrong millimetres without
        any error. The file's calibration when it has that size; else the one in use before it,
        when the new file is for another size than the camera's (refused, said once); else none
        for this frame (pixel mode, or a failed cycle where it is required), and the next frame
        at the calibrated size uses it again (the camera set back, a replay folder's odd picture
        passed) without the file having to change. Warned once per other size and loaded file."""
        size = (width, height)
        loaded, before = self._loaded, self._before
        if loaded is None:
            return
        if tuple(loaded.image_size) == size:
            if self._say_back:
                log.info("%s: the camera delivers %dx%d again; calibration in use", self.path, width, height)
            self._use(loaded, self._file_error)
            return
        if before is not None and tuple(before.image_size) == size:
            error = self._size_error(loaded, width, height)
            if not self._before_warned:
                self._before_warned = True
                self._say_refused(error, before)
            self._use(before, error)
            return
        self.current = None
        self.error = self._size_error(loaded, width, height)
        if self._size_warned != size:
            self._size_warned, self._say_back = size, True
            self._warn()

    def _use(self, calibration: Calibration, error: str) -> None:
        self.current = self._in_use = calibration
        self.error, self._say_back = error, False

    def _size_error(self, calibration: Calibration, width: int, height: int) -> str:
        w, h = calibration.image_size
        return (
            f"{self.path}: calibration is for {w}x{h} images but the camera delivers {width}x{height}; "
            "recalibrate at this size (binpick calibrate) or set the camera back to it"
        )

    def _refuse(self, error: str) -> None:
        """A file that is there but cannot be used. A running cell keeps the calibration it has:
        an editor's save seen half-written, or a wrong file put in place, must not turn the next
        grasps into pixels (or failed cycles) while the technician corrects it."""
        self.error = self._file_error = error
        kept = self._in_use or self._loaded
        if kept is None:
            self._warn()
            return
        self._say_refused(error, kept)

    @staticmethod
    def _say_refused(error: str, kept: Calibration) -> None:
        log.warning(
            "%s; calibration file refused, the one loaded before stays in use (cell %s, created %s)",
            error, kept.cell, kept.created or "?",
        )  # fmt: skip

    def _warn(self) -> None:
        mode = "cycles fail with calibration_missing" if self.required else "running in pixel mode"
        log.warning("%s; %s", self.error, mode)

    @property
    def failed_checks(self) -> list[str]:
        """The checks that the calibration in use failed when it was written (`--accept-failed`);
        empty when it passed them all or none is in use. The page and /metrics show them."""
        return [] if self.current is None else self.current.failed_checks()

    @property
    def pixel_mode(self) -> bool:
        return self.current is None

    @property
    def file_unusable(self) -> bool:
        """No calibration from the file at all (missing, invalid, or none configured), whatever
        size the next frame has."""
        return self._loaded is None and self._before is None


def _file_state(path: str) -> _FileState:
    """The `_FileState` of `path` now (one `stat`)."""
    try:
        st = os.stat(path)
    except FileNotFoundError:
        return None
    except OSError as exc:  # there, but not to be looked at (a folder's permissions): load says why
        return f"{type(exc).__name__}: {exc}"
    return (st.st_dev, st.st_ino, st.st_size, st.st_mtime_ns, st.st_ctime_ns)
