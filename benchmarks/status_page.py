"""What the operator's page costs the cell: cycle time with 5 viewers vs none, side by side.

    python -m benchmarks.status_page [--viewers 5] [--phase-s 30] [--repeats 3]

The appliance (`Supervisor`: folder camera replaying examples/pile, the bundled model on ONNX
Runtime, free-run back to back, status server on 127.0.0.1) runs in this process. Viewers run in
a child process (so their own CPU is not the appliance's): each is a real HTTP client doing what
the page does — `--viewer page`: the /events stream, one /live.jpg per frame event and
/api/overview.json once a second; `--viewer mjpeg`: /live.mjpg and /status.json once a second.
Phases alternate 0 and N viewers (`--repeats` pairs), so both see the same machine load.

Reports, per phase kind: cycle time p50 (the cycles finished inside the phases), and the page
server's CPU: the process CPU time delta, and the same without the cycle thread (the cycle's
own CPU moves with the cycle, and would drown the server's share); per viewer, in % of one core.
Also the frames encoded per publication (the page draws and encodes each frame once for all).
"""

from __future__ import annotations

import argparse
import json
import multiprocessing as mp
import os
import statistics
import sys
import tempfile
import threading
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from benchmarks.arguments import (  # noqa: E402
    non_negative_int,
    output_file,
    positive_float,
    positive_int,
    write_output,
)


def viewer_process(base: str, count: int, kind: str, stop, ready) -> None:
    """`count` viewers, each a thread with its own HTTP connections, until `stop` is set."""
    import http.client
    import urllib.parse

    host, port = urllib.parse.urlsplit(base).netloc.split(":")

    def get(conn: http.client.HTTPConnection, path: str) -> int:
        conn.request("GET", path)
        response = conn.getresponse()
        return len(response.read())

    def page_viewer() -> None:
        stream = http.client.HTTPConnection(host, int(port), timeout=30)
        stream.request("GET", "/events")
        events = stream.getresponse()
        fetch = http.client.HTTPConnection(host, int(port), timeout=30)
        poll_at = 0.0
        while not stop.is_set():
            line = events.fp.readline()
            if not line:
                break
            if line.startswith(b"data:"):
                version = json.loads(line[5:])["version"]
                get(fetch, f"/live.jpg?v={version}")
            if time.monotonic() >= poll_at:
                get(fetch, "/api/overview.json")
                poll_at = time.monotonic() + 1.0
        stream.close()
        fetch.close()

    def mjpeg_viewer() -> None:
        stream = http.client.HTTPConnection(host, int(port), timeout=30)
        stream.request("GET", "/live.mjpg")
        body = stream.getresponse()
        poll = http.client.HTTPConnection(host, int(port), timeout=30)

        def poller():
            while not stop.wait(1.0):
                get(poll, "/status.json")

        threading.Thread(target=poller, daemon=True).start()
        while not stop.is_set():
            line = body.fp.readline()
            if not line:
                break
            if line.lower().startswith(b"content-length:"):
                size = int(line.split(b":")[1])
                while body.fp.readline().strip():  # the part's other headers, up to the blank line
                    pass
                body.fp.read(size)
        stream.close()

    target = page_viewer if kind == "page" else mjpeg_viewer
    threads = [threading.Thread(target=target, daemon=True) for _ in range(count)]
    for t in threads:
        t.start()
    ready.set()
    stop.wait()
    time.sleep(0.2)


def phases_problem(phases: list[dict], viewers: int, phase_s: float) -> str | None:
    """Why the phases give no comparison, or None: a phase shorter than one cycle finishes no
    cycle, and the summary's medians of nothing ended in a StatisticsError traceback."""
    for n in (0, viewers):
        if not any(p["p50_ms"] is not None for p in phases if p["viewers"] == n):
            return (
                f"no cycle finished within --phase-s {phase_s:g} with {n} viewer(s) in any repeat; "
                "expected a phase several cycles long (give a longer --phase-s)"
            )
    timed = {(p["repeat"], p["viewers"]) for p in phases if p["p50_ms"] is not None}
    if not any((r, 0) in timed and (r, viewers) in timed for r, _ in timed):
        return (
            f"no repeat finished a cycle both with 0 and with {viewers} viewer(s) within --phase-s "
            f"{phase_s:g}; expected a phase several cycles long (give a longer --phase-s)"
        )
    return None


