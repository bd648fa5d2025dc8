"""One Modbus TCP connection: admitted by the `ClientGate`, framed by `edge.plc.mbap`, timed out.

pymodbus 3.16 creates one `ServerRequestHandler` per connection (`callback_new_connection`); this
subclass replaces its receive path (`data_received`) and keeps its request handling
(`handle_request`: the datastore, hence the bank, and the reply):

- admission: the peer is known in `connection_made`; a host outside the allow-list, or one over
  a connection cap, is closed there, before a byte of it is read (`ClientGate.connected`);
- framing: every whole frame of the stream is answered, in order (pipelined requests included);
  a header that is not Modbus closes the connection, logged once per host per minute with the
  peer, never with other clients' bytes;
- policing: a read-only host's writes, and every function but 3, 4, 6 and 16, are answered
  ILLEGAL FUNCTION (exception 1); a malformed request of a served function (a count out of range,
  a PDU of the wrong size) ILLEGAL DATA VALUE (3), with the request's own function code;
- time: a connection that sends nothing for `idle_timeout_s`, or stops inside a frame for
  `FRAME_TIMEOUT_S`, is closed, so that a dead or stuck peer frees its descriptor and its slot.
  pymodbus has no option for any of these.
"""

from __future__ import annotations

import asyncio
import contextvars
import logging
import struct

from pymodbus.constants import ExcCodes
from pymodbus.pdu import DecodePDU, ModbusPDU
from pymodbus.server.requesthandler import ServerRequestHandler

from edge.config import PlcSection
from edge.log_limit import LOG_INTERVAL_S
from edge.plc import mbap
from edge.plc.access import REFUSED, SERVED_FUNCTIONS

log = logging.getLogger(__name__)

#: Who sent the request being served ("host:port", or the RTU line): the bank's rejection log
#: names it (edge.plc.modbus_server). Set per request in the task that serves it.
current_peer: contextvars.ContextVar[str] = contextvars.ContextVar("current_peer", default="?")

#: A frame arrives in one TCP segment, or in a few within milliseconds; one begun and not finished
#: after this long never will be (a peer that died or speaks another protocol), and what follows
#: could only be misread as the rest of it.
FRAME_TIMEOUT_S = 2.0
IDLE_TIMEOUT_S = PlcSection.tcp_idle_timeout_s  # why that value: docs/appliance.md


def decode_request(decoder: DecodePDU, pdu: bytes) -> ModbusPDU | None:
    """pymodbus' request object for a PDU of a served function; None when it is malformed (a size
    the function does not have, a count outside the function's range). pymodbus' own decoder
    would log a warning without the peer for each, and its server answer function code 0."""
    if not mbap.pdu_size_ok(pdu):
        return None
    request_class = decoder.pdu_table.get(pdu[0], (None, None))[0]
    if request_class is None:
        return None
    request = request_class()
    try:
        request.decode(pdu[1:])
    except (ValueError, IndexError, struct.error):
        return None
    return request


async def serve_request(handler: ServerRequestHandler, pdu: bytes, unit: int, tid: int, peer: str) -> bool:
    """Hand a served function's PDU from `peer` to pymodbus' request handling (the datastore,
    hence the bank, then the reply), for the TCP connection and the serial line alike; False,
    with nothing sent, when the request is malformed (the caller answers exception 3)."""
    request = decode_request(handler.server.decoder, pdu)
    if request is None:
        return False
    request.dev_id, request.transaction_id = unit, tid
    handler.last_pdu, handler.last_addr = request, None
    current_peer.set(peer)
    await handler.handle_request()
    return True


