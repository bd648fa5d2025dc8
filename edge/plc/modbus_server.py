"""Modbus TCP and RTU servers (pymodbus 3.16 `SimDevice` API) over one `RegisterBank`.

pymodbus builds a private register image per server; we keep the appliance's one image in the
bank and attach it to each server through the SimDevice `action` hook, which sees every request
before pymodbus touches its own copy: reads are filled from the bank, writes are validated and
applied by the bank (a rejected write answers a Modbus exception and sets the error code). So the
TCP and the serial server share one register map and one handshake state.
"""

from __future__ import annotations

import logging

from pymodbus.constants import ExcCodes
from pymodbus.server import ModbusSerialServer, ModbusTcpServer
from pymodbus.simulator import DataType, SimData, SimDevice

from edge.plc.bank import RegisterBank, WriteRejected

log = logging.getLogger(__name__)


def _device(bank: RegisterBank, device_id: int) -> SimDevice:
    async def action(
        function_code: int,
        start_address: int,
        address: int,
        count: int,
        current_registers: list[int],
        set_values: list[int] | list[bool] | None,
    ) -> ExcCodes | None:
        offset = address - start_address
        if set_values is None:
            current_registers[offset : offset + count] = bank.read(address, count)
            return None
        try:
            bank.plc_write(address, [int(v) for v in set_values])
        except WriteRejected as exc:
            log.warning("rejected PLC write at %d: %s", address, exc)
            return ExcCodes(exc.exception_code)
        return None

    simdata = SimData(address=0, count=bank.map.size, values=0, datatype=DataType.REGISTERS)
    return SimDevice(id=device_id, simdata=[simdata], action=action)


def tcp_server(bank: RegisterBank, host: str, port: int) -> ModbusTcpServer:
    """A TCP server answering every unit id (device id 0 = all); start with `serve_forever`."""
    return ModbusTcpServer(_device(bank, 0), address=(host, port))


def rtu_server(
    bank: RegisterBank, port: str, device_id: int, baudrate: int, parity: str, stopbits: int, bytesize: int
) -> ModbusSerialServer:
    """An RTU server on a serial line, answering `device_id` (the RS-485 bus address)."""
    return ModbusSerialServer(
        _device(bank, device_id),
        port=port,
        baudrate=baudrate,
        parity=parity,
        stopbits=stopbits,
        bytesize=bytesize,
    )
