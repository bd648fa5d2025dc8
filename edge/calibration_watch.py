"""The calibration the cycle uses, reloaded when the wizard replaces the file.

The wizard writes the calibration file atomically (`edge.calibration_file.save_calibration`),
so a changed mtime means a whole new file: the cycle calls `refresh` once per cycle (one
`stat`) and a commissioning run takes effect without restarting the appliance. A missing or
invalid file is pixel mode, or a failed cycle where `[calibration] required` says so.
"""

from __future__ import annotations

import logging
import os

log = logging.getLogger("binpick")


class CalibrationWatcher:
    """Watches the calibration file and reloads it when it changes on disk (the wizard replaces
    it atomically); `current` is the loaded `edge.calibration_file.Calibration` or None (pixel
    mode)."""

    def __init__(self, path: str, required: bool):
        self.path = path
        self.required = required
        self.current = None
        self.error = ""
        # The file's calibration, kept while a frame of another size sets `current` to None, so
        # that the next frame at its size uses it again (the file has not changed).
        self._loaded = None
        self._size_warned: tuple[int, int] | None = None  # the other size last warned about
        self._say_back = False  # that warning's "in use again" line is still due
        self._mtime: float | None = -1.0  # never a real mtime: the first refresh always loads
        self.refresh()

    def refresh(self) -> None:
        if not self.path:
            return
        try:
            mtime = os.stat(self.path).st_mtime
        except OSError:
            mtime = None
        if mtime == self._mtime:
            return
        self._mtime = mtime
        if mtime is None:
            self.current, self.error = None, f"{self.path}: calibration file not found"
        else:
            try:
                from edge.calibration_file import load_calibration

                self.current, self.error = load_calibration(self.path), ""
                log.info("calibration loaded from %s", self.path)
            except Exception as exc:  # CalibrationError names the field; anything else is reported too
                self.current, self.error = None, str(exc)
        self._loaded, self._size_warned, self._say_back = self.current, None, False
        if self.error:
            self._warn()

    def match_frame(self, width: int, height: int) -> None:
        """Set aside a calibration made for another image size: its intrinsics and ROI are in that
        size's pixels, so every grasp would come out in wrong millimetres without any error.
        This frame is treated like an invalid file (pixel mode, or a failed cycle where it is
        required); the next frame at the calibrated size uses it again (the camera set back, a
        replay folder's odd picture passed) without the file having to change. Warned once per
        other size and loaded file (a folder alternating sizes is not one warning per frame)."""
        loaded = self._loaded
        if loaded is None:
            return
        if tuple(loaded.image_size) == (width, height):
            if self._say_back:
                log.info("%s: the camera delivers %dx%d again; calibration in use", self.path, width, height)
            self.current, self.error, self._say_back = loaded, "", False
            return
        w, h = loaded.image_size
        self.current = None
        self.error = (
            f"{self.path}: calibration is for {w}x{h} images but the camera delivers {width}x{height}; "
            "recalibrate at this size (binpick calibrate) or set the camera back to it"
        )
        if self._size_warned != (width, height):
            self._size_warned, self._say_back = (width, height), True
            self._warn()

    def _warn(self) -> None:
        mode = "cycles fail with calibration_missing" if self.required else "running in pixel mode"
        log.warning("%s; %s", self.error, mode)

    @property
    def pixel_mode(self) -> bool:
        return self.current is None

    @property
    def file_unusable(self) -> bool:
        """No calibration from the file at all (missing, invalid, or none configured), whatever
        size the next frame has."""
        return self._loaded is None
