"""Connections held at once, in all and per address: the one count behind the PLC's Modbus TCP
caps (`edge.plc.access.ClientGate`) and the operator page's (`edge.health.connections`).

Each connection holds a descriptor (and on the page a thread): a cap in all keeps the process
inside its descriptor limit, a share per address keeps one host that opens connections in a loop
(or trickles requests, a slowloris) from locking the others out. Each server words its own
refusal; the counting, the order of the two checks and the release are here.
"""

from __future__ import annotations

import threading

TOTAL, HOST = "total", "host"  # which limit refused a connection


class ConnectionSlots:
    """Thread-safe; `open` is the count in all (the servers' gauges read it)."""

    def __init__(self, max_total: int, max_per_host: int) -> None:
        self.max_total = max_total
        self.max_per_host = max_per_host
        self.open = 0
        self._per_host: dict[str, int] = {}
        self._lock = threading.Lock()

    def take(self, host: str) -> str:
        """Count one more connection of `host`: "" when taken, else the limit that refused it
        (`TOTAL` checked first, then `HOST`)."""
        with self._lock:
            if self.open >= self.max_total:
                return TOTAL
            held = self._per_host.get(host, 0)
            if held >= self.max_per_host:
                return HOST
            self.open += 1
            self._per_host[host] = held + 1
            return ""

    def held(self, host: str) -> int:
        """Connections `host` holds now."""
        with self._lock:
            return self._per_host.get(host, 0)

    def free(self, host: str) -> None:
        """One connection of `host` ended (once per `take` that returned "")."""
        with self._lock:
            self.open -= 1
            held = self._per_host.pop(host, 1) - 1
            if held > 0:
                self._per_host[host] = held
