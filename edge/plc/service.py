"""The PLC side as one part: Modbus TCP and RTU servers plus the heartbeat, on their own thread.

The servers and the heartbeat run in one asyncio loop on a dedicated thread, so a slow cycle
never delays a PLC poll and a PLC that disconnects mid-cycle touches nothing but its socket.
A configured server that cannot start (address unknown, port taken, serial port missing) stops
the start: `start` raises `PlcStartError` naming the link, its keys and the cause, and the
appliance exits with it (code 2), so that systemd restarts it instead of a cell cycling on with
no PLC able to reach it.
"""

from __future__ import annotations

import asyncio
import logging
import os
import socket
import threading
from collections.abc import Callable

from edge.config import PlcSection
from edge.plc.access import ClientGate
from edge.plc.bank import RegisterBank

log = logging.getLogger(__name__)


class PlcStartError(RuntimeError):
    """A configured PLC link cannot start; the message names the link, its keys and the cause."""


def _tcp_cause(host: str, port: int) -> str:
    """Why a listener on host:port fails, found by trying one: pymodbus reports only "Could not
    start listen, please check address." and logs the cause as a warning of its own."""
    try:
        # "" is every interface, as pymodbus binds it (IPv4); getaddrinfo("") is no host at all
        family = socket.getaddrinfo(host or "0.0.0.0", port, type=socket.SOCK_STREAM)[0][0]
        with socket.create_server((host, port), family=family):
            return ""
    except OSError as exc:  # socket.gaierror included: an unknown host name
        return os_reason(exc)


def _serial_cause(port: str) -> str:
    """Why the serial port cannot be opened (missing device, permissions), found by opening it."""
    try:
        os.close(os.open(port, os.O_RDWR | os.O_NOCTTY | os.O_NONBLOCK))
        return ""
    except OSError as exc:
        return os_reason(exc)


def os_reason(exc: OSError) -> str:
    """The system's words for an error ("Address already in use"), without what Python added."""
    if isinstance(exc.errno, int) and exc.errno > 0:
        return os.strerror(exc.errno)
    return exc.strerror or str(exc)  # getaddrinfo's errors are negative: their strerror is theirs


class PlcService:
    def __init__(self, bank: RegisterBank, cfg: PlcSection, alive: Callable[[], bool] = lambda: True):
        self.bank = bank
        self.cfg = cfg
        self.alive = alive  # False freezes the heartbeat (see RegisterBank.tick)
        self.state: dict[str, str] = {}
        self._failed: dict[str, Exception] = {}  # "tcp" / "rtu": why it did not start
        self.gate = ClientGate(cfg.allowed_clients, cfg.readonly_clients)  # Modbus TCP only
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def start(self, timeout: float = 15.0) -> None:
        """Start every configured server and the heartbeat; raises `PlcStartError` (with nothing
        left running) when one of them cannot start."""
        ready = threading.Event()
        self._stop.clear()
        self._failed.clear()
        self._thread = threading.Thread(target=self._main, args=(ready,), name="plc", daemon=True)
        self._thread.start()
        if not ready.wait(timeout):
            self.stop()
            raise PlcStartError(f"the PLC servers did not start within {timeout:.0f} s")
        if self._failed:
            self.stop()
            raise PlcStartError("; ".join(self._failure_text(link) for link in self._failed))

    def _failure_text(self, link: str) -> str:
        p, exc = self.cfg, self._failed[link]
        if link == "tcp":
            cause = _tcp_cause(p.tcp_host, p.tcp_port) or str(exc)
            where = f"{p.tcp_host}:{p.tcp_port} (plc.tcp_host, plc.tcp_port)"
            return f"Modbus TCP cannot listen on {where}: {cause}"
        cause = _serial_cause(p.rtu_port) or str(exc)
        return f"Modbus RTU cannot open plc.rtu_port = {p.rtu_port!r}: {cause}"

    @property
    def serving(self) -> bool:
        """The servers' thread runs (started, not stopped)."""
        return self._thread is not None and self._thread.is_alive()

    def stop(self, timeout: float = 5.0) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout)
            self._thread = None

    def _main(self, ready: threading.Event) -> None:
        asyncio.run(self._serve(ready))

    async def _serve(self, ready: threading.Event) -> None:
        from edge.plc.modbus_server import rtu_server, tcp_server

        p = self.cfg
        servers = []
        if p.tcp_enabled:
            try:
                server = tcp_server(self.bank, p.tcp_host, p.tcp_port, self.gate, p.tcp_idle_timeout_s)
                await server.serve_forever(background=True)
                servers.append(server)
                self.state["tcp"] = f"listening on {p.tcp_host}:{p.tcp_port}"
                log.info("Modbus TCP on %s:%d", p.tcp_host, p.tcp_port)
            except Exception as exc:  # reported by start(), which stops the service
                self.state["tcp"] = f"down: {exc}"
                self._failed["tcp"] = exc
        if p.rtu_enabled:
            try:
                server = rtu_server(
                    self.bank,
                    p.rtu_port,
                    p.rtu_device_id,
                    p.rtu_baudrate,
                    p.rtu_parity,
                    p.rtu_stopbits,
                    p.rtu_bytesize,
                )
                await server.serve_forever(background=True)
                servers.append(server)
                self.state["rtu"] = f"device {p.rtu_device_id} on {p.rtu_port}"
                log.info("Modbus RTU device %d on %s at %d baud", p.rtu_device_id, p.rtu_port, p.rtu_baudrate)
            except Exception as exc:
                self.state["rtu"] = f"down: {exc}"
                self._failed["rtu"] = exc
        if self._failed:  # start() raises: nothing keeps serving
            for server in servers:
                await server.shutdown()
            ready.set()
            return
        ready.set()
        while not self._stop.is_set():
            self.bank.tick(p.result_ttl_s, self.alive())
            await asyncio.sleep(p.heartbeat_period_s)
        for server in servers:
            await server.shutdown()
