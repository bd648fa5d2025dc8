"""A configured PLC link that cannot start stops the appliance's start: `PlcService.start` raises
`PlcStartError` naming the link, its keys and the cause, leaves nothing serving, and `binpick run`
exits with that one line and code 2 (so systemd restarts it) instead of cycling on with rc 0."""

from __future__ import annotations

import socket
import subprocess
import sys
from pathlib import Path

import pytest
from appliance_helpers import free_port
from appliance_only import folder_config

from edge.config import PlcSection
from edge.plc.bank import RegisterBank
from edge.plc.register_map import RegisterMap
from edge.plc.service import PlcService, PlcStartError

pytestmark = pytest.mark.timeout(120)
ROOT = Path(__file__).resolve().parents[1]
MAP = RegisterMap.load()


def start(cfg: PlcSection) -> PlcService:
    service = PlcService(RegisterBank(MAP), cfg)
    try:
        service.start()
    except PlcStartError:
        assert service._thread is None  # stopped: no heartbeat, no server left behind
        raise
    service.stop()
    return service


def run_one_cycle(config: Path) -> subprocess.CompletedProcess:
    """`binpick run --config CONFIG --cycles 1` in a fresh interpreter."""
    return subprocess.run(
        [sys.executable, "-m", "edge", "run", "--config", str(config), "--cycles", "1"],
        capture_output=True,
        text=True,
        timeout=100,
        cwd=ROOT,
    )


def test_a_port_in_use_is_a_start_error():
    with socket.create_server(("127.0.0.1", 0)) as taken:
        port = taken.getsockname()[1]
        with pytest.raises(PlcStartError) as err:
            start(PlcSection(tcp_port=port))
    assert str(err.value) == (
        f"Modbus TCP cannot listen on 127.0.0.1:{port} (plc.tcp_host, plc.tcp_port): Address already in use"
    )


def test_an_unknown_host_is_a_start_error():
    with pytest.raises(PlcStartError, match=r"Modbus TCP cannot listen on no\.such\.host\.invalid:"):
        start(PlcSection(tcp_host="no.such.host.invalid", tcp_port=free_port()))


def test_a_missing_serial_port_is_a_start_error_and_the_tcp_server_is_closed_again(tmp_path):
    port, tty = free_port(), tmp_path / "ttyUSB9"
    with pytest.raises(PlcStartError) as err:
        start(PlcSection(tcp_port=port, rtu_enabled=True, rtu_port=str(tty)))
    assert str(err.value) == f"Modbus RTU cannot open plc.rtu_port = '{tty}': No such file or directory"
    with socket.create_server(("127.0.0.1", port)):  # the TCP server that did start is gone
        pass


def test_run_exits_2_with_one_line_when_the_modbus_port_is_taken(tmp_path):
    config, tcp_port = folder_config(tmp_path)
    with socket.create_server(("127.0.0.1", tcp_port)):
        proc = run_one_cycle(config)
    assert proc.returncode == 2, proc.stdout + proc.stderr
    assert "cycle 1" not in proc.stdout
    last = proc.stderr.strip().splitlines()[-1]
    assert last == (
        f"binpick run: error: Modbus TCP cannot listen on 127.0.0.1:{tcp_port} "
        "(plc.tcp_host, plc.tcp_port): Address already in use"
    ), proc.stderr


def test_run_exits_2_with_one_line_when_the_status_page_port_is_taken(tmp_path):
    """The operator's page and /metrics are the cell's health: a page that cannot listen stops the
    start as a PLC link does, instead of an appliance that no monitoring can see."""
    http_port = free_port()
    config, _ = folder_config(tmp_path, http_port=f"http_port = {http_port}")
    with socket.create_server(("127.0.0.1", http_port)):
        proc = run_one_cycle(config)
    assert proc.returncode == 2, proc.stdout + proc.stderr
    last = proc.stderr.strip().splitlines()[-1]
    assert last == (
        f"binpick run: error: status page cannot listen on 127.0.0.1:{http_port} "
        "(health.http_host, health.http_port): Address already in use"
    ), proc.stderr


def test_all_interfaces_with_the_port_taken_says_the_port_is_taken():
    """tcp_host = "" is every interface (pymodbus and the config accept it); the cause had read
    "Name or service not known" from looking "" up as a host name."""
    with socket.create_server(("127.0.0.1", 0)) as taken:  # tests bind to loopback only
        port = taken.getsockname()[1]
        with pytest.raises(PlcStartError) as err:
            start(PlcSection(tcp_host="", tcp_port=port))
    assert str(err.value).endswith("Address already in use"), str(err.value)
