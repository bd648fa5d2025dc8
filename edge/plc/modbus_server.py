"""Modbus TCP and RTU servers (pymodbus 3.16 `SimDevice` API) over one `RegisterBank`.

pymodbus builds a private register image per server; we keep the appliance's one image in the
bank and attach it to each server through the SimDevice `action` hook, which sees every request
before pymodbus touches its own copy: reads are filled from the bank, writes are validated and
applied by the bank (a rejected write answers a Modbus exception and sets the error code). So the
TCP and the serial server share one register map and one handshake state. pymodbus' image spans
the whole address space (0..65535), so that the bank, not pymodbus, decides about every address:
a write beyond the map is rejected, counted and sets the error code like any other bad write.

Only the function codes of `edge.plc.access.SERVED_FUNCTIONS` (3, 4, 6, 16) reach the bank; every
other one is answered ILLEGAL FUNCTION, by the TCP connection (`edge.plc.connection`) and by the
serial line (`_BusHandler`, framed by `edge.plc.rtu`: a bad CRC or another device id gets no
reply, a malformed request exception 3).
pymodbus' SimDevice would otherwise serve coils and discrete inputs (1, 2, 5, 15) as bits of
the same holding registers, so that a coil write could start a cycle or change the mode.

The TCP server's per-connection handler is `edge.plc.connection.TcpConnection`: the allow-list
and the connection caps at connect, our own framing (every pipelined frame answered, a bad header
closes the connection), a read-only host's writes refused before the datastore (and so the bank)
sees them, and the idle and frame timeouts.

Rejected writes are logged once per client per minute (`HostLogLimit`), naming it: a PLC that
rewrites a bad value every 10 ms scan would otherwise write 100 journal lines a second; the bank
still counts every one. pymodbus' own error lines append its global buffer of the last frames of
every connection; `_NoFrameDump` cuts that off, so that no client's traffic reaches the journal
through another's error.
"""

from __future__ import annotations

import asyncio
import logging

from pymodbus.constants import ExcCodes
from pymodbus.server import ModbusSerialServer, ModbusTcpServer
from pymodbus.server.requesthandler import ServerRequestHandler
from pymodbus.simulator import DataType, SimData, SimDevice

from edge.log_limit import LOG_INTERVAL_S, HostLogLimit
from edge.plc import rtu
from edge.plc.access import ClientGate
from edge.plc.bank import RegisterBank, RequestRejected
from edge.plc.connection import IDLE_TIMEOUT_S, TcpConnection, current_peer, serve_request

log = logging.getLogger(__name__)
ADDRESS_SPACE = 65536  # Modbus addresses 0..65535
RTU_PEER = "the RTU line"


class _NoFrameDump(logging.Filter):
    """Cuts pymodbus' dump of its last frames (every connection's, `Log.get_last_frames`) off its
    error lines: it would write other clients' traffic into the journal, 20 frames per error."""

    def filter(self, record: logging.LogRecord) -> bool:
        if isinstance(record.msg, str) and "\n>>>>> " in record.msg:
            record.msg = record.msg.split("\n>>>>> ", 1)[0]
        return True


def _quiet_pymodbus() -> None:
    logger = logging.getLogger("pymodbus.logging")
    if not any(isinstance(f, _NoFrameDump) for f in logger.filters):
        logger.addFilter(_NoFrameDump())


def _device(bank: RegisterBank, device_id: int) -> SimDevice:
    limit = HostLogLimit()

    async def action(
        function_code: int,
        start_address: int,
        address: int,
        count: int,
        current_registers: list[int],
        set_values: list[int] | list[bool] | None,
    ) -> ExcCodes | None:
        offset = address - start_address
        try:
            if set_values is None:
                current_registers[offset : offset + count] = bank.plc_read(address, count)
            else:
                bank.plc_write(address, [int(v) for v in set_values])
        except RequestRejected as exc:  # a write is also counted and sets the error code (the bank)
            peer = current_peer.get()
            if set_values is not None and limit.first(peer.rsplit(":", 1)[0], "rejected write"):
                log.warning(
                    "rejected PLC request (function %d) from %s at %d: %s (further rejections from "
                    "this client are not logged for %.0f s; the status page counts them)",
                    function_code, peer, address, exc, LOG_INTERVAL_S,
                )  # fmt: skip
            else:
                log.debug(
                    "rejected PLC request (function %d) from %s at %d: %s", function_code, peer, address, exc
                )  # noqa: E501
            return ExcCodes(exc.exception_code)
        return None

    # The whole Modbus address space: pymodbus refuses no address of its own (only a request
    # reaching past 65535, outside Modbus, never gets to the bank).
    simdata = SimData(address=0, count=ADDRESS_SPACE, values=0, datatype=DataType.REGISTERS)
    return SimDevice(id=device_id, simdata=[simdata], action=action)


class GatedTcpServer(ModbusTcpServer):
    """`ModbusTcpServer` whose connections are `TcpConnection`s: admitted by `gate`, closed after
    `idle_timeout_s` without a byte."""

    def __init__(self, *args, gate: ClientGate, idle_timeout_s: float = IDLE_TIMEOUT_S, **kwargs):
        super().__init__(*args, **kwargs)
        self.gate = gate
        self.idle_timeout_s = idle_timeout_s

    def callback_new_connection(self) -> TcpConnection:
        return TcpConnection(self, self.trace_packet, self.trace_pdu, self.trace_connect)


