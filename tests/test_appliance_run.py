"""`binpick run` end to end, as a subprocess, with real peers on loopback: a pymodbus client
driving the trigger handshake, mbpoll reading the grasp, the status page, snapshots, faults."""

from __future__ import annotations

import asyncio
import importlib.util
import json
import time
import urllib.request

import pytest
from appliance_helpers import (
    MBPOLL_RTU,
    RTU_BAUDRATE,
    Appliance,
    appliance_config,
    mbpoll,
    socat_pair,
    tiny_model,
    wait_port,
    wait_until,
    write_pile_folder,
)
from pymodbus.client import AsyncModbusTcpClient

from edge.plc.register_map import RegisterMap

pytestmark = pytest.mark.timeout(150)
MAP = RegisterMap.load()
words_to_float = MAP.words_to_float  # the word order registers.toml states
A = {name: reg.address for name, reg in MAP.by_name.items()}


@pytest.fixture(scope="module")
def model(tmp_path_factory):
    return tiny_model(tmp_path_factory.mktemp("model"))


@pytest.fixture(scope="module")
def triggered(tmp_path_factory, model):
    """One appliance in triggered mode on a replay folder, shared by the handshake tests."""
    tmp = tmp_path_factory.mktemp("triggered")
    folder = write_pile_folder(tmp / "frames", count=4)
    with socat_pair(tmp) as (server_tty, client_tty):
        rtu = f'rtu_enabled = true\nrtu_port = "{server_tty}"\nrtu_baudrate = {RTU_BAUDRATE}\n'
        config, port, http = appliance_config(
            tmp, model, camera=f'source = "folder"\nfolder = "{folder}"', plc=rtu
        )
        app = Appliance(config, tmp)
        try:
            wait_port(port, 60)
            wait_port(http, 10)
            wait_until(lambda: status_json(http)["state"] == "running", 20, what="the cycle to start")
            yield app, port, http, tmp, client_tty
        finally:
            code = app.stop()
            assert code == 0, app.log()


def status_json(http: int) -> dict:
    return json.loads(urllib.request.urlopen(f"http://127.0.0.1:{http}/status.json", timeout=5).read())


async def read_all(client) -> list[int]:
    response = await client.read_holding_registers(0, count=MAP.size, device_id=1)
    assert not response.isError(), response
    return response.registers


def bit(words: list[int], name: str) -> bool:
    return bool(words[A["status"]] & MAP.bit_mask(name))


async def trigger_cycle(client, trigger: int, last_sequence: int, timeout: float = 20.0) -> list[int]:
    """Write a trigger and poll until its result is complete; checks freshness on every poll."""
    await client.write_register(A["trigger_id"], trigger, device_id=1)
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        words = await read_all(client)
        if bit(words, "result_valid"):  # never the previous result presented as fresh
            assert words[A["request_id"]] == trigger and words[A["sequence_id"]] != last_sequence, words
        done = words[A["trigger_ack"]] == trigger and not bit(words, "busy")
        if done and words[A["sequence_id"]] != last_sequence:
            return words
        await asyncio.sleep(0.01)
    raise AssertionError(f"trigger {trigger} not answered within {timeout} s")


def run_one_cycle(port: int, trigger: int) -> list[int]:
    """One cycle through the handshake on a fresh connection (`trigger` moved on by one if the
    PLC side wrote it last, since the same id again requests nothing); returns its registers.
    Tests on the shared appliance make the results they read, whatever ran before them."""

    async def scenario():
        client = AsyncModbusTcpClient("127.0.0.1", port=port, timeout=5)
        assert await client.connect()
        try:
            words = await read_all(client)
            request = trigger % 65535 + 1 if words[A["trigger_id"]] == trigger else trigger
            return await trigger_cycle(client, request, words[A["sequence_id"]])
        finally:
            client.close()

    return asyncio.run(scenario())


def test_pymodbus_client_drives_many_triggered_cycles_with_fresh_unique_sequence_ids(triggered):
    app, port, *_ = triggered

    async def scenario():
        client = AsyncModbusTcpClient("127.0.0.1", port=port, timeout=5)
        assert await client.connect()
        try:
            deadline = time.monotonic() + 20
            while not bit(words := await read_all(client), "ready") and time.monotonic() < deadline:
                await asyncio.sleep(0.05)  # the Modbus port opens before the cycle starts
            assert words[A["model_id"]] == 4242 and bit(words, "ready") and bit(words, "triggered")
            assert bit(words, "pixel_mode")
            sequence, seen = words[A["sequence_id"]], []
            for i in range(25):
                trigger = 1000 + i
                words = await trigger_cycle(client, trigger, sequence)
                assert words[A["sequence_id"]] == sequence % 65535 + 1  # exactly one new result per trigger
                sequence = words[A["sequence_id"]]
                seen.append(sequence)
                assert words[A["request_id"]] == trigger
                assert bit(words, "result_valid"), words
                assert words[A["error_code"]] == 0
                x = words_to_float(words[A["x"]], words[A["x"] + 1])
                latency = words_to_float(words[A["latency"]], words[A["latency"] + 1])
                assert 0 <= x <= 96 and 0 < latency < 10000
                await client.write_register(A["result_ack"], sequence, device_id=1)
                assert not bit(await read_all(client), "result_valid")  # consumed: not new any more
            assert len(set(seen)) == len(seen)
        finally:
            client.close()

    asyncio.run(scenario())


