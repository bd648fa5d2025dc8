"""Soak: the appliance for a long run while PLC and page clients come and go; does it leak?

    python -m benchmarks.soak [--config firmware_config/embedded.toml] [--minutes 30]
                              [--sample-s 10] [--warmup-s S] [--churn-s 1] [--out out/soak.json]

A cell runs for months between restarts, so memory, open files or threads that grow with cycles or
with connections would end in an out-of-memory kill or "too many open files" in the middle of a
shift. This runs `binpick run` as systemd does (a child process, the given configuration) and,
while it cycles, plays the clients a cell has: every `--churn-s` a Modbus TCP client connects,
reads the register map and disconnects (a PLC that reconnects after each read, the worst case),
the status JSON, /metrics and the operator page's overview are fetched, and every tenth time a
live stream (/events) is opened for a moment and dropped, as a closed browser tab does.

Every `--sample-s` it reads the child's /proc (resident memory, open file descriptors, threads,
CPU time) and its /metrics (cycles, cycle time p50). After `--warmup-s` (model loading, the
allocator's arenas and caches filling) it reports each resource's growth to the end, and the
memory's growth rate in MB per hour two ways: a least-squares line over the readings, and the
lowest reading of the last quarter against that of the first (each cycle's arrays scatter the
readings by tens of MB; what stays allocated is the floor).

There is no alternative to compare side by side here: the figures are absolute, of this
machine, and the report names it. What to read: open files and threads should end where the
warm-up left them (each connection's descriptor and thread closed); memory should level off.
"""

from __future__ import annotations

import argparse
import http.client
import json
import re
import signal
import socket
import subprocess
import sys
import tempfile
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from benchmarks.arguments import output_file, write_output  # noqa: E402
from benchmarks.machine_info import machine_info  # noqa: E402
from edge.health.process_stats import read_process_stats  # noqa: E402


@dataclass(frozen=True)
class Sample:
    """One reading of the child appliance."""

    t_s: float  # since the appliance answered first
    cycles: int
    rss_mb: float
    open_fds: int
    threads: int
    cpu_s: float
    cycle_p50_ms: float | None


@dataclass
class ChurnCounts:
    """The client sessions played so far (a failed one counts as failed, not as done), the Modbus
    sessions' times (connect, read, close) and what each failure was."""

    modbus_sessions: int = 0
    http_requests: int = 0
    streams: int = 0
    failures: int = 0
    modbus_ms: list[float] = field(default_factory=list)
    failure_log: list[str] = field(default_factory=list)

    def failed(self, what: str) -> None:
        self.failures += 1
        if len(self.failure_log) < 50:
            self.failure_log.append(f"{time.strftime('%H:%M:%S')} {what}")

    def to_dict(self) -> dict:
        ms = np.array(self.modbus_ms) if self.modbus_ms else np.zeros(1)
        return {
            "modbus_sessions": self.modbus_sessions,
            "http_requests": self.http_requests,
            "streams": self.streams,
            "failures": self.failures,
            "modbus_session_ms": {
                "p50": round(float(np.percentile(ms, 50)), 2),
                "p99": round(float(np.percentile(ms, 99)), 2),
                "max": round(float(ms.max()), 2),
            },
            "failure_log": self.failure_log,
        }


def churn_once(
    modbus_port: int, http_port: int, registers: int, with_stream: bool, counts: ChurnCounts
) -> None:
    """One round of a cell's clients: a Modbus session, three page requests, maybe a dropped stream."""
    from pymodbus.client import ModbusTcpClient
    from pymodbus.exceptions import ModbusException

    # One try with a PLC's patience (a second), so that a stall shows as a failure, not a retry.
    client = ModbusTcpClient("127.0.0.1", port=modbus_port, timeout=1.0, retries=0)
    start = time.perf_counter()
    try:
        if not client.connect():
            counts.failed("Modbus: no connection")
        elif client.read_holding_registers(0, count=registers, device_id=1).isError():
            counts.failed("Modbus: exception response")
        else:
            counts.modbus_sessions += 1
    except ModbusException as exc:
        counts.failed(f"Modbus: {exc}")
    finally:
        client.close()
        counts.modbus_ms.append((time.perf_counter() - start) * 1000.0)
    for path in ("/status.json", "/metrics", "/api/overview.json"):
        conn = http.client.HTTPConnection("127.0.0.1", http_port, timeout=10)
        try:
            conn.request("GET", path)
            response = conn.getresponse()
            response.read()
            if response.status == 200:
                counts.http_requests += 1
            else:
                counts.failed(f"GET {path}: {response.status}")
        except OSError as exc:
            counts.failed(f"GET {path}: {exc!r}")
        finally:
            conn.close()
    if with_stream:
        _drop_a_stream(http_port, counts)


