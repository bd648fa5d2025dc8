"""The live annotated image, pushed to every viewer as it is published, for one encode per frame.

The cycle thread only calls `publish` (a counter bump and a notify: microseconds). The first
viewer thread that wants the new frame draws and encodes it (the overlay and a JPEG, a few ms)
under a lock; every other viewer gets the same bytes. With no viewer nothing is drawn at all,
so an unwatched appliance pays nothing for its page.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from dataclasses import dataclass


@dataclass(frozen=True)
class Published:
    version: int  # counts publications since start (0 = none yet)
    sequence: int  # the register sequence_id of the cycle that produced the image
    time: float  # wall-clock time of publication (seconds)
    error: str  # the cycle's outcome ("ok" or an error name)


class FrameHub:
    def __init__(self, render: Callable[[], bytes]):
        self._render = render
        self._cond = threading.Condition()
        self.latest = Published(0, 0, 0.0, "")
        self._encoded: tuple[int, bytes] = (0, b"")
        self._encode_lock = threading.Lock()
        self.encodes = 0  # frames drawn and encoded (benchmarks check one per publication)
        self.viewers = 0
        self.closed = False  # set by wake_all (server shutdown): waits return, streams end

    def publish(self, sequence: int, error: str = "ok") -> None:
        with self._cond:
            self.latest = Published(self.latest.version + 1, sequence, time.time(), error)
            self._cond.notify_all()

    def wait(self, after: int, timeout: float) -> Published:
        """The latest publication once its version exceeds `after` (or the current one on timeout)."""
        with self._cond:
            self._cond.wait_for(lambda: self.latest.version > after or self.closed, timeout)
            return self.latest

    def wake_all(self) -> None:
        """Release every waiting viewer, now and from then on (server shutdown)."""
        with self._cond:
            self.closed = True
            self._cond.notify_all()

    def jpeg(self) -> tuple[Published, bytes]:
        """The latest publication and its JPEG, drawn once and shared by all viewers."""
        with self._encode_lock:
            latest = self.latest
            if self._encoded[0] != latest.version:
                self._encoded = (latest.version, self._render() if latest.version else b"")
                self.encodes += 1
            return latest, self._encoded[1]

    def viewer(self, delta: int) -> None:
        with self._cond:
            self.viewers += delta
