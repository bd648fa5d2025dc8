"""A minimal Modbus TCP server holding a robot tool position as float32 registers (tests only).

Written on raw sockets (function 3, read holding registers) so the wizard's pymodbus client is
tested against the protocol itself, not against pymodbus's own server.
"""

from __future__ import annotations

import contextlib
import socket
import struct
import threading


class RobotPositionServer:
    def __init__(self, address: int = 100, device_id: int = 1, word_order: str = "big"):
        self.address, self.device_id, self.word_order = address, device_id, word_order
        self.position = (0.0, 0.0, 0.0)
        self.reads = 0
        self._sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self._sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self._sock.bind(("127.0.0.1", 0))
        self._sock.listen(4)
        self._sock.settimeout(0.2)
        self.port = self._sock.getsockname()[1]
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._serve, daemon=True)

    def __enter__(self) -> RobotPositionServer:
        self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self._stop.set()
        self._thread.join(timeout=5)
        self._sock.close()

    def _registers(self) -> list[int]:
        words = []
        for value in self.position:
            hi, lo = struct.unpack(">HH", struct.pack(">f", value))
            words += [hi, lo] if self.word_order == "big" else [lo, hi]
        return words

    def _serve(self) -> None:
        while not self._stop.is_set():
            try:
                conn, _ = self._sock.accept()
            except TimeoutError:
                continue
            with conn:
                conn.settimeout(2.0)
                with contextlib.suppress(TimeoutError, ConnectionError, struct.error):
                    self._answer(conn)

    def _answer(self, conn: socket.socket) -> None:
        while not self._stop.is_set():
            header = conn.recv(7)
            if len(header) < 7:
                return
            tid, _, length, unit = struct.unpack(">HHHB", header)
            pdu = conn.recv(length - 1)
            function, start, count = struct.unpack(">BHH", pdu[:5])
            registers = self._registers()
            offset = start - self.address
            if unit != self.device_id or function != 3 or offset < 0 or offset + count > len(registers):
                body = struct.pack(">BB", function | 0x80, 2)  # illegal data address
            else:
                self.reads += 1
                words = registers[offset : offset + count]
                body = struct.pack(f">BB{count}H", function, 2 * count, *words)
            conn.sendall(struct.pack(">HHHB", tid, 0, len(body) + 1, unit) + body)
