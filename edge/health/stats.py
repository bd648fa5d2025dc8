"""Cycle statistics shared by the status page, the metrics endpoint and the log."""

from __future__ import annotations

import threading
import time
from collections import Counter, deque

import numpy as np

STAGES = ("capture", "bin", "preprocess", "inference", "ranking", "geometry", "publish")


class CycleStats:
    """Counters and a window of recent cycle timings; thread-safe, cheap to update."""

    def __init__(self, window: int = 500):
        self._lock = threading.Lock()
        self.started = time.time()
        self.cycles = 0
        self.errors: Counter[str] = Counter()
        self.total_ms: deque[float] = deque(maxlen=window)
        self.compute_ms: deque[float] = deque(maxlen=window)  # capture excluded
        self.stage_ms: dict[str, deque[float]] = {s: deque(maxlen=window) for s in STAGES}
        self.last_error = ""
        self.last_error_time = 0.0
        self.last_result: dict = {}
        self.state = "starting"

    def record(self, stages: dict[str, float], error_name: str, result: dict) -> None:
        with self._lock:
            self.cycles += 1
            if error_name != "ok":
                self.errors[error_name] += 1
            total = sum(stages.values())
            self.total_ms.append(total)
            self.compute_ms.append(total - stages.get("capture", 0.0))
            for name, ms in stages.items():
                if name in self.stage_ms:
                    self.stage_ms[name].append(ms)
            self.last_result = result

    def set_error(self, message: str) -> None:
        with self._lock:
            self.last_error = message
            self.last_error_time = time.time()

    def percentiles(self) -> dict:
        with self._lock:
            series = {"total": list(self.total_ms), "compute": list(self.compute_ms)}
            series.update({s: list(v) for s, v in self.stage_ms.items()})
        out = {}
        for name, values in series.items():
            if values:
                p50, p95, p99 = np.percentile(values, [50, 95, 99])
                out[name] = {
                    "p50": round(p50, 2),
                    "p95": round(p95, 2),
                    "p99": round(p99, 2),
                    "n": len(values),
                }
        return out

    def summary(self) -> dict:
        with self._lock:
            return {
                "state": self.state,
                "uptime_s": round(time.time() - self.started, 1),
                "cycles": self.cycles,
                "errors": dict(self.errors),
                "last_error": self.last_error,
                "last_error_time": self.last_error_time,
                "last_result": self.last_result,
            }
