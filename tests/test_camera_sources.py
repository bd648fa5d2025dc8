"""Camera sources against real peers: an MJPEG stream served by ffmpeg on 127.0.0.1 (killed and
restarted), image folders with corrupt files, and the simulated bin's missing-Mikado message."""

from __future__ import annotations

import importlib.util
import time

import cv2
import numpy as np
import pytest
from appliance_helpers import CorruptingMjpegServer, MjpegCamera, free_port, wait_until

from edge.camera import CameraError, CameraLost, CorruptFrame
from edge.camera.folder_source import FolderSource
from edge.camera.opencv_source import backend_for, opencv_source
from edge.camera.simulated import SimulatedBin

pytestmark = pytest.mark.timeout(90)


def test_backend_choice_follows_the_uri():
    assert backend_for("0") == (0, cv2.CAP_V4L2)
    assert backend_for("/dev/video2") == ("/dev/video2", cv2.CAP_V4L2)
    assert backend_for("videotestsrc ! videoconvert ! appsink")[1] == cv2.CAP_GSTREAMER
    assert backend_for("rtsp://10.0.0.5/stream")[1] == cv2.CAP_FFMPEG


def test_reads_an_mjpeg_stream_served_by_ffmpeg_with_fresh_timestamps():
    server = MjpegCamera(free_port()).start()
    source = opencv_source(server.url, timeout_s=2.0, backoff_initial_s=0.2, backoff_max_s=1)
    try:
        source.open()
        frames = []
        deadline = time.monotonic() + 20
        while len(frames) < 5 and time.monotonic() < deadline:
            try:
                asked = time.monotonic()
                frame = source.grab(3.0)
                assert frame.captured_mono >= asked  # never an image older than the request
                frames.append(frame)
            except CameraError:
                pass  # ffmpeg may still be starting
        assert len(frames) == 5
        assert frames[0].rgb.shape == (120, 160, 3) and frames[0].rgb.dtype == np.uint8
        assert [f.index for f in frames] == sorted({f.index for f in frames})
        assert source.status()["state"] == "streaming"
    finally:
        source.close()
        server.kill()


def test_stream_killed_and_restarted_is_reported_and_recovered():
    server = MjpegCamera(free_port()).start()
    source = opencv_source(server.url, timeout_s=1.0, backoff_initial_s=0.1, backoff_max_s=0.5)
    try:
        source.open()
        wait_until(lambda: source.status()["frames"] > 3, 20, what="first frames")
        server.kill()
        # While the camera is down, grab says so (the supervisor's `camera_lost`).
        wait_until(lambda: source.status()["state"] in ("down", "reopening"), 10, what="loss detected")
        with pytest.raises(CameraLost):
            source.grab(0.5)
        server.start()
        wait_until(lambda: source.status()["state"] == "streaming", 25, what="reconnection")
        frame = source.grab(3.0)
        assert frame.rgb.shape == (120, 160, 3)
        assert source.status()["reopens"] >= 1
    finally:
        source.close()
        server.kill()


def test_a_source_that_never_opens_backs_off_and_says_why():
    source = opencv_source(f"http://127.0.0.1:{free_port()}/none.mjpg", 0.5, 0.05, 0.2)
    source.open()
    try:
        wait_until(lambda: source.status()["reopens"] >= 2, 15, what="retries")
        with pytest.raises(CameraLost, match="none.mjpg"):
            source.grab(0.3)
        assert source.status()["last_error"]
    finally:
        source.close()


def test_folder_replay_reports_corrupt_files_and_goes_on(tmp_path):
    good = np.zeros((32, 48, 3), np.uint8)
    good[:, :, 2] = 255  # red in RGB
    cv2.imwrite(str(tmp_path / "a.png"), cv2.cvtColor(good, cv2.COLOR_RGB2BGR))
    (tmp_path / "b.png").write_bytes(b"\x89PNG\r\n\x1a\n garbage, not an image")
    cv2.imwrite(str(tmp_path / "c.png"), cv2.cvtColor(good, cv2.COLOR_RGB2BGR))
    source = FolderSource(str(tmp_path), "*.png", loop=False)
    source.open()
    first = source.grab(1.0)
    assert first.rgb.shape == (32, 48, 3) and first.rgb[0, 0].tolist() == [0, 0, 255]
    with pytest.raises(CorruptFrame, match="b.png"):
        source.grab(1.0)
    assert source.grab(1.0).extras["path"].endswith("c.png")
    with pytest.raises(CameraError, match="replayed"):
        source.grab(1.0)
    assert source.status()["corrupt_frames"] == 1


def test_empty_folder_is_an_error_naming_it(tmp_path):
    with pytest.raises(CameraError, match=str(tmp_path)):
        FolderSource(str(tmp_path)).open()


@pytest.mark.skipif(importlib.util.find_spec("mikado") is not None, reason="Mikado is installed here")
def test_simulated_bin_without_mikado_says_how_to_install_it():
    with pytest.raises(CameraError, match=r"pip install \.\[sim\]"):
        SimulatedBin("mikado+", 64, 64).open()


@pytest.mark.skipif(
    importlib.util.find_spec("mikado") is None, reason="Mikado (pip install .[sim]) not installed"
)
def test_simulated_bin_renders_a_new_pile_each_grab():
    source = SimulatedBin("mikado+", 96, 96, seed=3)
    source.open()
    a, b = source.grab(30), source.grab(30)
    assert a.rgb.shape == (96, 96, 3) and a.extras["seed"] == 3 and b.extras["seed"] == 4
    assert not np.array_equal(a.rgb, b.rgb)


