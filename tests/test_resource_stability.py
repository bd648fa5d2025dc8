"""Nothing per client or per cycle stays behind in the appliance: PLC sessions, page requests and
dropped live streams that come and go leave it with the descriptors and threads it had, and its
/metrics say what /proc says (the figures an operator's leak alert reads).

The appliance is `binpick run` in a child process (free-run on a replay folder, untrained model),
measured from outside through its /proc; the clients are `benchmarks.soak`'s, real pymodbus and
HTTP clients on 127.0.0.1. The long run of the same is `python -m benchmarks.soak`."""

from __future__ import annotations

import os
import resource
import subprocess
import sys
import time
from pathlib import Path

import pytest
from appliance_helpers import (
    Appliance,
    appliance_config,
    tiny_model,
    wait_port,
    wait_until,
    write_pile_folder,
)

from benchmarks.soak import ChurnCounts, Sample, churn_once, read_metrics, summarize, take_sample
from edge.health.process_stats import read_process_stats
from edge.plc.register_map import RegisterMap

pytestmark = [
    pytest.mark.timeout(240),
    pytest.mark.skipif(not Path("/proc/self/stat").exists(), reason="reads Linux's /proc"),
]


def _status_fields(pid: int) -> dict[str, str]:
    """/proc/<pid>/status as a dict: the kernel's other account of the same process."""
    lines = Path(f"/proc/{pid}/status").read_text().splitlines()
    return {k: v.strip() for k, _, v in (line.partition(":") for line in lines)}


def test_process_stats_read_a_process_whose_name_holds_spaces_and_parentheses(tmp_path):
    """/proc/<pid>/stat's second field is the command name in parentheses, spaces and ')' allowed:
    the fields after it must be found from the last ')', or every number is off by a field."""
    odd = tmp_path / "odd) name (x"
    odd.symlink_to(sys.executable)
    script = (
        "import threading, time\nfor _ in range(3): threading.Thread(target=time.sleep, args=(30,)).start()\n"
    )
    limit = (777, resource.getrlimit(resource.RLIMIT_NOFILE)[1])  # the child's own, not the reader's
    child = subprocess.Popen(
        [str(odd), "-c", script + "time.sleep(30)"],
        preexec_fn=lambda: resource.setrlimit(resource.RLIMIT_NOFILE, limit),
    )
    try:
        wait_until(lambda: _status_fields(child.pid).get("Threads") == "4", 10, what="the child's threads")
        assert Path(f"/proc/{child.pid}/comm").read_text().strip() == "odd) name (x"
        stats = read_process_stats(Path(f"/proc/{child.pid}"))
        status = _status_fields(child.pid)
        assert stats.threads == 4
        rss_kb = int(status["VmRSS"].split()[0])
        assert abs(stats.resident_memory_bytes / 1024 - rss_kb) <= 0.05 * rss_kb
        assert stats.virtual_memory_bytes / 1024 == pytest.approx(int(status["VmSize"].split()[0]), rel=0.05)
        assert stats.open_fds == len(os.listdir(f"/proc/{child.pid}/fd"))
        assert stats.max_fds == 777
        assert 0 <= time.time() - stats.start_time_seconds < 30
        assert 0 <= stats.cpu_seconds < 30
    finally:
        child.kill()
        child.wait(10)