def _drop_a_stream(http_port: int, counts: ChurnCounts) -> None:
    """Open /events, read its first bytes, and hang up without a word: a closed browser tab."""
    try:
        with socket.create_connection(("127.0.0.1", http_port), timeout=5) as s:
            s.sendall(b"GET /events HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n")
            if not s.recv(64).startswith(b"HTTP/1."):
                counts.failed("GET /events: no HTTP answer")
                return
        counts.streams += 1
    except OSError as exc:
        counts.failed(f"GET /events: {exc!r}")


def read_metrics(http_port: int) -> dict[str, float]:
    """The /metrics lines without labels, plus the total cycle time's p50 as `cycle_p50_ms`."""
    conn = http.client.HTTPConnection("127.0.0.1", http_port, timeout=10)
    try:
        conn.request("GET", "/metrics")
        text = conn.getresponse().read().decode()
    finally:
        conn.close()
    values: dict[str, float] = {}
    for line in text.splitlines():
        if line.startswith("#") or not line.strip():
            continue
        name, _, value = line.rpartition(" ")
        if name == 'binpick_cycle_duration_milliseconds{stage="total",quantile="0.5"}':
            values["cycle_p50_ms"] = float(value)
        elif re.fullmatch(r"[a-z_]+", name):
            values[name] = float(value)
    return values


def take_sample(pid: int, http_port: int, t0: float) -> Sample:
    """The child's resources from its /proc, its cycles from its /metrics."""
    metrics = read_metrics(http_port)
    proc = read_process_stats(Path(f"/proc/{pid}"))
    if proc.resident_memory_bytes is None or proc.open_fds is None or proc.threads is None:
        raise RuntimeError(f"/proc/{pid} cannot be read: this benchmark needs Linux's /proc")
    return Sample(
        t_s=round(time.monotonic() - t0, 2),
        cycles=int(metrics.get("binpick_cycles_total", 0)),
        rss_mb=round(proc.resident_memory_bytes / 2**20, 2),
        open_fds=proc.open_fds,
        threads=proc.threads,
        cpu_s=round(proc.cpu_seconds or 0.0, 2),
        cycle_p50_ms=metrics.get("cycle_p50_ms"),
    )


