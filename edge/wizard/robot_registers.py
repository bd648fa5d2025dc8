"""The robot's current tool position read over Modbus TCP, so the technician need not type it.

Many robot controllers (or the PLC in front of them) publish the tool-centre point as float32
holding registers. The layout is the integrator's choice, so every part of it is configurable:
address of X (0-based), then Y and Z, two registers each, word order, device id.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from pymodbus.client import ModbusTcpClient
from pymodbus.exceptions import ModbusException

from edge.wizard.robot import StepError


@dataclass(frozen=True)
class RobotRegisters:
    host: str
    port: int = 502
    address: int = 0  # 0-based holding register of X; Y at +2, Z at +4
    device_id: int = 1
    word_order: str = "big"  # "big": high word first
    timeout_s: float = 2.0

    @classmethod
    def parse(
        cls, endpoint: str, address: int = 0, device_id: int = 1, word_order: str = "big"
    ) -> RobotRegisters:
        host, sep, port = endpoint.rpartition(":")
        if not sep or not host or not port.isdigit() or not 0 < int(port) < 65536:
            raise ValueError(f"expected HOST:PORT, e.g. 192.168.0.10:502, got {endpoint!r}")
        if word_order not in ("big", "little"):
            raise ValueError(f"word order must be 'big' or 'little', got {word_order!r}")
        return cls(host, int(port), address, device_id, word_order)

    def where(self) -> str:
        first, last = self.address, self.address + 5
        return f"{self.host}:{self.port} (device {self.device_id}, holding registers {first}..{last})"

    def read_xyz(self) -> np.ndarray:
        """Tool position x, y, z in mm; StepError with what to check when it cannot be read."""
        client = ModbusTcpClient(self.host, port=self.port, timeout=self.timeout_s, retries=1)
        try:
            if not client.connect():
                raise StepError(
                    f"cannot connect to the robot at {self.where()}: check the address and the network"
                )
            reply = client.read_holding_registers(self.address, count=6, device_id=self.device_id)
            if reply.isError():
                raise StepError(f"the robot at {self.where()} refused the read: {reply}")
            values = client.convert_from_registers(
                reply.registers, ModbusTcpClient.DATATYPE.FLOAT32, word_order=self.word_order
            )
        except ModbusException as exc:
            raise StepError(f"reading the robot at {self.where()} failed: {exc}") from None
        finally:
            client.close()
        xyz = np.asarray(values, dtype=np.float64)
        if xyz.shape != (3,) or not np.all(np.isfinite(xyz)):
            raise StepError(
                f"the robot at {self.where()} gave {values}: check the register address and word order"
            )
        return xyz
