"""What the operator's page shows of the past: the last picks with their outcome, an hour of cycle
times and success rates, the error log with its snapshots, and who did what.

The cycle thread records; the page's threads read. Each record is a few numbers and, per pick, a
small crop of the camera image around the grasp (kept as pixels; encoded to JPEG only when a
browser asks, once, then cached), so recording costs the cycle microseconds.
"""

from __future__ import annotations

import enum
import threading
import time
from collections import deque
from dataclasses import dataclass, field

import cv2
import numpy as np

THUMB_PX = 96
WINDOW_S = 3600.0


@dataclass
class Pick:
    sequence: int
    time: float
    u: float
    v: float
    score: float
    outcome: str = "pending"
    crop: np.ndarray | None = field(default=None, repr=False)
    jpeg: bytes = field(default=b"", repr=False)

    def row(self) -> dict:
        return {
            "sequence": self.sequence,
            "time": round(self.time, 3),
            "u": round(self.u, 1),
            "v": round(self.v, 1),
            "score": round(self.score, 3),
            "outcome": self.outcome,
        }


class CellHistory:
    """Bounded, thread-safe history for the page (the last `picks` picks, `WINDOW_S` of cycles)."""

    def __init__(self, outcomes: type[enum.IntEnum], picks: int = 20, errors: int = 50, cycles: int = 20000):
        """`outcomes`: the register map's `pick_outcome` enumeration (registers.toml), which names
        the codes the PLC writes; its `not_reported` value shows as "pending"."""
        self._lock = threading.Lock()
        self._picked, self._failed = outcomes["picked"], outcomes["failed"]
        self._outcome_names = {m.value: m.name for m in outcomes}
        self._outcome_names[outcomes["not_reported"].value] = "pending"
        self.picks: deque[Pick] = deque(maxlen=picks)
        self.cycles: deque[tuple[float, float, bool]] = deque(maxlen=cycles)  # (time, total ms, ok)
        self.outcomes: deque[tuple[float, bool]] = deque(maxlen=cycles)  # (time, picked)
        self.errors: deque[dict] = deque(maxlen=errors)
        self.actions: deque[dict] = deque(maxlen=20)

    # ------------------------------------------------------------------ recording (cycle thread)
    def published(
        self, sequence: int, rgb: np.ndarray | None, u: float, v: float, score: float, size_px: float
    ) -> None:
        """A grasp went out; keep a crop of `rgb` (camera pixels) centred on it, `size_px` wide."""
        crop = None if rgb is None else _crop(rgb, u, v, size_px)
        with self._lock:
            self.picks.append(Pick(sequence, time.time(), u, v, score, crop=crop))

    def pick_outcome(self, sequence: int, outcome: int) -> None:
        """The PLC's `pick_outcome` code for a published sequence."""
        now = time.time()
        with self._lock:
            for pick in self.picks:
                if pick.sequence == sequence:
                    pick.outcome = self._outcome_names.get(outcome, f"code {outcome}")
            if outcome in (self._picked, self._failed):
                self.outcomes.append((now, outcome == self._picked))

    def cycle(self, total_ms: float, error: str, message: str, sequence: int, snapshot: str = "") -> None:
        now = time.time()
        with self._lock:
            self.cycles.append((now, total_ms, error == "ok"))
            if error not in ("ok", "not_running"):
                self.errors.append(
                    {"time": round(now, 3), "sequence": sequence, "error": error, "message": message,
                     "snapshot": snapshot}
                )  # fmt: skip

    def action(self, who: str, what: str, result: str) -> None:
        with self._lock:
            self.actions.append({"time": round(time.time(), 3), "who": who, "what": what, "result": result})

    # ------------------------------------------------------------------ reading (page threads)
    def thumbnail(self, sequence: int) -> bytes:
        with self._lock:
            pick = next((p for p in self.picks if p.sequence == sequence), None)
            if pick is None or pick.crop is None:
                return b""
            if not pick.jpeg:
                ok, data = cv2.imencode(
                    ".jpg", cv2.cvtColor(pick.crop, cv2.COLOR_RGB2BGR), [cv2.IMWRITE_JPEG_QUALITY, 80]
                )
                pick.jpeg = data.tobytes() if ok else b""
            return pick.jpeg

    def view(self, now: float | None = None, bin_s: float = 60.0) -> dict:
        """Picks (newest first), per-minute charts over the last hour, errors, actions."""
        now = time.time() if now is None else now
        start = now - WINDOW_S
        with self._lock:
            picks = [p.row() for p in reversed(self.picks)]
            cycles = [c for c in self.cycles if c[0] >= start]
            outcomes = [o for o in self.outcomes if o[0] >= start]
            errors = list(reversed(self.errors))
            actions = list(reversed(self.actions))
        bins = int(WINDOW_S // bin_s)
        chart = []
        by_bin: list[list[tuple[float, float, bool]]] = [[] for _ in range(bins)]
        picks_bin: list[list[bool]] = [[] for _ in range(bins)]
        for c in cycles:
            by_bin[min(bins - 1, int((c[0] - start) // bin_s))].append(c)
        for t, ok in outcomes:
            picks_bin[min(bins - 1, int((t - start) // bin_s))].append(ok)
        for i in range(bins):
            ms = [c[1] for c in by_bin[i]]
            chart.append(
                {
                    "t": round(start + (i + 1) * bin_s, 1),
                    "cycles": len(ms),
                    "p50_ms": round(float(np.median(ms)), 1) if ms else None,
                    "max_ms": round(max(ms), 1) if ms else None,
                    "grasp_rate": round(sum(c[2] for c in by_bin[i]) / len(ms), 3) if ms else None,
                    "pick_rate": round(sum(picks_bin[i]) / len(picks_bin[i]), 3) if picks_bin[i] else None,
                }
            )
        return {"picks": picks, "chart": chart, "bin_s": bin_s, "errors": errors, "actions": actions}

    def recent_cycles(self, since: float) -> list[tuple[float, float, bool]]:
        """(time, total ms, ok) of the cycles finished after `since` (benchmarks)."""
        with self._lock:
            return [c for c in self.cycles if c[0] >= since]


def _crop(rgb: np.ndarray, u: float, v: float, size_px: float) -> np.ndarray:
    h, w = rgb.shape[:2]
    half = int(max(24.0, min(size_px, max(h, w)) * 0.75))
    x0, y0, x1, y1 = int(u) - half, int(v) - half, int(u) + half, int(v) + half
    inside = rgb[max(0, y0) : max(0, min(h, y1)), max(0, x0) : max(0, min(w, x1))]  # a view, no copy
    if inside.size == 0:
        inside = np.zeros((1, 1, 3), np.uint8)
    top, left = max(0, -y0), max(0, -x0)  # black where the square leaves the image
    bottom, right = 2 * half - top - inside.shape[0], 2 * half - left - inside.shape[1]
    crop = cv2.copyMakeBorder(inside, top, max(0, bottom), left, max(0, right), cv2.BORDER_CONSTANT, value=0)
    thumb = cv2.resize(crop, (THUMB_PX, THUMB_PX), interpolation=cv2.INTER_AREA)
    c = THUMB_PX // 2
    cv2.drawMarker(thumb, (c, c), (255, 40, 40), cv2.MARKER_CROSS, 14, 2)
    return thumb
