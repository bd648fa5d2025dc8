"""Capturing calibration views from the appliance's own camera (`binpick calibrate --camera`).

The wizard opens the source the appliance will run on, configured by the same file and validated
by the same loader, so the intrinsics belong to the very camera, resolution and pipeline that
later produce the grasp pixels. Every captured frame is saved as a lossless PNG in the session's
report folder: the run can be repeated from that folder (`--images`, `--floor-image`) and the
views can be inspected after the fact.
"""

from __future__ import annotations

import datetime as dt
import logging
from pathlib import Path

import cv2
import numpy as np

from edge.camera import CameraError, CameraSource, CorruptFrame, open_camera
from edge.config import CameraSection, ConfigError, load_config

# What a technician checks when a source does not open or stops delivering, by camera.source.
CHECK = {
    "folder": "camera.folder and camera.pattern",
    "opencv": "camera.uri, the cable or network, and that nothing else (binpick run) holds the camera",
    "genicam": "camera.cti, camera.serial, the cable and the camera's power",
    "simulated": "that Mikado is installed (pip install .[sim]) or choose another camera.source",
}
# Streaming sources connect in the background: the first frame may take the connection time
# on top of the frame time, so a grab waits this many times camera.timeout_s before giving up.
GRAB_TIMEOUT_FACTOR = 2.0


class CaptureError(RuntimeError):
    """The camera cannot be opened or gave no frame; one line naming the source and what to check."""


class CameraCapture:
    """The configured camera, opened on the first capture (a run that needs no frame never opens it)."""

    def __init__(self, config_path: str | Path, folder: Path):
        try:
            # A required calibration file may not exist yet: this wizard is what writes it.
            config = load_config(config_path, check_calibration=False)
        except ConfigError as exc:
            raise CaptureError(str(exc)) from None
        self.config_path = config.source
        self.cfg: CameraSection = config.camera
        self.source: CameraSource = open_camera(self.cfg)  # built, not opened: the loader checked it
        # The sources log each reconnect attempt for the appliance's journal; at the wizard's
        # terminal they would bury the prompts, and a failure ends in one line of its own.
        logging.getLogger("edge.camera").setLevel(logging.ERROR)
        stamp = dt.datetime.now().strftime("%Y%m%d-%H%M%S")
        self.folder = folder / f"capture-{stamp}"  # one folder per session: reruns never mix views
        self.views = self.folder / "views"  # apart from floor.png, which is no intrinsics view
        self._opened = False

    @property
    def name(self) -> str:
        return self.source.name

    def _problem(self, what: str) -> str:
        hint = CHECK.get(self.cfg.source, "the [camera] section")
        return f"camera {self.source.name}: {what}; check {hint} in {self.config_path}"

    def grab(self) -> np.ndarray:
        """A fresh BGR frame (the wizard's and OpenCV's order). CorruptFrame passes through: the
        caller refuses that one view and goes on, as the folder path does for an unreadable file."""
        if not self._opened:
            try:
                self.source.open()
            except CameraError as exc:
                raise CaptureError(self._problem(f"cannot be opened ({self._detail(exc)})")) from None
            self._opened = True
        timeout = GRAB_TIMEOUT_FACTOR * self.cfg.timeout_s
        try:
            frame = self.source.grab(timeout)
        except CorruptFrame:
            raise
        except CameraError as exc:
            problem = f"no frame within {timeout:g} s ({self._detail(exc)})"
            raise CaptureError(self._problem(problem)) from None
        return cv2.cvtColor(frame.rgb, cv2.COLOR_RGB2BGR)

    def save(self, name: str, image: np.ndarray) -> Path:
        """Keep a captured frame (PNG: lossless, so a rerun from the folder judges the same pixels)."""
        path = self.folder / name
        path.parent.mkdir(parents=True, exist_ok=True)
        if not cv2.imwrite(str(path), image):
            raise CaptureError(f"cannot write {path}")
        return path

    def close(self) -> None:
        if self._opened:
            self.source.close()
            self._opened = False

    def _detail(self, exc: BaseException) -> str:
        """The source's own message on one line, without repeating the source's name."""
        text = " ".join(str(exc).split())
        return text.removeprefix(f"{self.source.name}: ")
