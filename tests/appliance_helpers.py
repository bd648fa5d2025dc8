"""Shared helpers of the appliance tests: free ports, socat pty pairs, mbpoll, bounded waits."""

from __future__ import annotations

import contextlib
import re
import shutil
import socket
import subprocess
import time
from pathlib import Path

import pytest

_HANDED_OUT: set[int] = set()  # every port free_port() returned in this process


def free_port() -> int:
    """A port on 127.0.0.1 that nothing listens on now and that no earlier call in this process
    handed out, so calls in a row (a config's Modbus and HTTP ports) never give the same port.

    The appliance takes no port 0 (its config wants 1..65535), so the port is chosen here: the
    sockets stay bound until one is chosen, so the kernel offers a new port each try."""
    with contextlib.ExitStack() as held:
        for _ in range(100):
            s = held.enter_context(socket.socket())
            s.bind(("127.0.0.1", 0))
            port = s.getsockname()[1]
            if port not in _HANDED_OUT:
                _HANDED_OUT.add(port)
                return port
    raise AssertionError("no free port on 127.0.0.1 that this process has not handed out already")


@contextlib.contextmanager
def running_plc(model_id: int = 7, **section):
    """A started PlcService on a free 127.0.0.1 port with a fresh triggered bank, initialised;
    yields (bank, port, service). `section`: PlcSection fields (heartbeat 0.1 s unless given)."""
    from edge.config import PlcSection
    from edge.plc.bank import RegisterBank
    from edge.plc.register_map import RegisterMap
    from edge.plc.service import PlcService

    port = free_port()
    bank = RegisterBank(RegisterMap.load(), triggered=True)
    service = PlcService(bank, PlcSection(tcp_port=port, **{"heartbeat_period_s": 0.1, **section}))
    service.start()
    # not wait_port: its probe is a connection too, and on a busy machine the server saw it after
    # the test's own, so that it held one of the host's slots under the connection caps
    wait_until(lambda: listening(port), timeout=10, what=f"a listening socket on port {port}")
    bank.mark_initialised(model_id=model_id)
    try:
        yield bank, port, service
    finally:
        service.stop()


def wait_until(predicate, timeout: float, interval: float = 0.02, what: str = "condition"):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(interval)
    raise AssertionError(f"timed out after {timeout} s waiting for {what}")


def listening(port: int) -> bool:
    """Whether a socket listens on `port` (the kernel's table: no connection made to find out)."""
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        try:
            rows = Path(table).read_text().splitlines()[1:]
        except OSError:
            continue
        for row in rows:
            local, state = row.split()[1], row.split()[3]
            if state == "0A" and int(local.rsplit(":", 1)[1], 16) == port:  # 0A: LISTEN
                return True
    return False


def wait_port(port: int, timeout: float = 10.0) -> None:
    def is_open():
        with socket.socket() as s:
            s.settimeout(0.2)
            return s.connect_ex(("127.0.0.1", port)) == 0

    wait_until(is_open, timeout, what=f"port {port}")


def need(tool: str) -> str:
    path = shutil.which(tool)
    if path is None:
        pytest.skip(f"{tool} is not installed (scripts/bootstrap.sh installs it)")
    return path


