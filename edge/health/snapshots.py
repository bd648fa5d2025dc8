"""Snapshots of a cycle (image, maps, result, configuration) in a bounded on-disk ring buffer.

Each snapshot is a folder written under a temporary name and renamed into place, so a reader
(or a power cut) never sees half of one. The oldest folders are deleted beyond `keep - 1` before
each write, so a ring that fills its disk makes room for the new one first. A write that fails
(a full disk) removes its temporary folder and raises one `OSError`: images are encoded in memory
(`cv2.imencode`) and written by Python, so libpng prints nothing of its own. Temporary folders
left by a crash or a power cut are swept at the first snapshot and after a failed one.

A failure snapshot holds only what its cycle had (`save_cycle_snapshot`): a cycle that got no
image (`camera_lost`, `no_image`) leaves `result.json` and `config.json`, with the time and a
reference to the last cycle that had one, never that cycle's pictures. `FailureStreaks` keeps a
long run of the same error from filling the ring with copies of one fault.
"""

from __future__ import annotations

import json
import logging
import shutil
import threading
import time
from dataclasses import dataclass
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
        self._swept = False

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
        """Write one snapshot folder; OSError (nothing left behind) when it cannot be written."""
        files: dict[str, bytes] = {}
        if rgb is not None:
            files["rgb.png"] = _png(cv2.cvtColor(rgb, cv2.COLOR_RGB2BGR))
        for label, prob in (("boundaries", boundaries), ("occlusions", occlusions)):
            if prob is not None:
                files[f"{label}.png"] = _png(_to_u8(prob))
        if overlay_png:
            files["overlay.png"] = overlay_png
        files["result.json"] = json.dumps(result, indent=2, default=str).encode()
        files["config.json"] = json.dumps(config, indent=2, default=str).encode()
        with self._lock:
            self.folder.mkdir(parents=True, exist_ok=True)
            if not self._swept:
                self._sweep()  # what a crash or a power cut left half-written
                self._swept = True
            self._prune(self.keep - 1)  # room for this one first: a ring that fills its disk still turns
            self._count += 1
            now = time.time()  # one clock read: two could straddle a second and sort out of order
            stamp = time.strftime("%Y%m%d-%H%M%S", time.gmtime(now)) + f"-{int(now % 1 * 1e6):06d}"
            name = f"{stamp}-{self._count:06d}-{reason}"
            tmp = self.folder / f".{name}.tmp"
            try:
                tmp.mkdir()
                for file, data in files.items():
                    (tmp / file).write_bytes(data)
                final = self.folder / name
                tmp.rename(final)
            except BaseException:
                self._sweep()  # this one's partial files, and any other leftover
                raise
            return final

    def _prune(self, keep: int) -> None:
        snapshots = sorted(p for p in self.folder.iterdir() if p.is_dir() and not p.name.startswith("."))
        for old in snapshots[: max(0, len(snapshots) - keep)]:
            shutil.rmtree(old, ignore_errors=True)

    def _sweep(self) -> None:
        """Remove temporary folders (`.NAME.tmp`): a failed or interrupted write's remains."""
        try:
            leftovers = [p for p in self.folder.iterdir() if p.name[:1] == "." and p.name.endswith(".tmp")]
        except OSError:
            return
        for path in leftovers:
            if path.is_dir() and not path.is_symlink():
                shutil.rmtree(path, ignore_errors=True)

    def list(self) -> list[str]:
        if not self.folder.is_dir():
            return []
        return sorted(p.name for p in self.folder.iterdir() if p.is_dir() and not p.name.startswith("."))


def _png(image: np.ndarray) -> bytes:
    ok, data = cv2.imencode(".png", image)
    if not ok:
        raise ValueError(f"cannot encode a {image.dtype} {image.shape} image as PNG")
    return data.tobytes()


def _to_u8(prob: np.ndarray) -> np.ndarray:
    if prob.dtype == np.uint8:
        return prob
    return (np.clip(np.nan_to_num(prob), 0.0, 1.0) * 255.0 + 0.5).astype(np.uint8)


def save_cycle_snapshot(
    ring: SnapshotRing,
    reason: str,
    cycle: tuple[CycleContext, CycleOutcome] | None,
    outcome: CycleOutcome | None,
    config: dict,
    overlay_png: bytes = b"",
    earlier: tuple[CycleContext, CycleOutcome] | None = None,
) -> Path:
    """Save one cycle into `ring`. `cycle` is ((frame, maps, ranking), outcome) of the cycle whose
    pictures are saved, or None: a cycle that got no image (`camera_lost`, `no_image`) saves none.
    `outcome` (else the cycle's own) is the result written in result.json, with the snapshot's
    time, the sequence and the frame's capture time. `earlier`, for a cycle without an image, is
    the last cycle that had one: result.json names it (sequence, error, capture time), its
    pictures are not copied (they are not what the failed cycle saw)."""
    frame = maps = None
    if cycle is not None:
        (frame, maps, _), own = cycle
        outcome = outcome or own
    result: dict = {"time": _utc(time.time())}
    if outcome is not None:
        published = vars(outcome.result)
        result.update(
            sequence=outcome.sequence, error=outcome.error, message=outcome.message,
            error_code=published["error"],
            **{k: v for k, v in published.items() if k != "error"},
        )  # fmt: skip
    if frame is not None:
        result["captured_at"] = _utc(frame.captured_wall)
    elif earlier is not None:
        (earlier_frame, _, _), earlier_outcome = earlier
        result["image"] = None
        result["last_image_cycle"] = {
            "sequence": earlier_outcome.sequence,
            "error": earlier_outcome.error,
            "captured_at": _utc(earlier_frame.captured_wall),
        }
    return ring.save(
        reason,
        None if frame is None else frame.rgb,
        None if maps is None else maps.boundaries,
        None if maps is None else maps.occlusions,
        result,
        config,
        overlay_png,
    )


def _utc(t: float) -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(t)) + f".{int(t % 1 * 1e3):03d}Z"


@dataclass
class FailureStreaks:
    """Which failed cycles get a failure snapshot. A streak is a run of cycles failing with the
    same error, no other outcome between; it gets a snapshot at its start and then after 1, 2, 4,
    8... minutes (`first_gap_s` doubling), so that a camera lost for an hour writes 7 snapshots
    (a day: 12) instead of one per `min_interval_s`, and the evidence of earlier faults stays in
    the ring. `min_interval_s` (`health.snapshot_min_interval_s`) applies on top, across errors.
    Times are monotonic seconds; the cycle thread alone calls it."""

    min_interval_s: float
    first_gap_s: float = 60.0
    error: str = ""
    started: float = 0.0
    next_due: float = 0.0
    last_taken: float = float("-inf")

    def due(self, error: str, now: float) -> bool:
        """A cycle failed with `error` at `now`: True (and noted) when it gets a snapshot."""
        if error != self.error:
            self.error, self.started, self.next_due = error, now, now
        if now < self.next_due or now - self.last_taken < self.min_interval_s:
            return False
        self.last_taken = now
        self.next_due = self.started + max(self.first_gap_s, 2.0 * (now - self.started))
        return True

    def ok(self) -> None:
        """A cycle succeeded: the streak is over (the next failure starts a new one)."""
        self.error = ""
