"""Replay a folder of images in name order: for commissioning and regression runs on saved frames."""

from __future__ import annotations

from pathlib import Path

import cv2

from edge.camera.base import CameraError, CameraSource, CorruptFrame, Frame, make_frame


class FolderSource(CameraSource):
    def __init__(self, folder: str, pattern: str = "*.png", loop: bool = True):
        self.folder = Path(folder)
        self.pattern = pattern
        self.loop = loop
        self.name = f"folder:{folder}"
        self.files: list[Path] = []
        self._next = 0
        self._index = 0
        self._corrupt = 0

    def open(self) -> None:
        self.files = sorted(p for p in self.folder.glob(self.pattern) if p.is_file())
        if not self.files:
            raise CameraError(f"{self.folder}: no file matches {self.pattern!r}")

    def grab(self, timeout: float) -> Frame:
        if self._next >= len(self.files):
            if not self.loop:
                raise CameraError(f"{self.folder}: all {len(self.files)} images replayed")
            self._next = 0
        path = self.files[self._next]
        self._next += 1
        self._index += 1
        bgr = cv2.imread(str(path), cv2.IMREAD_COLOR)
        if bgr is None:
            self._corrupt += 1
            raise CorruptFrame(f"{path}: not a decodable image")
        frame = make_frame(cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB), self._index, self.name)
        frame.extras["path"] = str(path)
        return frame

    def status(self) -> dict:
        return {
            "source": self.name,
            "state": "ready",
            "frames": self._index,
            "images": len(self.files),
            "corrupt_frames": self._corrupt,
        }
