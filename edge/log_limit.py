"""Rate limits for log lines that a peer or a fault can repeat every few milliseconds.

A PLC scans every 10 ms: a fault it repeats (a bad write, a bad frame, a trigger in idle mode)
would write a hundred journal lines a second, all day, on the box's flash. Each such line is
written once per `LOG_INTERVAL_S` per key (a host, an error name) and kind; the counters on the
status page still count every occurrence. One mechanism for the PLC servers and the supervisor.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable

LOG_INTERVAL_S = 60.0


class HostLogLimit:
    """Says whether a line of some kind about a host (or another key: the supervisor's error names)
    may be logged: once per `LOG_INTERVAL_S` per key and kind. Bounded: a scan of many hosts clears
    the table rather than growing it. Thread-safe (the RTU and TCP servers share one loop, the
    supervisor and the tests call it from others)."""

    def __init__(self, clock: Callable[[], float] = time.monotonic) -> None:
        self._clock = clock
        self._lock = threading.Lock()
        self._last: dict[str, float] = {}

    def first(self, host: str, kind: str = "") -> bool:
        """True (and the time noted) when nothing of `kind` was logged for `host` in the interval."""
        key = f"{kind} {host}"
        with self._lock:
            now = self._clock()
            if now - self._last.get(key, -LOG_INTERVAL_S) < LOG_INTERVAL_S:
                return False
            if len(self._last) > 4096:
                self._last.clear()
            self._last[key] = now
            return True