def summarize(samples: list[Sample], warmup_s: float) -> dict:
    """Each resource at the warm-up's end, at the end and at its highest after the warm-up; the
    memory's least-squares slope after the warm-up in MB per hour (None with fewer than 3 samples),
    and its floor: the lowest reading of the first and of the last quarter, and the growth rate
    between them."""
    after = [s for s in samples if s.t_s >= warmup_s]
    if len(after) < 2:
        raise ValueError(
            f"{len(after)} samples after the {warmup_s:.0f} s warm-up: run longer or sample more often"
        )
    first, last = after[0], after[-1]
    hours = np.array([s.t_s for s in after]) / 3600.0
    rss = np.array([s.rss_mb for s in after])
    slope = float(np.polyfit(hours, rss, 1)[0]) if len(after) >= 3 else None
    span_h = max(last.t_s - first.t_s, 1e-9) / 3600.0
    # Each cycle's arrays come and go (tens of MB for a 512² frame), so single readings scatter;
    # the lowest reading of a stretch is what stays allocated. Compared between the first and the
    # last quarter of the measured time, it shows a leak that the scatter would hide.
    quarter = (last.t_s - first.t_s) / 4.0
    floor_start = min(s.rss_mb for s in after if s.t_s <= first.t_s + quarter)
    floor_end = min(s.rss_mb for s in after if s.t_s >= last.t_s - quarter)
    return {
        "warmup_s": warmup_s,
        "measured_s": round(last.t_s - first.t_s, 1),
        "cycles_measured": last.cycles - first.cycles,
        "cycles_per_s": round((last.cycles - first.cycles) / (span_h * 3600.0), 3),
        "rss_mb": {"start": first.rss_mb, "end": last.rss_mb, "max": max(rss.tolist())},
        "rss_slope_mb_per_h": None if slope is None else round(slope, 2),
        "rss_floor_mb": {"first_quarter": floor_start, "last_quarter": floor_end},
        "rss_floor_growth_mb_per_h": round((floor_end - floor_start) / (0.75 * span_h), 2),
        "open_fds": {"start": first.open_fds, "end": last.open_fds, "max": max(s.open_fds for s in after)},
        "threads": {"start": first.threads, "end": last.threads, "max": max(s.threads for s in after)},
        "cycle_p50_ms": {"start": first.cycle_p50_ms, "end": last.cycle_p50_ms},
        "cpu_s_per_cycle": round((last.cpu_s - first.cpu_s) / max(last.cycles - first.cycles, 1), 4),
    }


def _wait_answering(proc: subprocess.Popen, http_port: int, timeout_s: float) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"the appliance exited with {proc.returncode} before answering")
        try:
            read_metrics(http_port)
            return
        except OSError:
            time.sleep(0.2)
    raise RuntimeError(f"the appliance's page on 127.0.0.1:{http_port} did not answer in {timeout_s:.0f} s")


def soak(config_path: Path, duration_s: float, sample_s: float, warmup_s: float, churn_s: float) -> dict:
    """Run the appliance on `config_path` for `duration_s` with clients churning; the report."""
    from edge.config import load_config
    from edge.plc.register_map import RegisterMap

    config = load_config(config_path)
    if not (config.plc.tcp_enabled and config.health.http_enabled):
        raise ValueError(f"{config_path}: the soak needs [plc] tcp_enabled and [health] http_enabled")
    registers = RegisterMap.load(config.plc.registers).size
    modbus_port, http_port = config.plc.tcp_port, config.health.http_port
    for port in (modbus_port, http_port):
        with socket.socket() as s:
            if s.connect_ex(("127.0.0.1", port)) == 0:
                raise RuntimeError(f"127.0.0.1:{port} is in use: stop what listens there first")
    # The child's log goes to a file: a pipe read only at the end fills after a few minutes of
    # connection lines, and then every thread that logs (the Modbus server's first) blocks on it.
    log_file = tempfile.TemporaryFile(mode="w+")  # noqa: SIM115 - closed below
    child = subprocess.Popen(
        [sys.executable, "-m", "edge", "run", "--config", str(config_path)],
        cwd=ROOT,
        stdout=subprocess.DEVNULL,
        stderr=log_file,
    )
    counts, samples = ChurnCounts(), []
    try:
        _wait_answering(child, http_port, 300)
        t0 = time.monotonic()
        next_sample, rounds = 0.0, 0
        while (now := time.monotonic() - t0) < duration_s:
            if now >= next_sample:
                samples.append(take_sample(child.pid, http_port, t0))
                next_sample += sample_s
            churn_once(modbus_port, http_port, registers, rounds % 10 == 0, counts)
            rounds += 1
            if child.poll() is not None:
                raise RuntimeError(f"the appliance exited with {child.returncode} during the soak")
            time.sleep(max(0.0, churn_s - (time.monotonic() - t0 - now)))
        samples.append(take_sample(child.pid, http_port, t0))
    finally:
        if child.poll() is None:
            child.send_signal(signal.SIGTERM)
        try:
            child.wait(timeout=30)
        except subprocess.TimeoutExpired:
            child.kill()
            child.wait()
        log_file.seek(0)
        err = log_file.read()
        log_file.close()
    return {
        "config": str(config_path),
        "duration_s": duration_s,
        "machine": machine_info("onnxruntime", "numpy", "opencv-python-headless", "pymodbus"),
        "clients": counts.to_dict(),
        "summary": summarize(samples, warmup_s),
        "samples": [asdict(s) for s in samples],
        "appliance_exit": child.returncode,
        "appliance_log_tail": err.splitlines()[-5:],
    }


