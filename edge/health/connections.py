"""The status page's connections: the cap on how many are served at once and each host's share of
it, the kernel's detection of vanished peers, and the deadline that bounds how long one request's
head and body may take to arrive (`DeadlineReader`).

Kept apart from the endpoints (`edge.health.status_server`): this is what keeps one client from
holding the page's threads, whatever it sends.
"""

from __future__ import annotations

import contextlib
import io
import logging
import socket
import sys
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from edge.connection_slots import HOST, TOTAL, ConnectionSlots
from edge.log_limit import LOG_INTERVAL_S, HostLogLimit

log = logging.getLogger(__name__)

#: Each connection holds a thread and a descriptor, and a tablet that sleeps or a cable pulled
#: leaves a half-open TCP connection that never closes by itself: over months they would pile up.
#: So a connection with no request for this long is closed, a write blocked this long ends its
#: connection (a reader whose window stays full), and the kernel's keep-alive probes and its user
#: timeout declare a silent peer dead after about as long; a stream then finds it gone at its next
#: keep-alive check (`_peer_gone`), even while no frame is published.
IDLE_TIMEOUT_S = 60.0
#: From the first byte of a request, its head and body must have arrived within this time, or the
#: connection is closed. A timeout per read alone let a client that sends one byte every few
#: seconds hold its connection (and its thread and its slot under the cap) for ever, before it had
#: even shown credentials. A browser sends its head in one packet and the largest body accepted is
#: 64 KiB; 15 s still covers four lost retransmissions of a packet (TCP's 1 + 2 + 4 + 8 s backoff).
REQUEST_DEADLINE_S = 15.0
#: connections served at once (each has its own thread); beyond, a 503 without a thread. A page
#: viewer holds two or three, a browser at most six: room for a control room.
MAX_CONNECTIONS = 64
#: connections one address may hold at once: the rest of the cap stays free for the others, so a
#: host that opens connections and trickles its requests (slowloris) cannot lock everyone out.
#: Behind a TLS proxy every connection comes from one address: the proxy gets this share.
MAX_CONNECTIONS_PER_HOST = 48

BUSY_ANSWER = (
    b"HTTP/1.1 503 Service Unavailable\r\nContent-Type: text/plain\r\nContent-Length: 39\r\n"
    b"Retry-After: 5\r\nConnection: close\r\n\r\nstatus page busy: too many connections\n"
)


class CappedServer(ThreadingHTTPServer):
    """A thread per connection, at most `max_connections` of them and `max_per_host` per address."""

    daemon_threads = True

    def __init__(
        self,
        address: tuple[str, int],
        handler: type[BaseHTTPRequestHandler],
        max_connections: int,
        max_per_host: int = MAX_CONNECTIONS_PER_HOST,
    ) -> None:
        self.slots = ConnectionSlots(max_connections, max_per_host)
        self.refused_connections = 0  # turned away at the connection cap or a host's share
        #: the page's connection lines (a refusal, a request cut at its deadline): once per host and
        #: kind per minute; the counters count every one
        self.log_limit = HostLogLimit()
        super().__init__(address, handler)

    @property
    def open_connections(self) -> int:
        """The cap's count, and /metrics' gauge."""
        return self.slots.open

    def _take_slot(self, host: str) -> str:
        """Count one more connection of `host`: "" when taken, else which limit refused it."""
        limit = self.slots.take(host)
        if limit == TOTAL:
            return f"{self.slots.max_total} connections open"
        if limit == HOST:
            return f"it holds {self.slots.held(host)} connections, its share"
        return ""

    def process_request(self, request: socket.socket, client_address: tuple[str, int]) -> None:
        """One thread per connection, up to the cap; beyond it a 503 from the accepting thread."""
        host = client_address[0]
        why = self._take_slot(host)
        if why:
            self.refused_connections += 1
            if self.log_limit.first(host, "turned away"):
                log.warning(
                    "status page: %s turned away, %s (%d so far from all hosts; further ones from this "
                    "host are not logged for %.0f s)",
                    host, why, self.refused_connections, LOG_INTERVAL_S,
                )  # fmt: skip
            else:
                log.debug("status page: %s turned away, %s", host, why)
            with contextlib.suppress(OSError):
                request.settimeout(1.0)
                request.sendall(BUSY_ANSWER)
            self.shutdown_request(request)
            return
        detect_dead_peers(request, self.RequestHandlerClass.timeout)
        try:
            super().process_request(request, client_address)
        except Exception:  # the thread did not start (process_request_thread frees it otherwise)
            self.slots.free(host)
            raise

    def process_request_thread(self, request: socket.socket, client_address: tuple[str, int]) -> None:
        """The connection's thread: its slot is freed however its requests end."""
        try:
            super().process_request_thread(request, client_address)
        finally:
            self.slots.free(client_address[0])

    def handle_error(
        self, request: socket.socket | tuple[bytes, socket.socket], client_address: tuple[str, int]
    ) -> None:
        """A viewer that closes its tab resets its connections: not worth a traceback in the journal."""
        if isinstance(sys.exc_info()[1], (ConnectionError, TimeoutError)):
            return
        log.exception("status page: request from %s failed", client_address[0])


def detect_dead_peers(sock: socket.socket, idle_s: float | None) -> None:
    """Keep-alive probes after half the idle time, and a user timeout of the idle time (Linux):
    the kernel then errors a connection whose peer vanished, written to or not."""
    if not idle_s:
        return
    options = [(socket.SOL_SOCKET, socket.SO_KEEPALIVE, 1)]
    if hasattr(socket, "TCP_KEEPIDLE"):
        options += [
            (socket.IPPROTO_TCP, socket.TCP_KEEPIDLE, max(1, int(idle_s / 2))),
            (socket.IPPROTO_TCP, socket.TCP_KEEPINTVL, max(1, int(idle_s / 10))),
            (socket.IPPROTO_TCP, socket.TCP_KEEPCNT, 3),
        ]
    if hasattr(socket, "TCP_USER_TIMEOUT"):
        options.append((socket.IPPROTO_TCP, socket.TCP_USER_TIMEOUT, int(idle_s * 1000)))
    for level, option, value in options:
        with contextlib.suppress(OSError):
            sock.setsockopt(level, option, value)


class DeadlineReader(io.RawIOBase):
    """The raw stream under a connection's `rfile`: each read waits at most the idle timeout, and
    while `deadline` is set (a request is being read) no longer than until then. The socket's own
    timeout applies per read only, so a trickle of bytes restarted it at every byte."""

    def __init__(self, sock: socket.socket, idle_s: float | None) -> None:
        super().__init__()
        self._sock = sock
        self._idle_s = idle_s
        self.deadline: float | None = None  # time.monotonic() by which the request must be read
        self.expired = False  # a request's read was cut at the deadline: its connection is closed

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: memoryview) -> int:  # type: ignore[override]
        if self.deadline is None:
            return self._sock.recv_into(buffer)
        left = self.deadline - time.monotonic()
        if left <= 0:
            self.expired = True
            raise TimeoutError("request not read within its deadline")
        self._sock.settimeout(min(left, self._idle_s) if self._idle_s else left)
        try:
            return self._sock.recv_into(buffer)
        except TimeoutError:  # at the deadline (the idle timeout first, only where it is shorter)
            self.expired = True
            raise
        finally:
            self._sock.settimeout(self._idle_s)  # writes keep the idle timeout
