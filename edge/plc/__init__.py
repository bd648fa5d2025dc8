"""The PLC interface: one register map served over Modbus TCP and RTU, and the trigger handshake."""
