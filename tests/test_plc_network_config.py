"""A Modbus TCP server bound beyond loopback needs an allow-list: without one, any host on the plant
network could write `mode` and `trigger_id` (issue 21)."""

from __future__ import annotations

from pathlib import Path

import pytest

from edge.config import ConfigError, parse_config

PATH = Path("/etc/binpick/binpick.toml")


def plc(lines: str) -> str:
    return f'[inference]\nmodel = "model.onnx"\n[plc]\n{lines}\n'


@pytest.mark.parametrize("host", ["0.0.0.0", "192.168.10.5", "::"])
def test_non_loopback_modbus_without_an_allow_list_is_refused(host):
    expected = rf"plc.tcp_host = '{host}' is beyond loopback: expected plc.allowed_clients"
    with pytest.raises(ConfigError, match=expected):
        parse_config(plc(f'tcp_host = "{host}"'), PATH, check_files=False)


@pytest.mark.parametrize(
    "lines",
    [
        'tcp_host = "0.0.0.0"\nallowed_clients = ["192.168.10.10"]',
        'tcp_host = "0.0.0.0"\nreadonly_clients = ["192.168.10.0/24"]',
        'tcp_host = "127.0.0.1"',
        'tcp_host = "0.0.0.0"\ntcp_enabled = false',
    ],
)
def test_an_allow_list_loopback_or_no_tcp_server_passes(lines):
    parse_config(plc(lines), PATH, check_files=False)
