"""Which hosts may talk Modbus TCP to the appliance, and the list of those connected.

`plc.allowed_clients` (read and write) and `plc.readonly_clients` (read only) hold addresses or
CIDR ranges. With both empty the gate is open (the loopback default). Otherwise a host in neither
list is refused at connect, and a read-only host gets ILLEGAL FUNCTION for every request but a
read, so it changes no register. Refusals are logged at most once per host per
`LOG_INTERVAL_S`, so a scanner cannot flood the journal. So are connections: some PLC drivers
and HMIs open a connection for every read, which at 10 reads a second would write 20 journal
lines a second, all day, on the box's flash. A host's first connection in an interval is logged
at INFO with its end; the rest at DEBUG. The RTU line has no addresses: not here.
"""

from __future__ import annotations

import ipaddress
import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field

log = logging.getLogger(__name__)

FULL, READONLY, REFUSED = "read-write", "read-only", "refused"
# The Modbus function codes the appliance serves (docs/registers.md): read holding registers (3),
# read input registers (4, the same words), write single register (6), write multiple registers
# (16). Every other function (coils, discrete inputs, mask write, read/write multiple, diagnostics,
# device identification...) is answered with ILLEGAL FUNCTION (edge.plc.modbus_server).
READ_FUNCTIONS = frozenset({3, 4})
WRITE_FUNCTIONS = frozenset({6, 16})
SERVED_FUNCTIONS = READ_FUNCTIONS | WRITE_FUNCTIONS
LOG_INTERVAL_S = 60.0

Network = ipaddress.IPv4Network | ipaddress.IPv6Network


def parse_networks(entries: list[str]) -> list[Network]:
    """Addresses or CIDR ranges ("10.0.0.5", "10.0.0.0/24", "fd00::/8"); ValueError names the bad one."""
    out = []
    for entry in entries:
        try:
            out.append(ipaddress.ip_network(entry.strip(), strict=False))
        except ValueError:
            raise ValueError(
                f"{entry!r}: expected an IP address or a CIDR range such as 10.0.0.0/24"
            ) from None
    return out


@dataclass
class Client:
    peer: str
    access: str
    since: float = field(default_factory=time.time)
    requests: int = 0
    refused_requests: int = 0
    log_level: int = logging.INFO  # its connection and its end: INFO, or DEBUG for a host reconnecting


class ClientGate:
    """Classifies peers, tracks the connected ones and counts refusals (thread-safe)."""

    def __init__(
        self, allowed: list[str], readonly: list[str], clock: Callable[[], float] = time.monotonic
    ) -> None:
        self._clock = clock  # the log intervals' clock (a test drives its own)
        self.allowed = parse_networks(allowed)
        self.readonly = parse_networks(readonly)
        self.enabled = bool(self.allowed or self.readonly)
        self._lock = threading.Lock()
        self._clients: dict[int, Client] = {}
        self._last_log: dict[str, float] = {}
        self._last_connect_log: dict[str, float] = {}
        self.refused_connections = 0
        self.refused_requests = 0

    def access(self, host: str) -> str:
        if not self.enabled:
            return FULL
        try:
            address = ipaddress.ip_address(host.split("%")[0])
        except ValueError:
            return REFUSED
        if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped:
            address = address.ipv4_mapped
        if any(address in net for net in self.allowed):
            return FULL
        if any(address in net for net in self.readonly):
            return READONLY
        return REFUSED

    def connected(self, key: int, host: str, port: int) -> str:
        """A new connection from (host, port); returns its access (REFUSED: close it)."""
        access = self.access(host)
        peer = f"{host}:{port}"
        level = logging.DEBUG
        with self._lock:
            if access == REFUSED:
                self.refused_connections += 1
            else:
                level = (
                    logging.INFO if self._first_in_interval(self._last_connect_log, host) else logging.DEBUG
                )
                self._clients[key] = Client(peer, access, log_level=level)
        if access == REFUSED:
            self._log(host, "Modbus TCP connection from %s refused: not in plc.allowed_clients", peer)
        elif level == logging.INFO:
            log.info(
                "Modbus TCP client %s connected (%s; more connections from this host in the next %.0f s "
                "are logged at DEBUG)",
                peer, access, LOG_INTERVAL_S,
            )  # fmt: skip
        else:
            log.debug("Modbus TCP client %s connected (%s)", peer, access)
        return access

    def disconnected(self, key: int) -> None:
        with self._lock:
            client = self._clients.pop(key, None)
        if client is not None:
            log.log(client.log_level, "Modbus TCP client %s disconnected", client.peer)

    def _first_in_interval(self, last: dict[str, float], host: str) -> bool:
        """True (and the time noted) when `host` was not noted in the last LOG_INTERVAL_S; bounded:
        a scan of many hosts clears the table rather than growing it. Call with the lock held."""
        now = self._clock()
        if now - last.get(host, -LOG_INTERVAL_S) < LOG_INTERVAL_S:
            return False
        if len(last) > 4096:
            last.clear()
        last[host] = now
        return True

    def request(self, key: int, function_code: int) -> bool:
        """Count a request; False when it must be refused (a write from a read-only client)."""
        with self._lock:
            client = self._clients.get(key)
            if client is None:
                return False
            client.requests += 1
            if client.access == READONLY and function_code not in READ_FUNCTIONS:
                client.refused_requests += 1
                self.refused_requests += 1
                peer = client.peer
            else:
                return True
        self._log(
            peer.rsplit(":", 1)[0],
            "Modbus function %d from read-only client %s refused (plc.readonly_clients)",
            function_code,
            peer,
        )
        return False

    def _log(self, host: str, fmt: str, *args) -> None:
        with self._lock:
            if not self._first_in_interval(self._last_log, host):
                return
        log.warning(fmt + " (further refusals of this host are not logged for %.0f s)", *args, LOG_INTERVAL_S)

    def state(self) -> dict:
        """For the status page: connected clients and refusal counters."""
        with self._lock:
            clients = [
                {
                    "peer": c.peer,
                    "access": c.access,
                    "since": round(c.since, 1),
                    "requests": c.requests,
                    "refused_requests": c.refused_requests,
                }
                for c in self._clients.values()
            ]
            return {
                "allow_list": "on" if self.enabled else "off (any host)",
                "clients": clients,
                "refused_connections": self.refused_connections,
                "refused_requests": self.refused_requests,
            }