@contextlib.contextmanager
def socat_pair(folder: Path):
    """Two linked pseudo-terminals (a serial null-modem cable), as `folder/a` and `folder/b`."""
    need("socat")
    a, b = folder / "a", folder / "b"
    proc = subprocess.Popen(
        ["socat", f"pty,raw,echo=0,link={a}", f"pty,raw,echo=0,link={b}"],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        wait_until(lambda: a.exists() and b.exists(), 5.0, what="socat ptys")
        yield str(a), str(b)
    finally:
        proc.terminate()
        proc.wait(timeout=5)


# The test appliances' Modbus RTU link (a socat pty pair): its baud rate, and mbpoll's options
# for it (8 data bits, no parity, device 1).
RTU_BAUDRATE = 38400
MBPOLL_RTU = ("-m", "rtu", "-b", str(RTU_BAUDRATE), "-P", "none", "-a", "1")

MBPOLL_VALUE = re.compile(r"^\[(\d+)\]:\s+(-?[\d.]+(?:e[+-]?\d+)?)", re.MULTILINE)


def mbpoll(*args: str, timeout: float = 10.0, zero_based: bool = True) -> dict[int, float]:
    """Run Debian's mbpoll once (-1), by default with 0-based addresses (-0); returns {address: value}."""
    need("mbpoll")
    base = ["-0"] if zero_based else []
    proc = subprocess.run(["mbpoll", *base, "-1", *args], capture_output=True, text=True, timeout=timeout)
    if proc.returncode != 0:
        raise AssertionError(
            f"mbpoll {' '.join(args)} failed ({proc.returncode}): {proc.stdout}{proc.stderr}"
        )
    return {int(a): float(v) for a, v in MBPOLL_VALUE.findall(proc.stdout)}


_TINY_MODELS: dict[tuple[int, int], Path] = {}


def tiny_model(folder: Path, height: int = 64, width: int = 64) -> Path:
    """An untrained F25 bicameral network exported to ONNX (once per session and size).

    Untrained outputs carry no meaning; the appliance tests configure the ranking so that the
    whole image is one candidate, which is all the plumbing tests need.
    """
    if (height, width) in _TINY_MODELS:
        return _TINY_MODELS[(height, width)]
    pytest.importorskip("torch")
    from bicameral.export import export_untrained_f25

    onnx_path = folder / f"f25_{height}x{width}.onnx"
    export_untrained_f25(folder / "f25.pt", onnx_path, height, width, 4242, "none (untrained test model)")
    _TINY_MODELS[(height, width)] = onnx_path
    return onnx_path


def tiny_rgbd_model(folder, depth_noise: bool = True, input_kind: str = "rgbd"):
    """An untrained RGB-D F25 exported like the bundled one (64x64): frame-median depth and, with
    `depth_noise`, the provenance record `binpick train --depth-noise` writes."""
    pytest.importorskip("torch")
    from dataclasses import asdict

    import torch

    from bicameral.checkpoint import save_checkpoint
    from bicameral.data import DepthNoise
    from bicameral.export import export_checkpoint
    from bicameral.init import initialise
    from bicameral.networks import build_network
    from binpick_core.model_file import default_preprocess

    torch.manual_seed(0)
    channels = {"rgbd": 4, "depth": 1}[input_kind]
    net = initialise(build_network("bicameral", "F25", in_channels=channels))
    provenance = {"dataset": "none", "depth_noise": asdict(DepthNoise()) if depth_noise else None}
    preprocess = default_preprocess(input_kind, 0.0, 0.05, "frame_median")
    name = f"{input_kind}_noise" if depth_noise else f"{input_kind}_exact"
    save_checkpoint(folder / f"{name}.pt", net, net.config, preprocess, provenance)
    export_checkpoint(folder / f"{name}.pt", folder / f"{name}.onnx", height=64, width=64, model_id=4344)
    return folder / f"{name}.onnx"


def write_rgbd_scenes(folder, count: int = 3, depth: bool = True):
    """Mikado-like 64x64 scenes: rgb.png, depth.png (0.1 mm units) with a box on a floor, scene.json."""
    import json

    import cv2
    import numpy as np

    rng = np.random.default_rng(3)
    for i in range(count):
        scene = folder / "scenes" / f"{i:06d}"
        scene.mkdir(parents=True)
        cv2.imwrite(str(scene / "rgb.png"), rng.integers(0, 255, (64, 64, 3), dtype=np.uint8))
        if depth:
            plane = np.full((64, 64), 10000 + 100 * i, np.uint16)
            plane[16 + i : 40, 20:44] = 9300  # a product 7 cm above the floor: stereo shadows beside it
            cv2.imwrite(str(scene / "depth.png"), plane)
        meta = {"depth_scale_m": 0.0001, "height": 64, "width": 64,
                "camera": {"K": [[80.0, 0, 32], [0, 80.0, 32], [0, 0, 1]]}}  # fmt: skip
        (scene / "scene.json").write_text(json.dumps(meta))
    (folder / "dataset.json").write_text(json.dumps({"preset": "mikado+", "base_seed": 21}))
    return folder


ROOT = Path(__file__).resolve().parents[1]


def write_pile_folder(folder: Path, count: int = 3, size: int = 96, corrupt: tuple[int, ...] = ()) -> Path:
    """A replay folder of small pile-like pictures; indices in `corrupt` are undecodable files."""
    import cv2
    import numpy as np

    folder.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(7)
    for i in range(count):
        path = folder / f"frame_{i:03d}.png"
        if i in corrupt:
            path.write_bytes(b"\x89PNG\r\n\x1a\n this is not an image")
            continue
        image = np.full((size, size, 3), 60, np.uint8)
        for _ in range(6):
            center = tuple(int(c) for c in rng.integers(10, size - 10, 2))
            axes = tuple(int(a) for a in rng.integers(6, 20, 2))
            color = tuple(int(c) for c in rng.integers(80, 255, 3))
            cv2.ellipse(image, center, axes, float(rng.uniform(0, 180)), 0, 360, color, -1)
        cv2.imwrite(str(path), image)
    return folder


def block_reads(path: Path) -> bytes:
    """Replace the image file at `path` by a FIFO that nobody writes: a read of it blocks in the
    kernel, as a hung camera driver does (a replay folder lists its files at open, so the source
    still reads this path). Returns the image's bytes, for `unblock_reads`."""
    import os

    data = path.read_bytes()
    path.unlink()
    os.mkfifo(path)
    return data


def unblock_reads(path: Path, data: bytes, timeout: float = 10.0) -> None:
    """Release the read blocked on the FIFO at `path` (from `block_reads`) with the image `data`,
    and put the image file back, so that this read and every later one (OpenCV opens a file twice)
    get it. Waits up to `timeout` for a reader to be blocked there."""
    import errno
    import os

    deadline = time.monotonic() + timeout
    while True:
        try:
            fd = os.open(path, os.O_WRONLY | os.O_NONBLOCK)  # ENXIO: no reader in open() yet
            break
        except OSError as exc:
            if exc.errno != errno.ENXIO or time.monotonic() > deadline:
                raise
            time.sleep(0.02)
    try:
        spare = path.with_name(path.name + ".part")
        spare.write_bytes(data)
        os.replace(spare, path)
        os.write(fd, data)  # a small image: the pipe's buffer takes it whole
    finally:
        os.close(fd)


def appliance_config(
    tmp: Path,
    model: Path,
    *,
    camera: str,
    mode: str = "triggered",
    plc: str = "",
    extra: str = "",
    appliance: str = "",
) -> tuple[Path, int, int]:
    """A configuration file for a test appliance on free ports; returns (path, modbus port, http port).
    `camera`, `plc`, `appliance` and `extra` (the [health] section) are lines added to their section."""
    tcp_port, http_port = free_port(), free_port()
    text = f"""
[appliance]
mode = "{mode}"
log_level = "INFO"
{appliance}

[camera]
{camera}
timeout_s = 1.0
backoff_initial_s = 0.1
backoff_max_s = 0.5

[inference]
model = "{model}"
threads = 1

[ranking]
# The untrained test model's maps mean nothing: make the whole image one candidate.
alpha = 0.999
beta = 0.5
min_area = 16
max_area = 1e9

[plc]
registers = "{ROOT / "firmware_config" / "registers.toml"}"
tcp_host = "127.0.0.1"
tcp_port = {tcp_port}
heartbeat_period_s = 0.2
{plc}

[health]
http_port = {http_port}
snapshot_dir = "{tmp / "snapshots"}"
snapshot_keep = 3
snapshot_min_interval_s = 0.0
{extra}
"""
    path = tmp / "appliance.toml"
    path.write_text(text)
    return path, tcp_port, http_port


class Appliance:
    """`binpick run` as a real subprocess; logs go to files under tmp."""

    def __init__(self, config: Path, tmp: Path, *args: str, env: dict | None = None):
        import os
        import sys

        self.stdout = open(tmp / "appliance.out", "w+")  # noqa: SIM115 - closed in stop()
        self.stderr = open(tmp / "appliance.err", "w+")  # noqa: SIM115
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "edge", "run", "--config", str(config), *args],
            cwd=ROOT,
            stdout=self.stdout,
            stderr=self.stderr,
            env={**os.environ, "PYTHONPATH": str(ROOT), **(env or {})},
        )

    def log(self) -> str:
        if not self.stderr.closed:
            self.stderr.flush()
        return Path(self.stderr.name).read_text()

    def output(self) -> str:
        if not self.stdout.closed:
            self.stdout.flush()
        return Path(self.stdout.name).read_text()

    def stop(self, timeout: float = 20.0) -> int:  # the systemd unit's TimeoutStopSec
        import signal

        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
        try:
            return self.proc.wait(timeout=timeout)
        finally:
            if self.proc.poll() is None:
                self.proc.kill()
                self.proc.wait(5)
            self.stdout.close()
            self.stderr.close()