@pytest.mark.skipif(importlib.util.find_spec("harvesters") is not None, reason="harvesters is installed here")
def test_genicam_without_harvesters_reports_it_through_the_source_status():
    from edge.camera.genicam import genicam_source

    source = genicam_source("/nonexistent/producer.cti", "", 0.5, 0.05, 0.2)
    source.open()
    try:
        wait_until(lambda: "harvesters" in source.status()["last_error"], 10, what="the install hint")
        with pytest.raises(CameraLost, match="harvesters"):
            source.grab(0.2)
    finally:
        source.close()


def test_corrupt_frames_in_a_stream_are_skipped_and_counted_without_reconnecting():
    server = CorruptingMjpegServer(corrupt_every=3)
    source = opencv_source(server.url, timeout_s=2.0, backoff_initial_s=0.1, backoff_max_s=0.5)
    try:
        source.open()
        wait_until(lambda: source.status()["frames"] >= 8, 20, what="good frames")
        status = source.status()
        assert status["corrupt_frames"] >= 2 and status["reopens"] == 0 and status["state"] == "streaming"
        frame = source.grab(2.0)
        assert frame.rgb.shape == (96, 96, 3)
    finally:
        source.close()
        server.close()


def test_a_stream_whose_every_frame_is_unusable_says_why_when_it_gives_up(caplog):
    """A camera that sends only frames the appliance cannot use (here 4x4 px JPEGs; a wrong pixel
    format, an RGB-D camera without depth) reconnects after five in a row. The outage's one
    WARNING (the next comes a minute later) and `grab`'s message name the frames' fault; they said
    only "5 failed reads in a row", and the source's name twice."""
    server = CorruptingMjpegServer(corrupt_every=10**9, size=4)
    source = opencv_source(server.url, timeout_s=2.0, backoff_initial_s=0.1, backoff_max_s=0.3)
    try:
        with caplog.at_level("WARNING", logger="edge.camera.streaming"):
            source.open()
            wait_until(lambda: source.status()["reopens"] >= 2, 20, what="reconnections")
        warnings = [r.getMessage() for r in caplog.records if r.levelname == "WARNING"]
        assert len(warnings) == 1, warnings
        assert "5 failed reads in a row" in warnings[0] and "4x4 px is too small" in warnings[0], warnings
        assert warnings[0].count(server.url) == 1, warnings
        wait_until(lambda: "failed reads" in source.status()["last_error"], 10, what="a give-up")
        assert "too small" in source.status()["last_error"]
    finally:
        source.close()
        server.close()


def test_a_replayed_file_that_disappeared_is_said_to_be_gone(tmp_path, capfd):
    write = np.zeros((32, 48, 3), np.uint8)
    for name in ("a.png", "b.png"):
        cv2.imwrite(str(tmp_path / name), write)
    source = FolderSource(str(tmp_path), "*.png")
    source.open()
    (tmp_path / "b.png").unlink()
    assert source.grab(1.0).extras["path"].endswith("a.png")
    with pytest.raises(CameraError, match="b.png: the file is gone") as err:
        source.grab(1.0)
    assert not isinstance(err.value, CorruptFrame) and source.status()["corrupt_frames"] == 0
    assert "findDecoder" not in capfd.readouterr().err  # OpenCV's own warning about the path


LOST_CAMERA = r"""
import logging, sys, time
logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
from edge.camera.opencv_source import opencv_source
source = opencv_source(sys.argv[1], 0.5, 0.05, 0.1)
source.open()
deadline = time.monotonic() + 30
while source.status()["reopens"] < 8 and time.monotonic() < deadline:
    time.sleep(0.05)
print("down", source.status()["reopens"], flush=True)
deadline = time.monotonic() + 40
while source.status()["state"] != "streaming" and time.monotonic() < deadline:
    time.sleep(0.05)
print("back", source.status()["state"], flush=True)
source.close()
"""


def test_a_camera_that_stays_lost_is_logged_once_then_when_it_is_back(tmp_path):
    """A stream whose server is gone fails each reopen (here every 0.1 s): one WARNING for the
    outage, then once a minute (not reached here), one INFO when frames come again; OpenCV's and
    FFmpeg's own stderr lines (`[ WARN:...] cap.cpp`, `[tcp @ ...] Connection refused`) are off.
    Before: one WARNING per reopen plus two native lines each. In a child process, since FFmpeg
    reads its log level once per process."""
    import os
    import subprocess
    import sys

    from appliance_helpers import ROOT

    port = free_port()
    server = MjpegCamera(port)
    env = {k: v for k, v in os.environ.items() if not k.startswith("OPENCV_")}
    child = subprocess.Popen(
        [sys.executable, "-c", LOST_CAMERA, server.url], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
        text=True, env={**env, "PYTHONPATH": str(ROOT)},
    )  # fmt: skip
    try:
        first = child.stdout.readline().split()
        assert first[0] == "down" and int(first[1]) >= 8, first
        server.start()
        out, err = child.communicate(timeout=60)
    finally:
        if child.poll() is None:
            child.kill()
        server.kill()
    assert out.split() == ["back", "streaming"], (out, err)
    lines = err.strip().splitlines()
    warnings = [line for line in lines if line.startswith("WARNING edge.camera.streaming")]
    assert len(warnings) == 1 and "logged once per 60 s" in warnings[0], lines
    assert [line for line in lines if "streaming again" in line][0].startswith("INFO"), lines
    assert len(lines) == 2, lines  # nothing from OpenCV or FFmpeg themselves
