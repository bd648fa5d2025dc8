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


@pytest.mark.parametrize("host", ["not a host", "plc_1", "-plc", "10.0.0.1:502", "a..b", "x" * 64])
@pytest.mark.parametrize(("section", "key"), [("plc", "tcp_host"), ("health", "http_host")])
def test_a_host_that_is_no_address_nor_name_is_refused(host, section, key):
    """It read as "beyond loopback", sending the user after an allow-list for a typo."""
    text = f'[inference]\nmodel = "model.onnx"\n[{section}]\n{key} = "{host}"\n'
    with pytest.raises(ConfigError) as err:
        parse_config(text, PATH, check_files=False)
    assert f"{PATH}: {section}.{key} = '{host}': not an IP address or host name" in str(err.value)


@pytest.mark.parametrize("host", ["localhost", "127.0.0.1", "::1", "", "vision-01.plant.example."])
def test_addresses_and_host_names_pass_the_host_check(host):
    parse_config(plc(f'tcp_host = "{host}"\nallowed_clients = ["10.0.0.0/8"]'), PATH, check_files=False)