class MjpegCamera:
    """An HTTP MJPEG camera on 127.0.0.1 served by ffmpeg (`-f mpjpeg -listen 1`).

    ffmpeg's HTTP server takes one client and exits when it leaves, so while the camera is "up"
    a thread restarts ffmpeg each time it exits: clients can reconnect, like to a real camera.
    `kill` takes it down for good (until `start` again).
    """

    def __init__(self, port: int, size: str = "160x120", rate: int = 15):
        import threading

        need("ffmpeg")
        self.port, self.size, self.rate = port, size, rate
        self.url = f"http://127.0.0.1:{port}/cam.mjpg"
        self._up = threading.Event()
        self._proc: subprocess.Popen | None = None
        self._thread: threading.Thread | None = None

    def _spawn(self) -> subprocess.Popen:
        return subprocess.Popen(
            ["ffmpeg", "-hide_banner", "-loglevel", "quiet", "-re", "-f", "lavfi",
             "-i", f"testsrc=size={self.size}:rate={self.rate}", "-f", "mpjpeg", "-q:v", "5",
             "-listen", "1", self.url],
            stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
        )  # fmt: skip

    def _keep_serving(self) -> None:
        while self._up.is_set():
            self._proc = self._spawn()
            while self._up.is_set() and self._proc.poll() is None:
                time.sleep(0.05)

    def start(self) -> MjpegCamera:
        import threading

        self._up.set()
        self._thread = threading.Thread(target=self._keep_serving, daemon=True)
        self._thread.start()
        return self

    def kill(self) -> None:
        self._up.clear()
        if self._thread is not None:
            self._thread.join(5)
        if self._proc is not None and self._proc.poll() is None:
            self._proc.kill()
            self._proc.wait(5)