class TcpConnection(ServerRequestHandler):
    """One TCP client of a `GatedTcpServer` (whose `gate` and `idle_timeout_s` it uses)."""

    def __init__(self, *args, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self.peer = "?"
        self._host = "?"
        self._inbox = bytearray()
        self._received_at = 0.0  # loop time of the last bytes received
        self._worker: asyncio.Task | None = None
        self._timer: asyncio.TimerHandle | None = None
        self._admitted = False

    # -- asyncio protocol ------------------------------------------------------------------------
    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        super().connection_made(transport)
        host, port = (transport.get_extra_info("peername") or ("?", 0))[:2]
        self._host, self.peer = str(host), f"{host}:{port}"
        if self.server.gate.connected(id(self), self._host, int(port)) == REFUSED:
            self.close()  # at once: a refused or surplus connection holds no descriptor
            return
        self._admitted = True
        self._received_at = self.loop.time()
        self._arm_timer()

    def data_received(self, data: bytes) -> None:
        """Replaces pymodbus' receive path (one frame per receive, the rest dropped on reply)."""
        if self.is_closing:
            return
        self._received_at = self.loop.time()
        self._inbox += data
        if self._worker is None or self._worker.done():
            self._worker = self.loop.create_task(self._drain())

    def pause_writing(self) -> None:
        """A client that sends requests but does not read the replies: stop reading it too, so
        the replies waiting in memory stay bounded (asyncio's write buffer high-water mark)."""
        if self.transport:
            self.transport.pause_reading()

    def resume_writing(self) -> None:
        if self.transport and not self.is_closing:
            self.transport.resume_reading()

    def callback_disconnected(self, exc: Exception | None) -> None:
        self._release()
        super().callback_disconnected(exc)

    # -- frames ----------------------------------------------------------------------------------
    async def _drain(self) -> None:
        """Answer every whole frame in the inbox, in order; data arriving meanwhile is taken too."""
        while not self.is_closing:
            try:
                frame, size = mbap.next_frame(self._inbox)
            except mbap.FramingError as exc:
                self._drop("framing", logging.WARNING, "not a Modbus TCP frame: %s", exc)
                return
            if frame is None:
                break
            del self._inbox[:size]
            await self._serve(frame)
        self._arm_timer()

    async def _serve(self, frame: mbap.Frame) -> None:
        function = frame.pdu[0]
        if not self.server.gate.request(id(self), function) or function not in SERVED_FUNCTIONS:
            self._send_raw(mbap.exception_frame(frame, ExcCodes.ILLEGAL_FUNCTION))
            return
        if not await serve_request(self, frame.pdu, frame.unit, frame.tid, self.peer):
            if self.server.gate.log_limit.first(self._host, "malformed"):
                log.warning(
                    "Modbus TCP client %s: malformed function %d request %s answered with exception 3 "
                    "(further ones from this host are not logged for %.0f s)",
                    self.peer, function, frame.pdu[:16].hex(" "), LOG_INTERVAL_S,
                )  # fmt: skip
            self._send_raw(mbap.exception_frame(frame, ExcCodes.ILLEGAL_VALUE))

    def _send_raw(self, data: bytes) -> None:
        if self.transport and not self.is_closing:
            self.transport.write(data)

    # -- time ------------------------------------------------------------------------------------
    def _arm_timer(self) -> None:
        """One timer per connection, set after each batch of frames: the idle deadline, or the
        frame deadline while a frame is incomplete."""
        if self.is_closing or not self._admitted:
            return
        if self._timer is not None:
            self._timer.cancel()
        limit = FRAME_TIMEOUT_S if self._inbox else self.server.idle_timeout_s
        self._timer = self.loop.call_at(self._received_at + limit, self._expire)

    def _expire(self) -> None:
        self._timer = None
        if self._inbox:
            why, args = "%d bytes of a frame, then nothing for %.0f s", (len(self._inbox), FRAME_TIMEOUT_S)
            self._drop("frame timeout", logging.WARNING, why, *args)
        else:  # a PLC that polls only on a trigger does this between parts: no fault
            why, args = "nothing received for %.0f s (plc.tcp_idle_timeout_s)", (self.server.idle_timeout_s,)
            self._drop("idle", logging.INFO, why, *args)

    # -- the end ---------------------------------------------------------------------------------
    def _drop(self, kind: str, level: int, why: str, *args) -> None:
        """Close the connection, logged once per host and kind per interval."""
        if self.server.gate.log_limit.first(self._host, kind):
            suffix = " (further ones from this host are not logged for %.0f s)"
            log.log(level, "Modbus TCP client %s closed: " + why + suffix, self.peer, *args, LOG_INTERVAL_S)
        else:
            log.debug("Modbus TCP client %s closed: " + why, self.peer, *args)
        self._release()
        self.close()  # pymodbus' close skips callback_disconnected: _release did its part

    def _release(self) -> None:
        """Forget the connection (gate slot, timer); once, however it ends."""
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        self._inbox.clear()
        if self._admitted:
            self._admitted = False
            self.server.gate.disconnected(id(self))
