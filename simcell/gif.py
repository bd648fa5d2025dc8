"""An animated GIF of picking cycles: what the appliance saw and chose, and the product in the air."""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np


class CycleFilm:
    """Collects one panel per attempt: [overlay | camera view at the top of the lift], captioned."""

    def __init__(self, size: tuple[int, int]):
        self.width, self.height = size
        self.frames: list[np.ndarray] = []

    def _fit(self, image: np.ndarray | None) -> np.ndarray:
        if image is None:
            return np.zeros((self.height, self.width, 3), np.uint8)
        if image.shape[:2] != (self.height, self.width):
            image = cv2.resize(image, (self.width, self.height), interpolation=cv2.INTER_AREA)
        return image

    def add(self, record: dict, overlay: np.ndarray | None, view: np.ndarray | None) -> None:
        """`view`: the camera at the top of the lift, or the frame itself when nothing was lifted."""
        left, right = self._fit(overlay).copy(), self._fit(view).copy()
        if record.get("touch_px") and not record.get("lifted"):
            u, v = (round(c) for c in record["touch_px"])
            cv2.circle(right, (u, v), 6, (255, 40, 40), 2, cv2.LINE_AA)
        bar = np.full((34, 2 * self.width, 3), 255, np.uint8)
        text = (
            f"{record['method']} {record['family']} #{record['attempt']}  "
            f"Q1 {record['q1']}  Q2 {record['q2']}  Q3 {record['q3']}  ({record['seal'][:40]})"
        )
        scale = max(0.35, min(0.6, self.width / 900))
        cv2.putText(bar, text, (6, 22), cv2.FONT_HERSHEY_SIMPLEX, scale, (0, 0, 0), 1, cv2.LINE_AA)
        self.frames.append(np.vstack([np.hstack([left, right]), bar]))

    def save(self, path: Path, seconds_per_frame: float = 1.2) -> Path:
        from PIL import Image

        if not self.frames:
            raise ValueError("no cycle was filmed")
        images = [Image.fromarray(f) for f in self.frames]
        path.parent.mkdir(parents=True, exist_ok=True)
        images[0].save(
            path, save_all=True, append_images=images[1:], duration=int(seconds_per_frame * 1000), loop=0
        )
        return path
