"""A continuously reading source with a watchdog: the wrapper for drivers without read timeouts.

OpenCV's `VideoCapture.read` over RTSP/GStreamer/HTTP (and some GenICam transports) can block
forever. A worker thread therefore owns one connection and reads as fast as frames come; a
watchdog thread notices when no frame arrived for `timeout_s`, abandons that worker (its handle
is released from a helper thread, the worker is left to die when the driver returns) and opens a
new connection after an exponential backoff. `grab` hands out the first frame captured after
the call, so a triggered cycle never sees an image older than its trigger.

A camera that stays lost fails every reopen (every `backoff_max_s`): its first failure is logged
at WARNING, the next ones once a minute with their count (`HostLogLimit`, the rest at DEBUG), and
its return at INFO with how long it was down; the status page counts every reopen.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from typing import Protocol

import numpy as np

from edge.camera.base import CameraError, CameraLost, CameraSource, CorruptFrame, Frame, make_frame
from edge.log_limit import LOG_INTERVAL_S, HostLogLimit

log = logging.getLogger(__name__)
MAX_CONSECUTIVE_BAD_FRAMES = 5


class Connection(Protocol):
    def read(self) -> np.ndarray | tuple[np.ndarray, np.ndarray] | None:
        """Block for the next RGB frame (or an (RGB, depth in metres) pair from an RGB-D
        camera); None when the stream ended or failed."""

    def release(self) -> None: ...


class StreamingSource(CameraSource):
    def __init__(
        self,
        name: str,
        connect: Callable[[], Connection],
        timeout_s: float,
        backoff_initial_s: float,
        backoff_max_s: float,
    ):
        self.name = name
        self._connect = connect
        self.timeout_s = timeout_s
        self.backoff_initial_s = backoff_initial_s
        self.backoff_max_s = backoff_max_s
        self._cond = threading.Condition()
        self._latest: Frame | None = None
        self._index = 0
        self._generation = 0
        self._stop = threading.Event()
        self._watchdog: threading.Thread | None = None
        self._state = "opening"
        self._last_error = ""
        self._reopens = 0
        self._corrupt = 0
        self._last_activity = time.monotonic()
        self._worker_alive = False
        self._threads: list[threading.Thread] = []
        self._log_limit = HostLogLimit()
        self._down_since: float | None = None  # the outage under way (monotonic), None while streaming
        self._down_failures = 0  # failed connections in that outage
        self._down_logged = False  # a line said it is down: one says when it is back
        self._unlogged = 0  # failures since the last line

    # ---------------------------------------------------------------- lifecycle
    def open(self) -> None:
        self._stop.clear()
        self._watchdog = threading.Thread(
            target=self._watch, name=f"camera-watchdog[{self.name}]", daemon=True
        )
        self._watchdog.start()

    def close(self) -> None:
        """Stop reading and wait (bounded) for every driver thread to let go of its handle."""
        self._stop.set()
        with self._cond:
            self._generation += 1
            self._cond.notify_all()
        deadline = time.monotonic() + self.timeout_s + 2.0
        for thread in [self._watchdog, *self._threads]:
            if thread is not None:
                thread.join(timeout=max(0.0, deadline - time.monotonic()))
        self._watchdog = None
        self._threads = [t for t in self._threads if t.is_alive()]
        if self._threads:
            log.warning(
                "camera %s: %d driver thread(s) still blocked after close", self.name, len(self._threads)
            )

    def lingering_threads(self) -> int:
        return sum(t.is_alive() for t in self._threads)

    def _watch(self) -> None:
        failures = 0
        backoff = self.backoff_initial_s
        while not self._stop.is_set():
            with self._cond:
                alive = self._worker_alive
                idle = time.monotonic() - self._last_activity
                if self._state == "streaming":
                    failures, backoff = 0, self.backoff_initial_s
            if not alive:
                if failures:
                    self._set_state("reopening")
                    if self._stop.wait(backoff):
                        return
                    backoff = min(backoff * 2, self.backoff_max_s)
                failures += 1
                self._start_worker()
            elif idle > self.timeout_s:
                self._abandon(f"no frame for {idle:.1f} s (timeout {self.timeout_s:g} s)")
            self._stop.wait(min(0.05, self.timeout_s / 4))

    def _start_worker(self) -> None:
        with self._cond:
            self._generation += 1
            generation = self._generation
            self._worker_alive = True
            self._last_activity = time.monotonic()
        thread = threading.Thread(
            target=self._work, args=(generation,), name=f"camera-reader[{self.name}]", daemon=True
        )
        self._threads = [t for t in self._threads if t.is_alive()] + [thread]
        thread.start()

    def _abandon(self, reason: str) -> None:
        with self._cond:
            self._generation += 1
            self._mark_down(reason)
        self._log_failure(f"lost: {reason}; reopening")

    def _log_failure(self, what: str) -> None:
        """A connection failed (open, read or watchdog): the first of an outage is logged, the
        next once a minute with their count, the others at DEBUG."""
        with self._cond:
            if self._down_since is None:
                self._down_since, self._down_failures = time.monotonic(), 0
            self._down_failures += 1
            self._unlogged += 1
            logged = self._log_limit.first(self.name, "down")
            if logged:
                count, self._unlogged, self._down_logged = self._unlogged, 0, True
                down_s = time.monotonic() - self._down_since
        if not logged:
            log.debug("camera %s: %s", self.name, what)
        elif count > 1:
            log.warning(
                "camera %s: %s (%d failures since the last line; down for %.0f s)",
                self.name, what, count, down_s,
            )  # fmt: skip
        else:
            log.warning(
                "camera %s: %s (while it stays down, this is logged once per %.0f s)",
                self.name, what, LOG_INTERVAL_S,
            )  # fmt: skip

    def _back(self) -> str:
        """The first frame after an outage (caller holds `_cond`): the line to log at INFO when
        the outage's start was logged, else ""."""
        failures, logged = self._down_failures, self._down_logged
        down_s = time.monotonic() - (self._down_since or time.monotonic())
        self._down_since, self._down_failures, self._down_logged, self._unlogged = None, 0, False, 0
        if not logged:
            return ""
        return f"camera {self.name} streaming again after {down_s:.1f} s down ({failures} failed connections)"

    def _mark_down(self, reason: str) -> None:
        """The current connection is gone (caller holds `_cond`); the watchdog reopens."""
        self._worker_alive = False
        self._last_error = reason
        self._state = "down"
        self._reopens += 1
        self._cond.notify_all()

    def _work(self, generation: int) -> None:
        connection = None
        failures = 0
        try:
            connection = self._connect()
            while not self._stop.is_set() and generation == self._generation:
                image = connection.read()
                if generation != self._generation:
                    return
                try:
                    if image is None:
                        raise CorruptFrame(f"{self.name}: read failed (undecodable frame or end of stream)")
                    depth = None
                    if isinstance(image, tuple):  # an RGB-D connection: (rgb, depth in metres)
                        image, depth = image
                    frame = make_frame(image, 0, self.name, depth_m=depth)
                except CorruptFrame as exc:
                    # One bad frame (a garbled JPEG in an MJPEG stream) is skipped; a run of them
                    # means the stream is gone (or a video file ended): reconnect.
                    failures += 1
                    with self._cond:
                        self._corrupt += 1
                        self._last_error = self._reason(exc)
                    if failures >= MAX_CONSECUTIVE_BAD_FRAMES:  # with the reason: it may never change
                        raise CameraLost(
                            f"{failures} failed reads in a row, the last: {self._reason(exc)}"
                        ) from exc
                    continue
                failures = 0
                with self._cond:
                    self._index += 1
                    frame.index = self._index
                    self._latest = frame
                    self._last_activity = frame.captured_mono
                    self._state = "streaming"
                    back = "" if self._down_since is None else self._back()
                    self._cond.notify_all()
                if back:
                    log.info("%s", back)
        except Exception as exc:  # a driver error ends this connection; the watchdog reopens
            reason = self._reason(exc)
            with self._cond:
                current = generation == self._generation
                if current:
                    self._mark_down(reason)
            if current:
                self._log_failure(reason)
            else:  # an abandoned connection's end: its loss was logged when it was abandoned
                log.debug("camera %s (abandoned connection): %s", self.name, reason)
        finally:
            if connection is not None:
                _release_quietly(connection)  # in this thread: its read has returned, the handle is free
            with self._cond:
                if generation == self._generation and self._worker_alive and not self._stop.is_set():
                    self._worker_alive = False
                    self._state = "down"

    def _reason(self, exc: BaseException) -> str:
        """`exc`'s message without a leading source name: the log line and `grab`'s message
        name the source once themselves."""
        return str(exc).removeprefix(f"{self.name}: ")

    def _set_state(self, state: str) -> None:
        with self._cond:
            self._state = state

    # ---------------------------------------------------------------- frames
    def grab(self, timeout: float) -> Frame:
        start = time.monotonic()
        deadline = start + timeout
        with self._cond:
            while True:
                frame = self._latest
                if frame is not None and frame.captured_mono >= start:
                    return frame
                remaining = deadline - time.monotonic()
                if remaining <= 0 or self._stop.is_set():
                    break
                self._cond.wait(remaining)
            state, error = self._state, self._last_error
        if state != "streaming":
            raise CameraLost(f"{self.name}: source {state} ({error or 'no frame yet'})")
        raise CameraError(f"{self.name}: no new frame within {timeout:.2f} s")

    def status(self) -> dict:
        with self._cond:
            age = time.monotonic() - self._latest.captured_mono if self._latest else None
            return {
                "source": self.name,
                "state": self._state,
                "frames": self._index,
                "reopens": self._reopens,
                "corrupt_frames": self._corrupt,
                "last_error": self._last_error,
                "last_frame_age_s": None if age is None else round(age, 3),
            }


def _release_quietly(connection: Connection) -> None:
    try:
        connection.release()
    except Exception as exc:  # releasing a dead driver handle must not take anything down
        log.debug("release failed: %s", exc)
