"""Which hosts may talk Modbus TCP to the appliance, and the list of those connected.

`plc.allowed_clients` (read and write) and `plc.readonly_clients` (read only) hold addresses or
CIDR ranges. With both empty the gate is open (the loopback default). Otherwise a host in neither
list is refused at connect, and a read-only host gets ILLEGAL FUNCTION for every request but a
read, so it changes no register. Refusals are logged at most once per host per
`LOG_INTERVAL_S`, so a scanner cannot flood the journal. So are connections: some PLC drivers
and HMIs open a connection for every read, which at 10 reads a second would write 20 journal
lines a second, all day, on the box's flash. A host's first connection in an interval is logged
at INFO with its end; the rest at DEBUG. The RTU line has no addresses: not here.

Connections are capped, overall (`MAX_CONNECTIONS`) and per host (`MAX_PER_HOST`), and one beyond
a cap is closed at connect: each holds a descriptor, and 1,100 idle connections once used up the
process's 1,024, after which the status page, the camera and new PLC connections failed (EMFILE).
A cell has one PLC, perhaps an HMI and a SCADA poller, each with one connection, or a few while a
driver reconnects: 4 per host is room for a PLC rebooting twice before its old connections time
out (`edge.plc.connection`), and 16 overall is room for four such hosts. One host that opens
connections in a loop takes its 4 and no more, so it cannot lock the PLC out.
"""

from __future__ import annotations

import ipaddress
import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field

from edge.connection_slots import HOST, TOTAL, ConnectionSlots
from edge.log_limit import LOG_INTERVAL_S, HostLogLimit

log = logging.getLogger(__name__)

FULL, READONLY, REFUSED = "read-write", "read-only", "refused"
# The Modbus function codes the appliance serves (docs/registers.md): read holding registers (3),
# read input registers (4, the same words), write single register (6), write multiple registers
# (16). Every other function (coils, discrete inputs, mask write, read/write multiple, diagnostics,
# device identification...) is answered with ILLEGAL FUNCTION (edge.plc.modbus_server).
READ_FUNCTIONS = frozenset({3, 4})
WRITE_FUNCTIONS = frozenset({6, 16})
SERVED_FUNCTIONS = READ_FUNCTIONS | WRITE_FUNCTIONS
MAX_CONNECTIONS = 16  # Modbus TCP connections open at once, every host together
MAX_PER_HOST = 4  # ... from one address

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
    """Classifies peers, caps and tracks the connected ones and counts refusals (thread-safe)."""

    def __init__(
        self,
        allowed: list[str],
        readonly: list[str],
        clock: Callable[[], float] = time.monotonic,
        max_connections: int = MAX_CONNECTIONS,
        max_per_host: int = MAX_PER_HOST,
    ) -> None:
        self.allowed = parse_networks(allowed)
        self.readonly = parse_networks(readonly)
        self.enabled = bool(self.allowed or self.readonly)
        self.slots = ConnectionSlots(max_connections, max_per_host)
        self._lock = threading.Lock()
        self._clients: dict[int, Client] = {}
        # connections, refusals, framing errors, timeouts: logged once per host and kind per interval
        self.log_limit = HostLogLimit(clock)
        self.refused_connections = 0
        self.refused_at_limit = 0  # of those: a cap reached (the rest: not in the allow-list)
        self.refused_requests = 0

    @property
    def max_connections(self) -> int:
        return self.slots.max_total

    @max_connections.setter
    def max_connections(self, value: int) -> None:
        self.slots.max_total = value

    @property
    def max_per_host(self) -> int:
        return self.slots.max_per_host

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
        full = ""
        with self._lock:
            if access != REFUSED:
                limit = self.slots.take(host)
                if limit == TOTAL:
                    full = f"{self.slots.open} Modbus TCP connections open, the limit"
                elif limit == HOST:
                    full = f"{self.slots.held(host)} connections from this host open, the limit per host"
                if full:
                    access = REFUSED
                    self.refused_at_limit += 1
            if access == REFUSED:
                self.refused_connections += 1
            else:
                level = logging.INFO if self.log_limit.first(host, "connect") else logging.DEBUG
                self._clients[key] = Client(peer, access, log_level=level)
        if full:
            self._log(host, "Modbus TCP connection from %s refused: %s", peer, full)
        elif access == REFUSED:
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
                self.slots.free(client.peer.rsplit(":", 1)[0])
        if client is not None:
            log.log(client.log_level, "Modbus TCP client %s disconnected", client.peer)

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
        if self.log_limit.first(host, "refusal"):
            suffix = " (further refusals of this host are not logged for %.0f s)"
            log.warning(fmt + suffix, *args, LOG_INTERVAL_S)

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
                "refused_at_limit": self.refused_at_limit,
                "connection_limits": f"{self.max_connections} in all, {self.max_per_host} per host",
                "refused_requests": self.refused_requests,
            }
