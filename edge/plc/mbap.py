"""Modbus TCP framing (the MBAP header), in front of pymodbus' request handling.

Why our own: pymodbus 3.16's socket framer takes one frame per receive and its transport drops
the rest of the buffer when it sends the reply, so requests pipelined in one TCP segment (allowed
by Modbus TCP) went unanswered, writes included; a header that is not Modbus (protocol id not 0,
a length outside the standard's 2..254, an HTTP request) was neither answered nor closed, and
left the connection stuck for good. It has no option for either. Here a stream is cut into
whole frames, every one of them answered in order, and a header that cannot be Modbus is a
`FramingError` (the connection is closed: after a bad length nothing in the stream can be
trusted to start a frame). Pure functions: the connection logic is `edge.plc.connection`.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass

HEADER = 7  # transaction id (2), protocol id (2), length (2), unit id (1)
MIN_LENGTH = 2  # the length field counts the unit id and the PDU: at least a function code
MAX_LENGTH = 254  # unit id + the largest PDU the standard allows (253 bytes)
# PDU sizes of the requests the appliance serves (function code included); 16's depends on its
# byte count (the 6th byte). A PDU of another size is answered ILLEGAL DATA VALUE (exception 3).
_FIXED_PDU = {3: 5, 4: 5, 6: 5}


class FramingError(ValueError):
    """The bytes at the start of the buffer cannot be an MBAP header; the text says why."""


@dataclass(frozen=True)
class Frame:
    tid: int
    unit: int
    pdu: bytes


def next_frame(buffer: bytes | bytearray) -> tuple[Frame | None, int]:
    """The first whole frame of `buffer` and its size in bytes, or (None, 0) while it is still
    incomplete. A bad header is refused as soon as its bytes are in, not after waiting for a
    length that will never come (a length of 65535 would otherwise hold the connection)."""
    if len(buffer) >= 4 and (protocol := int.from_bytes(buffer[2:4], "big")) != 0:
        raise FramingError(f"protocol id {protocol} (Modbus is 0)")
    if len(buffer) < 6:
        return None, 0
    length = int.from_bytes(buffer[4:6], "big")
    if not MIN_LENGTH <= length <= MAX_LENGTH:
        raise FramingError(f"length field {length} (expected {MIN_LENGTH}..{MAX_LENGTH})")
    size = 6 + length
    if len(buffer) < size:
        return None, 0
    tid, _, _, unit = struct.unpack(">HHHB", buffer[:HEADER])
    return Frame(tid, unit, bytes(buffer[HEADER:size])), size


def request_pdu_size(pdu_head: bytes | bytearray) -> int | None:
    """The size a request PDU of a served function must have, from its first bytes (any framing:
    the serial line sizes its frames by it too); None for another function, or while the byte
    count of a function 16 request (its 6th byte) is not in yet."""
    function = pdu_head[0]
    if function == 16:
        return 6 + pdu_head[5] if len(pdu_head) >= 6 else None
    return _FIXED_PDU.get(function)


def pdu_size_ok(pdu: bytes) -> bool:
    """Whether a request PDU of a served function has the size its function code prescribes."""
    size = request_pdu_size(pdu)
    if size is None:  # a function without a size rule here, or a 16 too short for its byte count
        return pdu[0] != 16
    return len(pdu) == size


def exception_frame(frame: Frame, code: int) -> bytes:
    """The exception reply to `frame`: its function code | 0x80 and `code`, its transaction and unit id."""
    return struct.pack(">HHHBBB", frame.tid, 0, 3, frame.unit, (frame.pdu[0] | 0x80) & 0xFF, code)