class CorruptingMjpegServer:
    """A stdlib HTTP MJPEG camera (multipart/x-mixed-replace) on 127.0.0.1 in which every
    `corrupt_every`-th JPEG is garbled, like a camera on a flaky link."""

    def __init__(self, corrupt_every: int = 3, size: int = 96, fps: float = 20.0):
        import http.server
        import threading

        import cv2
        import numpy as np

        def jpeg(i: int) -> bytes:
            data = cv2.imencode(".jpg", np.full((size, size, 3), (i * 7) % 255, np.uint8))[1].tobytes()
            return data[:20] + b"\0" * 50 + data[70:120] if i % corrupt_every == 1 else data

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_GET(self):  # noqa: N802
                self.send_response(200)
                self.send_header("Content-Type", "multipart/x-mixed-replace; boundary=frame")
                self.end_headers()
                i = 0
                with contextlib.suppress(OSError):
                    while not server.stopping:
                        part = jpeg(i)
                        head = f"--frame\r\nContent-Type: image/jpeg\r\nContent-Length: {len(part)}\r\n\r\n"
                        self.wfile.write(head.encode() + part + b"\r\n")
                        i += 1
                        time.sleep(1 / fps)

            def log_message(self, *args):
                pass

        server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        server.daemon_threads = True
        server.stopping = False
        self.server = server
        self.url = f"http://127.0.0.1:{server.server_address[1]}/stream.mjpg"
        self._thread = threading.Thread(target=server.serve_forever, daemon=True)
        self._thread.start()

    def close(self) -> None:
        self.server.stopping = True
        self.server.shutdown()
        self.server.server_close()


def looking_down(
    size: tuple[int, int],
    focal_px: float,
    principal: tuple[float, float] | None = None,
    roi=None,
):
    """A calibration of a camera of `size` (w, h) px looking straight down from z = 800 mm in the
    robot's frame onto a floor at z = 20 mm (780 mm below it); the principal point is the image
    centre unless given, `roi` the camera-pixel polygon (None: the whole image)."""
    import numpy as np

    from edge.calibration_file import Calibration

    w, h = size
    cx, cy = principal if principal is not None else ((w - 1) / 2, (h - 1) / 2)
    camera_up = np.eye(4)
    camera_up[:3, :3] = np.diag([1.0, -1.0, -1.0])
    camera_up[:3, 3] = [400.0, 0.0, 800.0]
    return Calibration(
        cell="test", image_size=(w, h),
        camera_matrix=np.array([[focal_px, 0, cx], [0, focal_px, cy], [0, 0, 1]]),
        dist_coeffs=np.zeros(5), robot_from_camera=camera_up,
        plane_normal=np.array([0.0, 0.0, 1.0]), plane_offset_mm=20.0,
        roi_polygon=None if roi is None else np.asarray(roi, float),
        intrinsics_report={"rms_px": 0.2, "passed": True, "threshold_px": 0.5},
        extrinsics_report={"rms_mm": 0.4, "passed": True, "threshold_mm": 2.0},
        board={"name": "test", "type": "chessboard"},
        created="2026-12-04T23:00:00+00:00", wizard_version="test",
    )  # fmt: skip
