"""Snapshots of a cycle (image, maps, result, configuration) in a bounded on-disk ring buffer.

Each snapshot is a folder written under a temporary name and renamed into place, so a reader
(or a power cut) never sees half of one; the oldest folders are deleted beyond `keep`.
"""

from __future__ import annotations

import json
import logging
import shutil
import threading
import time
from pathlib import Path
from typing import TYPE_CHECKING

import cv2
import numpy as np

if TYPE_CHECKING:
    from edge.supervisor import CycleContext, CycleOutcome

log = logging.getLogger(__name__)


class SnapshotRing:
    def __init__(self, folder: str | Path, keep: int):
        self.folder = Path(folder)
        self.keep = keep
        self._lock = threading.Lock()
        self._count = 0

    def save(
        self,
        reason: str,
        rgb: np.ndarray | None,
        boundaries: np.ndarray | None,
        occlusions: np.ndarray | None,
        result: dict,
        config: dict,
        overlay_png: bytes = b"",
    ) -> Path:
        with self._lock:
            self.folder.mkdir(parents=True, exist_ok=True)
            self._count += 1
            now = time.time()  # one clock read: two could straddle a second and sort out of order
            stamp = time.strftime("%Y%m%d-%H%M%S", time.gmtime(now)) + f"-{int(now % 1 * 1e6):06d}"
            name = f"{stamp}-{self._count:06d}-{reason}"
            tmp = self.folder / f".{name}.tmp"
            tmp.mkdir()
            if rgb is not None:
                cv2.imwrite(str(tmp / "rgb.png"), cv2.cvtColor(rgb, cv2.COLOR_RGB2BGR))
            for label, prob in (("boundaries", boundaries), ("occlusions", occlusions)):
                if prob is not None:
                    cv2.imwrite(str(tmp / f"{label}.png"), _to_u8(prob))
            if overlay_png:
                (tmp / "overlay.png").write_bytes(overlay_png)
            (tmp / "result.json").write_text(json.dumps(result, indent=2, default=str))
            (tmp / "config.json").write_text(json.dumps(config, indent=2, default=str))
            final = self.folder / name
            tmp.rename(final)
            self._prune()
            return final

    def _prune(self) -> None:
        snapshots = sorted(p for p in self.folder.iterdir() if p.is_dir() and not p.name.startswith("."))
        for old in snapshots[: max(0, len(snapshots) - self.keep)]:
            shutil.rmtree(old, ignore_errors=True)

    def list(self) -> list[str]:
        if not self.folder.is_dir():
            return []
        return sorted(p.name for p in self.folder.iterdir() if p.is_dir() and not p.name.startswith("."))


def _to_u8(prob: np.ndarray) -> np.ndarray:
    if prob.dtype == np.uint8:
        return prob
    return (np.clip(np.nan_to_num(prob), 0.0, 1.0) * 255.0 + 0.5).astype(np.uint8)


def save_cycle_snapshot(
    ring: SnapshotRing,
    reason: str,
    last: tuple[CycleContext, CycleOutcome] | None,
    outcome: CycleOutcome | None,
    config: dict,
    overlay_png: bytes = b"",
) -> Path:
    """Save one cycle into `ring`: `last` is the supervisor's last cycle ((frame, maps, ranking),
    outcome) or None; `outcome` (else the last one's) gives the result written beside it."""
    frame = maps = None
    if last is not None:
        (frame, maps, _), last_outcome = last
        outcome = outcome or last_outcome
    result = {}
    if outcome is not None:
        result = {"error": outcome.error, "message": outcome.message, **vars(outcome.result)}
    return ring.save(
        reason,
        None if frame is None else frame.rgb,
        None if maps is None else maps.boundaries,
        None if maps is None else maps.occlusions,
        result,
        config,
        overlay_png,
    )