def thread_cpu(thread: threading.Thread) -> float:
    return time.clock_gettime(time.pthread_getcpuclockid(thread.ident))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--viewers", type=positive_int, default=5)
    parser.add_argument("--viewer", choices=("page", "mjpeg"), default="page")
    parser.add_argument("--phase-s", type=positive_float, default=30.0)
    parser.add_argument("--repeats", type=positive_int, default=3)
    parser.add_argument("--warmup-s", type=float, default=10.0)
    parser.add_argument(
        "--threads", type=non_negative_int, default=1, help="ONNX Runtime threads of the appliance"
    )
    parser.add_argument("--json", type=output_file, default=None, help="also write the figures to this file")
    args = parser.parse_args(argv)
    if not args.warmup_s >= 0:
        parser.error(f"--warmup-s {args.warmup_s}: expected 0 or more")

    import socket

    from benchmarks.machine_info import machine_info
    from edge.config import parse_config
    from edge.supervisor import Supervisor

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        http_port = sock.getsockname()[1]
    tmp = Path(tempfile.mkdtemp(prefix="binpick-page-bench-"))
    text = f"""
[appliance]
mode = "free-run"
cycle_period_s = 0.0
log_level = "WARNING"
[camera]
source = "folder"
folder = "{ROOT / "examples" / "pile"}"
pattern = "rgb.png"
[inference]
model = "{ROOT / "models" / "bicameral_f25_rgb.onnx"}"
threads = {args.threads}
[plc]
registers = "{ROOT / "firmware_config" / "registers.toml"}"
tcp_enabled = false
[health]
http_port = {http_port}
snapshot_dir = "{tmp / "snapshots"}"
snapshot_on_failure = false
"""
    config = parse_config(text, tmp / "bench.toml")
    sup = Supervisor(config)
    sup.start()
    base = f"http://127.0.0.1:{http_port}"
    ctx = mp.get_context("spawn")
    phases: list[dict] = []
    try:
        time.sleep(args.warmup_s)
        for repeat in range(args.repeats):
            order = (0, args.viewers) if repeat % 2 == 0 else (args.viewers, 0)  # ABBA: drift cancels
            for n in order:
                stop, ready = ctx.Event(), ctx.Event()
                proc = None
                if n:
                    proc = ctx.Process(target=viewer_process, args=(base, n, args.viewer, stop, ready))
                    proc.start()
                    ready.wait(30)
                    time.sleep(2.0)  # connections open, first frames sent
                t0, cpu0, cyc0 = time.time(), time.process_time(), thread_cpu(sup._cycle_thread)
                enc0, pub0 = sup.frames.encodes, sup.frames.latest.version
                time.sleep(args.phase_s)
                t1, cpu1, cyc1 = time.time(), time.process_time(), thread_cpu(sup._cycle_thread)
                enc1, pub1 = sup.frames.encodes, sup.frames.latest.version
                if proc is not None:
                    stop.set()
                    proc.join(10)
                    if proc.is_alive():
                        proc.terminate()
                cycles = [c[1] for c in sup.history.recent_cycles(t0) if c[0] <= t1]
                wall = t1 - t0
                phase = {
                    "repeat": repeat, "viewers": n, "wall_s": round(wall, 2), "cycles": len(cycles),
                    "p50_ms": round(statistics.median(cycles), 2) if cycles else None,
                    "process_cpu_pct": round(100 * (cpu1 - cpu0) / wall, 2),
                    "non_cycle_cpu_pct": round(100 * ((cpu1 - cpu0) - (cyc1 - cyc0)) / wall, 2),
                    # the cycle thread's own CPU per cycle: blind to waiting for a core (the
                    # machine's load), it rises if the viewers slowed the cycle's work itself
                    "cycle_cpu_ms_per_cycle": round(1000 * (cyc1 - cyc0) / max(1, len(cycles)), 1),
                    "encodes": enc1 - enc0, "publications": pub1 - pub0, "cycle_ms": cycles,
                }  # fmt: skip
                phases.append(phase)
                print(json.dumps({k: v for k, v in phase.items() if k != "cycle_ms"}), flush=True)
                time.sleep(1.0)
    finally:
        sup.stop()
    problem = phases_problem(phases, args.viewers, args.phase_s)
    if problem:
        print(f"status_page: error: {problem}", file=sys.stderr)
        return 2

    def pick(n: int, key: str) -> list[float]:
        return [p[key] for p in phases if p["viewers"] == n and p[key] is not None]

    n = args.viewers
    by_repeat = {(p["repeat"], p["viewers"]): p["p50_ms"] for p in phases}
    ratios = [
        by_repeat[(r, n)] / by_repeat[(r, 0)]
        for r in range(args.repeats)
        if by_repeat.get((r, n)) and by_repeat.get((r, 0))
    ]
    pooled = {
        k: statistics.median([ms for p in phases if p["viewers"] == k for ms in p["cycle_ms"]])
        for k in (0, n)
    }
    non_cycle_delta = statistics.median(pick(n, "non_cycle_cpu_pct")) - statistics.median(
        pick(0, "non_cycle_cpu_pct")
    )
    process_delta = statistics.median(pick(n, "process_cpu_pct")) - statistics.median(
        pick(0, "process_cpu_pct")
    )
    summary = {
        "machine": machine_info(),
        "load_avg_at_end": [round(x, 2) for x in os.getloadavg()],
        "viewer": args.viewer, "viewers": n, "phase_s": args.phase_s, "repeats": args.repeats,
        "cycle_p50_ms_0_viewers": statistics.median(pick(0, "p50_ms")),
        f"cycle_p50_ms_{n}_viewers": statistics.median(pick(n, "p50_ms")),
        "cycle_p50_ms_pooled_0_viewers": round(pooled[0], 2),
        f"cycle_p50_ms_pooled_{n}_viewers": round(pooled[n], 2),
        "cycle_p50_change_pct_pooled": round(100 * (pooled[n] / pooled[0] - 1), 2),
        "cycle_p50_ratio_median_of_pairs": round(statistics.median(ratios), 4),
        "cycle_p50_change_pct": round(100 * (statistics.median(ratios) - 1), 2),
        "cycle_cpu_ms_per_cycle_0_viewers": statistics.median(pick(0, "cycle_cpu_ms_per_cycle")),
        f"cycle_cpu_ms_per_cycle_{n}_viewers": statistics.median(pick(n, "cycle_cpu_ms_per_cycle")),
        "server_cpu_per_viewer_pct_of_core_non_cycle": round(non_cycle_delta / n, 3),
        "server_cpu_per_viewer_pct_of_core_process": round(process_delta / n, 3),
        "encodes_per_publication": round(
            sum(pick(n, "encodes")) / max(1, sum(pick(n, "publications"))), 3
        ),
        "phases": phases,
    }  # fmt: skip
    print(json.dumps({k: v for k, v in summary.items() if k != "phases"}, indent=2))
    if args.json:
        write_output(args.json, json.dumps(summary, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