def test_mbpoll_reads_the_grasp_registers_from_the_running_appliance(triggered):
    _, port, *_ = triggered
    tcp = ("-m", "tcp", "-p", str(port), "-a", "1")
    mbpoll(*tcp, "-r", str(A["trigger_id"]), "127.0.0.1", "31000")

    def answered():
        w = mbpoll(*tcp, "-r", "0", "-c", str(MAP.size), "127.0.0.1")
        return w if w[A["trigger_ack"]] == 31000 and not int(w[A["status"]]) & MAP.bit_mask("busy") else None

    words = wait_until(answered, 20, interval=0.1, what="the cycle of trigger 31000")
    assert words[A["request_id"]] == 31000
    floats = mbpoll(*tcp, "-r", str(A["x"]), "-c", "5", "-t", "4:float", "-B", "127.0.0.1")
    assert 0 <= floats[A["x"]] <= 96 and 0 <= floats[A["y"]] <= 96 and floats[A["z"]] == 0.0  # pixel mode


def test_mbpoll_reads_the_same_grasp_over_rtu_through_a_socat_pty_pair(triggered):
    _, port, _, _, client_tty = triggered
    words = run_one_cycle(port, 9001)  # a grasp to read, whatever ran before
    assert words[A["result_error"]] == 0 and bit(words, "result_valid"), words
    tcp = ("-m", "tcp", "-p", str(port), "-a", "1")
    floats = ("-r", str(A["x"]), "-c", "3", "-t", "4:float", "-B")
    sequence = ("-r", str(A["sequence_id"]), "-c", "1")
    for _ in range(5):  # a cycle between the two reads (free-run) changes the grasp: read again
        before = mbpoll(*MBPOLL_RTU, *sequence, client_tty, timeout=15)[A["sequence_id"]]
        over_rtu = mbpoll(*MBPOLL_RTU, *floats, client_tty, timeout=15)
        over_tcp = mbpoll(*tcp, *floats, "127.0.0.1")
        after = mbpoll(*tcp, *sequence, "127.0.0.1")[A["sequence_id"]]
        if before == after:
            break
    else:
        raise AssertionError(f"a new sequence id between the RTU and TCP reads each time ({before}, {after})")
    assert over_rtu == over_tcp, (over_rtu, over_tcp)
    assert set(over_rtu) == {A["x"], A["y"], A["z"]} and over_rtu[A["x"]] > 0 and over_rtu[A["y"]] > 0
    if before == words[A["sequence_id"]]:  # triggered mode: the very grasp the handshake returned
        x = words_to_float(words[A["x"]], words[A["x"] + 1])
        y = words_to_float(words[A["y"]], words[A["y"] + 1])
        assert over_rtu[A["x"]] == pytest.approx(x, rel=1e-4)
        assert over_rtu[A["y"]] == pytest.approx(y, rel=1e-4)


def test_plc_disconnecting_mid_cycle_gets_its_result_after_reconnecting(triggered):
    _, port, *_ = triggered

    async def scenario():
        client = AsyncModbusTcpClient("127.0.0.1", port=port, timeout=5)
        await client.connect()
        before = (await read_all(client))[A["sequence_id"]]
        await client.write_register(A["trigger_id"], 4321, device_id=1)
        client.close()  # gone while the cycle runs
        await asyncio.sleep(0.05)
        client = AsyncModbusTcpClient("127.0.0.1", port=port, timeout=5)
        await client.connect()
        try:
            deadline = time.monotonic() + 20
            while time.monotonic() < deadline:
                words = await read_all(client)
                if words[A["sequence_id"]] != before and not bit(words, "busy"):
                    return words
                await asyncio.sleep(0.02)
            raise AssertionError("no result after reconnecting")
        finally:
            client.close()

    words = asyncio.run(scenario())
    assert words[A["request_id"]] == 4321 and words[A["trigger_ack"]] == 4321