def report_text(report: dict) -> str:
    s, c, m = report["summary"], report["clients"], report["machine"]
    floor = s["rss_floor_mb"]
    rows = [
        ("resident memory, MB", s["rss_mb"]),
        ("open file descriptors", s["open_fds"]),
        ("threads", s["threads"]),
        ("cycle time p50, ms", s["cycle_p50_ms"]),
    ]
    lines = [
        f"machine: {m['cpu']}, {m['physical_cores']} cores, load {m['load_average']}, "
        f"onnxruntime {m['onnxruntime']}",
        f"{report['config']}: {s['cycles_measured']} cycles in {s['measured_s']:.0f} s after a "
        f"{s['warmup_s']:.0f} s warm-up ({s['cycles_per_s']} cycles/s, {s['cpu_s_per_cycle']} CPU s a cycle)",
        f"clients: {c['modbus_sessions']} Modbus sessions, {c['http_requests']} page requests, "
        f"{c['streams']} dropped streams, {c['failures']} failed; a Modbus session (connect, read "
        f"the map, close) p50 {c['modbus_session_ms']['p50']} ms, p99 {c['modbus_session_ms']['p99']} ms, "
        f"max {c['modbus_session_ms']['max']} ms",
        *[f"  failed: {line}" for line in c["failure_log"][:10]],
        "",
        "| after the warm-up | start | end | max |",
        "|---|---:|---:|---:|",
        *[f"| {name} | {v['start']} | {v['end']} | {v.get('max', '')} |" for name, v in rows],
        "",
        f"memory: least-squares slope {s['rss_slope_mb_per_h']} MB/h; lowest reading "
        f"{floor['first_quarter']} MB in the first quarter, {floor['last_quarter']} MB "
        f"in the last ({s['rss_floor_growth_mb_per_h']} MB/h)",
    ]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--config", type=Path, default=ROOT / "firmware_config" / "embedded.toml")
    parser.add_argument("--minutes", type=float, default=30.0, help="length of the run (default 30)")
    parser.add_argument("--sample-s", type=float, default=10.0, help="seconds between readings (default 10)")
    parser.add_argument(
        "--warmup-s", type=float, default=None, help="not counted (default: 10 %% of the run, at least 60 s)"
    )
    parser.add_argument(
        "--churn-s", type=float, default=1.0, help="seconds between client rounds (default 1)"
    )
    parser.add_argument(
        "--out", type=output_file, default=None, help="the report as JSON (with every sample)"
    )
    args = parser.parse_args(argv)
    duration = args.minutes * 60.0
    for name, value in (
        ("--minutes", args.minutes),
        ("--sample-s", args.sample_s),
        ("--churn-s", args.churn_s),
    ):
        if not 0 < value < float("inf"):
            parser.error(f"{name} {value}: expected a positive number")
    warmup = args.warmup_s if args.warmup_s is not None else max(60.0, 0.1 * duration)
    if not 0 <= warmup < duration:
        parser.error(f"--warmup-s {warmup:g}: expected 0 or more and less than the run ({duration:.0f} s)")
    if duration - warmup < args.sample_s:  # the report needs two readings after the warm-up
        parser.error(
            f"--sample-s {args.sample_s:g}: longer than the {duration - warmup:.0f} s measured after the "
            f"{warmup:.0f} s warm-up, so no reading would fall in it (sample more often or run longer)"
        )
    try:
        report = soak(args.config, duration, args.sample_s, warmup, args.churn_s)
    except (OSError, RuntimeError, ValueError) as exc:
        print(f"soak: {exc}", file=sys.stderr)
        return 2
    print(report_text(report))
    if args.out is not None:
        write_output(args.out, json.dumps(report, indent=2) + "\n")
        print(f"written: {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