def tcp_server(
    bank: RegisterBank,
    host: str,
    port: int,
    gate: ClientGate | None = None,
    idle_timeout_s: float = IDLE_TIMEOUT_S,
) -> GatedTcpServer:
    """A TCP server answering every unit id (device id 0 = all), admitting the hosts `gate` allows
    (None: any host, within the connection caps); start with `serve_forever`."""
    _quiet_pymodbus()
    return GatedTcpServer(
        _device(bank, 0), address=(host, port), gate=gate or ClientGate([], []), idle_timeout_s=idle_timeout_s
    )


class _BusHandler(ServerRequestHandler):
    """The serial line, framed by `edge.plc.rtu` (pymodbus' RTU framer answered `80 01` to what
    it could not decode, whatever the device id): a shared RS-485 bus, on which a request for
    another device id is that device's to answer. It is left unanswered (an exception reply would
    collide with the real device's); so is a broadcast (id 0), which the appliance does not take
    part in, and a frame whose CRC fails. A function the appliance does not serve is answered
    exception 1, a malformed request of a served one exception 3, both with the request's own
    function code."""

    def __init__(self, *args, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self._inbox = bytearray()
        self._timer: asyncio.TimerHandle | None = None
        self._log_limit = HostLogLimit()

    def data_received(self, data: bytes) -> None:
        """Replaces pymodbus' receive path (its RTU framer)."""
        self._inbox += data
        del self._inbox[: -rtu.MAX_FRAME]  # no frame is longer: a request for us ends the buffer
        if (found := rtu.whole_request(self._inbox)) is not None:
            start, end = found
            frame = bytes(self._inbox[start:end])
            del self._inbox[:end]
            self._take(frame)
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        if self._inbox:
            self._timer = self.loop.call_later(self.server.silence_s, self._silence)

    def _silence(self) -> None:
        """The line fell silent: what it carried since the last frame is one frame, or noise."""
        self._timer = None
        frame = bytes(self._inbox)
        self._inbox.clear()
        if frame:
            self._take(frame)

    def _take(self, frame: bytes) -> None:
        decision = rtu.reply_to(frame, self.server.device_id)
        if decision.serve:
            self.loop.create_task(self._serve(frame))
        elif decision.exception is not None:
            log.debug("Modbus RTU: %s %s, answered with exception %d", decision.why, frame[:16].hex(" "),
                      decision.exception)  # fmt: skip
            self._send_raw(rtu.exception_frame(frame, decision.exception))
        elif not rtu.crc_ok(frame) and self._log_limit.first(RTU_PEER, "noise"):
            log.info(
                "Modbus RTU: discarded %s (line noise, a baud rate or parity that differs from the "
                "master's, or frames of other devices less than %.0f ms apart); further ones are not "
                "logged for %.0f s",
                decision.why, self.server.silence_s * 1000, LOG_INTERVAL_S,
            )  # fmt: skip
        else:
            log.debug("Modbus RTU: no reply to %s (%s)", frame[:16].hex(" "), decision.why)

    async def _serve(self, frame: bytes) -> None:
        if not await serve_request(self, frame[1:-2], frame[0], 0, RTU_PEER):
            if self._log_limit.first(RTU_PEER, "malformed"):
                log.warning(
                    "Modbus RTU: malformed function %d request %s answered with exception 3 "
                    "(further ones are not logged for %.0f s)",
                    frame[1], frame[:16].hex(" "), LOG_INTERVAL_S,
                )  # fmt: skip
            self._send_raw(rtu.exception_frame(frame, rtu.ILLEGAL_DATA_VALUE))

    def _send_raw(self, data: bytes) -> None:
        if self.transport:
            self.transport.write(data)

    def callback_disconnected(self, exc: Exception | None) -> None:
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        super().callback_disconnected(exc)


class BankSerialServer(ModbusSerialServer):
    """`ModbusSerialServer` whose line is served by `_BusHandler` (its own device id only;
    functions 3, 4, 6, 16 only)."""

    def __init__(self, *args, device_id: int, silence_s: float, **kwargs):
        super().__init__(*args, **kwargs)
        self.device_id = device_id
        self.silence_s = silence_s  # the end of a frame (edge.plc.rtu.silence_s)

    def callback_new_connection(self) -> _BusHandler:
        return _BusHandler(self, self.trace_packet, self.trace_pdu, self.trace_connect)


def rtu_server(
    bank: RegisterBank, port: str, device_id: int, baudrate: int, parity: str, stopbits: int, bytesize: int
) -> ModbusSerialServer:
    """An RTU server on a serial line, answering `device_id` (the RS-485 bus address)."""
    bits_per_char = 1 + bytesize + (parity != "N") + stopbits
    return BankSerialServer(
        _device(bank, device_id),
        device_id=device_id,
        silence_s=rtu.silence_s(baudrate, bits_per_char),
        port=port,
        baudrate=baudrate,
        parity=parity,
        stopbits=stopbits,
        bytesize=bytesize,
    )