def test_bad_writes_and_idle_mode_are_reported_by_error_code(triggered):
    app, port, *_ = triggered

    async def scenario():
        client = AsyncModbusTcpClient("127.0.0.1", port=port, timeout=5)
        await client.connect()
        try:
            bad = await client.write_register(A["mode"], 7, device_id=1)
            assert bad.isError()
            words = await read_all(client)
            assert words[A["error_code"]] == MAP.error_code("invalid_plc_write") and bit(words, "error")
            await client.write_register(A["mode"], 0, device_id=1)  # idle
            assert not bit(await read_all(client), "ready")
            sequence = words[A["sequence_id"]]
            for trigger in (555, 554, 553):  # a PLC triggering while idle, again and again
                words = await trigger_cycle(client, trigger, sequence)
                sequence = words[A["sequence_id"]]
                assert words[A["result_error"]] == MAP.error_code("not_running") and not bit(
                    words, "result_valid"
                )
            await client.write_register(A["mode"], 1, device_id=1)
            words = await trigger_cycle(client, 556, words[A["sequence_id"]])
            assert (
                words[A["result_error"]] == 0 and words[A["error_code"]] == 0 and bit(words, "result_valid")
            )
        finally:
            await client.write_register(A["mode"], 1, device_id=1)  # run, even after a failure here
            client.close()

    asyncio.run(scenario())
    assert app.log().count("cycle error not_running") == 1  # each one answered, one logged a minute
    assert app.log().count("rejected PLC request") == 1


def test_a_failed_pick_reported_over_modbus_is_remembered_by_the_appliance(triggered):
    """The PLC writes pick_outcome = failed and the sequence id in one function-16 request; the
    next cycle lists that grasp as avoided (status page), with [pick_feedback]'s lifetime."""
    _, port, http, *_ = triggered
    for trigger in range(6901, 6911):  # spend any failed spot left by earlier tests (3 cycles each)
        if not status_json(http)["failed_picks_avoided"]:
            break
        run_one_cycle(port, trigger)
    assert status_json(http)["failed_picks_avoided"] == []

    async def scenario():
        client = AsyncModbusTcpClient("127.0.0.1", port=port, timeout=5)
        await client.connect()
        try:
            words = await trigger_cycle(client, 7001, (await read_all(client))[A["sequence_id"]])
            assert words[A["result_error"]] == 0, words
            sequence = words[A["sequence_id"]]
            u = words_to_float(words[A["x"]], words[A["x"] + 1])  # pixel mode: x, y are u, v
            v = words_to_float(words[A["y"]], words[A["y"] + 1])
            written = await client.write_registers(A["pick_outcome"], [2, sequence], device_id=1)
            assert not written.isError(), written
            await trigger_cycle(client, 7002, sequence)
            return u, v
        finally:
            client.close()

    u, v = asyncio.run(scenario())
    spots = status_json(http)["failed_picks_avoided"]
    assert len(spots) == 1 and spots[0][2] == 2  # 3 cycles by default, one spent
    assert spots[0][0] == pytest.approx(u, abs=0.1) and spots[0][1] == pytest.approx(v, abs=0.1)


def test_status_page_metrics_overlay_and_on_demand_snapshot(triggered):
    _, port, http, tmp, _ = triggered
    base = f"http://127.0.0.1:{http}"
    cycles = status_json(http)["cycles"]
    words = run_one_cycle(port, 8001)  # a cycle of its own to report, whatever ran before
    assert words[A["result_error"]] == 0, words
    # The registers come first; the statistics and the overlay follow in the same cycle.
    status = wait_until(
        lambda: (s := status_json(http))["cycles"] > cycles and s, 10, what="the cycle on the status page"
    )
    assert status["state"] == "running" and status["pixel_mode"] is True
    assert status["last_result"]["sequence"] == words[A["sequence_id"]]
    assert "total" in status["cycle_ms"] and "p95" in status["cycle_ms"]["total"]
    assert status["inference"]["backend"] == "onnxruntime"
    metrics = urllib.request.urlopen(f"{base}/metrics", timeout=5).read().decode()
    assert (
        "binpick_cycles_total" in metrics
        and 'binpick_cycle_duration_milliseconds{stage="total",quantile="0.95"}' in metrics
    )
    png = urllib.request.urlopen(f"{base}/overlay.png", timeout=5).read()
    assert png.startswith(b"\x89PNG")
    assert b"<html>" in urllib.request.urlopen(base, timeout=5).read()
    request = urllib.request.Request(f"{base}/snapshot", method="POST", data=b"")
    folder = json.loads(urllib.request.urlopen(request, timeout=10).read())["snapshot"]
    files = {p.name for p in (tmp / "snapshots" / folder.split("/")[-1]).iterdir()}
    assert {
        "rgb.png",
        "boundaries.png",
        "occlusions.png",
        "result.json",
        "config.json",
        "overlay.png",
    } <= files