def test_clients_that_come_and_go_leave_no_descriptor_or_thread_behind(tmp_path):
    frames = write_pile_folder(tmp_path / "frames", count=3)
    config, modbus_port, http_port = appliance_config(
        tmp_path,
        tiny_model(tmp_path),
        camera=f'source = "folder"\nfolder = "{frames}"',
        mode="free-run",
        appliance="cycle_period_s = 0.05",
    )
    registers = RegisterMap.load().size
    app = Appliance(config, tmp_path)
    try:
        wait_port(http_port, 60)
        wait_until(lambda: read_metrics(http_port).get("binpick_cycles_total", 0) >= 3, 60, what="3 cycles")
        pid = app.proc.pid

        counts = ChurnCounts()
        for i in range(6):  # every kind of client once, so that lazily made parts exist before the count
            churn_once(modbus_port, http_port, registers, with_stream=i % 2 == 0, counts=counts)
        time.sleep(1.0)
        base = read_process_stats(Path(f"/proc/{pid}"))
        cycles_before = read_metrics(http_port)["binpick_cycles_total"]

        for i in range(60):
            churn_once(modbus_port, http_port, registers, with_stream=i % 4 == 0, counts=counts)
        assert counts.failures == 0, counts
        assert (counts.modbus_sessions, counts.streams) == (66, 18)

        def settled() -> bool:
            now = read_process_stats(Path(f"/proc/{pid}"))
            return now.open_fds <= base.open_fds and now.threads <= base.threads

        try:
            wait_until(settled, 15, interval=0.2, what="descriptors and threads back where they were")
        except AssertionError:
            now = read_process_stats(Path(f"/proc/{pid}"))
            listing = sorted(os.readlink(f"/proc/{pid}/fd/{fd}") for fd in os.listdir(f"/proc/{pid}/fd"))
            pytest.fail(
                f"after 60 client rounds: {now.open_fds} descriptors (were {base.open_fds}), "
                f"{now.threads} threads (were {base.threads}); open: {listing}"
            )
        assert read_metrics(http_port)["binpick_cycles_total"] > cycles_before, "the cell stopped cycling"

        # /metrics report the process /proc shows: the request being answered holds one socket more
        metrics = read_metrics(http_port)
        proc = read_process_stats(Path(f"/proc/{pid}"))
        assert abs(metrics["process_open_fds"] - proc.open_fds) <= 2
        assert abs(metrics["binpick_process_threads"] - proc.threads) <= 2
        assert metrics["process_resident_memory_bytes"] == pytest.approx(proc.resident_memory_bytes, rel=0.2)
        assert metrics["process_start_time_seconds"] == pytest.approx(proc.start_time_seconds, abs=1.0)
        assert metrics.get("process_max_fds") == proc.max_fds  # both None where unlimited
        sample = take_sample(pid, http_port, time.monotonic())
        assert sample.cycles >= cycles_before and sample.threads == pytest.approx(proc.threads, abs=2)
    finally:
        assert app.stop() == 0, app.log()


def test_the_soak_report_leaves_out_the_warm_up_and_fits_the_memory_growth():
    """10 MB an hour after a warm-up that doubled the memory: the slope is the leak, not the start."""

    def sample(t: float, rss: float, fds: int) -> Sample:
        return Sample(
            t_s=t, cycles=int(t), rss_mb=rss, open_fds=fds, threads=9, cpu_s=t / 2, cycle_p50_ms=40.0
        )

    warm = [sample(t, 100.0 + t, 30) for t in range(0, 100, 10)]  # memory doubling while loading
    steady = [sample(t, 200.0 + 10.0 * (t - 100) / 3600, 12 + (t == 400)) for t in range(100, 3701, 300)]
    summary = summarize(warm + steady, warmup_s=100.0)
    assert summary["rss_slope_mb_per_h"] == pytest.approx(10.0, abs=0.01)
    assert summary["rss_mb"]["start"] == 200.0 and summary["rss_mb"]["end"] == pytest.approx(210.0, abs=0.01)
    assert summary["open_fds"] == {"start": 12, "end": 12, "max": 13}
    # the floor: the lowest reading of the first and the last quarter (t 100-1000 and 2800-3700 s)
    assert summary["rss_floor_mb"] == {
        "first_quarter": 200.0,
        "last_quarter": pytest.approx(200 + 27000 / 3600),
    }
    assert summary["rss_floor_growth_mb_per_h"] == pytest.approx(10.0, abs=0.01)
    assert summary["cycles_per_s"] == 1.0 and summary["cpu_s_per_cycle"] == 0.5
    with pytest.raises(ValueError, match="1 samples after the 3600 s warm-up"):
        summarize(warm + steady, warmup_s=3600.0)
