"""Modbus RTU framing (the serial line), in front of pymodbus' request handling.

Why our own: pymodbus 3.16's RTU framer answered `80 01` (function 0, ILLEGAL FUNCTION) to a
frame it could not decode (a function 3 request with count 0, say), whatever its device id, so
that the appliance answered in another device's place on a shared RS-485 line; it never answered
a function code it does not know (0x41) and left its bytes in the buffer to be misread with the
next request. The Modbus over serial line specification (V1.02, 2.5.1.1) frames by silence: a
frame ends after 3.5 character times without a byte, and a frame whose CRC fails is discarded
without a reply. Here:

- a whole request of a served function (3, 4, 6: 8 bytes; 16: 9 + its byte count) with a good CRC
  is a frame at once, at the start of the buffer or ending it (what precedes it, line noise or
  another device's reply, is dropped: the master sends nothing more before our reply);
- anything else is a frame when the line falls silent (`silence_s`): a good CRC makes it a frame
  (a function the appliance does not serve, a malformed request), a bad one noise (discarded).

`reply_to` decides the answer (none, an exception, or the request for the bank). Pure functions:
the line's logic is `edge.plc.modbus_server._BusHandler`.
"""

from __future__ import annotations

from dataclasses import dataclass

from pymodbus.framer.rtu import FramerRTU

from edge.plc import mbap
from edge.plc.access import SERVED_FUNCTIONS

MIN_FRAME = 4  # device id, function code, CRC (2)
MAX_FRAME = 256  # the serial line specification's largest RTU frame
#: The shortest silence taken for the end of a frame. The specification's 3.5 character times
#: (1.75 ms above 19,200 baud) are below what a user-space process sees of a USB adapter: an FTDI
#: chip hands its bytes over every 16 ms (its latency timer), so that one long frame arrives in
#: pieces with gaps of up to that much between them. A request of a served function does not wait
#: for it (its size is known); only a frame of another function, or noise, is taken this late.
MIN_SILENCE_S = 0.02

ILLEGAL_FUNCTION, ILLEGAL_DATA_VALUE = 1, 3


def crc16(data: bytes | bytearray) -> bytes:
    """The Modbus CRC of `data`, in the order it is sent (low byte first; pymodbus' own CRC, which
    returns it as the big-endian reading of those two bytes)."""
    return FramerRTU.compute_CRC(bytes(data)).to_bytes(2, "big")


def crc_ok(frame: bytes | bytearray) -> bool:
    return len(frame) >= MIN_FRAME and crc16(frame[:-2]) == bytes(frame[-2:])


def silence_s(baudrate: int, bits_per_char: int) -> float:
    """How long the line must be quiet to end a frame: 3.5 characters (1.75 ms above 19,200 baud,
    the specification's fixed value), at least `MIN_SILENCE_S`."""
    t35 = 0.00175 if baudrate > 19200 else 3.5 * bits_per_char / baudrate
    return max(t35, MIN_SILENCE_S)


def _served_size(buffer: bytes | bytearray) -> int | None:
    """The size of the served request frame that `buffer` starts with (device id, the PDU by
    `mbap.request_pdu_size`, CRC), once its header says it; None for another function or while
    the byte count of a function 16 request is not in yet."""
    if len(buffer) < 2 or buffer[1] not in SERVED_FUNCTIONS:
        return None
    pdu = mbap.request_pdu_size(buffer[1:])
    return None if pdu is None else 1 + pdu + 2


def whole_request(buffer: bytes | bytearray) -> tuple[int, int] | None:
    """(start, end) of a whole served request with a good CRC at the start of `buffer` or ending
    it; None while there is none (wait for more bytes, or for the silence)."""
    size = _served_size(buffer)
    if size is not None and len(buffer) >= size and crc_ok(buffer[:size]):
        return 0, size
    for start in range(1, len(buffer) - 7):
        if _served_size(buffer[start:]) == len(buffer) - start and crc_ok(buffer[start:]):
            return start, len(buffer)
    return None


@dataclass(frozen=True)
class Decision:
    """What to do with a frame: `exception` (a code) to refuse it, `serve` to hand it to the bank,
    neither to stay silent; `why` says why it is not served (for the log; "" when it is)."""

    exception: int | None = None
    serve: bool = False
    why: str = ""


def reply_to(frame: bytes | bytearray, device_id: int) -> Decision:
    """The serial line specification's rules for one frame (device id, PDU, CRC):

    - a bad CRC (or fewer than 4 bytes): discarded, no reply;
    - another device id, or a broadcast (0): that device's, or nobody's to answer: no reply;
    - a function code of 128 and up: an exception reply (another device's, or our own echo), not a
      request: no reply;
    - a function the appliance does not serve: exception 1 (ILLEGAL FUNCTION);
    - a served function: to the bank (which may still refuse it, a malformed request with
      exception 3 once pymodbus cannot decode it)."""
    if not crc_ok(frame):
        return Decision(why=f"not a frame: {len(frame)} bytes with a bad CRC")
    if frame[0] != device_id:
        return Decision(why=f"for device {frame[0]}")
    function = frame[1]
    if function & 0x80:
        return Decision(why=f"an exception reply (function {function:#04x}), not a request")
    if function not in SERVED_FUNCTIONS:
        return Decision(exception=ILLEGAL_FUNCTION, why=f"function {function} is not served")
    return Decision(serve=True)


def exception_frame(frame: bytes | bytearray, code: int) -> bytes:
    """The exception reply to `frame`: its device id, its function code | 0x80, `code`, the CRC."""
    body = bytes([frame[0], (frame[1] | 0x80) & 0xFF, code])
    return body + crc16(body)