def test_free_run_prints_one_line_per_cycle_and_reports_a_corrupt_frame(tmp_path, model):
    folder = write_pile_folder(tmp_path / "frames", count=3, corrupt=(1,))
    config, _, _ = appliance_config(
        tmp_path, model, mode="free-run", camera=f'source = "folder"\nfolder = "{folder}"\nloop = false'
    )
    app = Appliance(config, tmp_path, "--cycles", "3")
    assert app.proc.wait(timeout=90) == 0, app.log()
    lines = app.output().strip().splitlines()
    assert len(lines) == 3, lines
    assert lines[0].startswith("cycle 1 seq 1 grasp x=") and "[pixel mode]" in lines[0]
    assert lines[1].startswith("cycle 2 seq 2 error no_image") and "frame_001.png" in lines[1]
    assert lines[2].startswith("cycle 3 seq 3 grasp x=")
    snapshots = list((tmp_path / "snapshots").iterdir())
    assert any("failure-no_image" in p.name for p in snapshots)  # evidence kept on failure
    app.stop()


def test_required_calibration_missing_fails_cycles_with_its_error_code(tmp_path, model):
    """The start does not insist on it (first commissioning: the wizard writes it while the
    appliance runs); --check-config does (tests/test_config_input.py)."""
    folder = write_pile_folder(tmp_path / "frames", count=1)
    config, _, _ = appliance_config(
        tmp_path, model, mode="free-run", camera=f'source = "folder"\nfolder = "{folder}"',
        extra=f'[calibration]\nfile = "{tmp_path / "absent.json"}"\nrequired = true\n',
    )  # fmt: skip
    app = Appliance(config, tmp_path, "--cycles", "2")
    assert app.proc.wait(timeout=90) == 0, app.log()
    lines = app.output().strip().splitlines()
    assert all("error calibration_missing" in line and "absent.json" in line for line in lines), lines
    app.stop()
    check = Appliance(config, tmp_path, "--check-config")
    assert check.proc.wait(timeout=60) == 2 and "calibration.file = " in check.log(), check.log()
    check.stop()


@pytest.mark.skipif(
    importlib.util.find_spec("mikado") is None, reason="Mikado (pip install .[sim]) not installed"
)
def test_simulated_bin_runs_the_whole_loop_without_hardware(tmp_path, model):
    config, _, _ = appliance_config(
        tmp_path, model, mode="free-run", camera='source = "simulated"\nwidth = 64\nheight = 64\nseed = 5'
    )
    app = Appliance(config, tmp_path, "--cycles", "2")
    assert app.proc.wait(timeout=120) == 0, app.log()
    lines = app.output().strip().splitlines()
    assert [line.split(" grasp ")[0] for line in lines] == ["cycle 1 seq 1", "cycle 2 seq 2"], lines
    app.stop()


def test_camera_ok_before_the_first_trigger_and_0_re_arms_the_same_trigger_id(tmp_path, model):
    """A fresh triggered appliance: camera_ok is 1 from start (a PLC waiting for it before its
    first trigger used to wait forever), and trigger 5, then 0, then 5 again runs two cycles."""
    folder = write_pile_folder(tmp_path / "frames", count=2)
    config, port, _ = appliance_config(tmp_path, model, camera=f'source = "folder"\nfolder = "{folder}"')
    app = Appliance(config, tmp_path)

    async def scenario():
        client = AsyncModbusTcpClient("127.0.0.1", port=port, timeout=5)
        assert await client.connect()
        try:
            deadline = time.monotonic() + 30
            while not bit(words := await read_all(client), "ready") and time.monotonic() < deadline:
                await asyncio.sleep(0.05)
            assert bit(words, "ready") and words[A["mode"]] == int(MAP.mode.run), words
            assert words[A["sequence_id"]] == 0 and words[A["trigger_ack"]] == 0  # no trigger yet
            assert bit(words, "camera_ok"), "camera_ok is 0 before the first trigger"
            first = await trigger_cycle(client, 5, 0)
            assert first[A["request_id"]] == 5 and bit(first, "camera_ok")
            await client.write_register(A["trigger_id"], 0, device_id=1)  # re-arm
            second = await trigger_cycle(client, 5, first[A["sequence_id"]])
            assert second[A["sequence_id"]] == first[A["sequence_id"]] + 1 and second[A["request_id"]] == 5
        finally:
            client.close()

    try:
        wait_port(port, 60)
        asyncio.run(scenario())
    finally:
        assert app.stop() == 0, app.log()
