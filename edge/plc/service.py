"""The PLC side as one part: Modbus TCP and RTU servers plus the heartbeat, on their own thread.

The servers and the heartbeat run in one asyncio loop on a dedicated thread, so a slow cycle
never delays a PLC poll and a PLC that disconnects mid-cycle touches nothing but its socket.
A server that cannot start (port taken, serial port missing) is reported in `state` and the log;
the other server and the cycle go on.
"""

from __future__ import annotations

import asyncio
import logging
import threading
from collections.abc import Callable

from edge.config import PlcSection
from edge.plc.access import ClientGate
from edge.plc.bank import RegisterBank

log = logging.getLogger(__name__)


class PlcService:
    def __init__(self, bank: RegisterBank, cfg: PlcSection, alive: Callable[[], bool] = lambda: True):
        self.bank = bank
        self.cfg = cfg
        self.alive = alive  # False freezes the heartbeat (see RegisterBank.tick)
        self.state: dict[str, str] = {}
        self.gate = ClientGate(cfg.allowed_clients, cfg.readonly_clients)  # Modbus TCP only
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def start(self, timeout: float = 15.0) -> None:
        ready = threading.Event()
        self._stop.clear()
        self._thread = threading.Thread(target=self._main, args=(ready,), name="plc", daemon=True)
        self._thread.start()
        if not ready.wait(timeout):
            log.error("PLC servers did not start within %.0f s", timeout)

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
                server = tcp_server(self.bank, p.tcp_host, p.tcp_port, self.gate)
                await server.serve_forever(background=True)
                servers.append(server)
                self.state["tcp"] = f"listening on {p.tcp_host}:{p.tcp_port}"
                log.info("Modbus TCP on %s:%d", p.tcp_host, p.tcp_port)
            except Exception as exc:  # a PLC link that cannot start must not stop the cycle
                self.state["tcp"] = f"down: {exc}"
                log.error("Modbus TCP not started on %s:%d: %s", p.tcp_host, p.tcp_port, exc)
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
                log.error("Modbus RTU not started on %s: %s", p.rtu_port, exc)
        ready.set()
        while not self._stop.is_set():
            self.bank.tick(p.result_ttl_s, self.alive())
            await asyncio.sleep(p.heartbeat_period_s)
        for server in servers:
            await server.shutdown()
