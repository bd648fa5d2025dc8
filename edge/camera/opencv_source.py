"""OpenCV `VideoCapture`: V4L2 devices, GStreamer pipelines, RTSP/HTTP(MJPEG) URLs, video files.

Wrapped in `StreamingSource` because `read` has no reliable timeout on network and GStreamer
backends; OpenCV's own open/read timeouts (FFmpeg backend) are set as well, as a first line.

OpenCV's warnings and FFmpeg's messages go straight to stderr, unformatted, two or three per
failed open: a camera that stays lost wrote ~70 of them a minute beside the source's own
(rate-limited) lines. `quiet_native_logs` keeps OpenCV's errors only and silences FFmpeg, unless
the service's environment sets OPENCV_LOG_LEVEL or OPENCV_FFMPEG_LOGLEVEL itself (to diagnose a
camera: e.g. OPENCV_LOG_LEVEL=WARNING, OPENCV_FFMPEG_LOGLEVEL=24). OpenCV reads
OPENCV_FFMPEG_LOGLEVEL (an FFmpeg av_log level, -8 quiet) once, at the process's first FFmpeg open.
"""

from __future__ import annotations

import os
import re

import cv2
import numpy as np

from edge.camera.base import CameraError
from edge.camera.streaming import StreamingSource

FFMPEG_QUIET = "-8"  # AV_LOG_QUIET
OPENCV_LOG_ERROR = 2  # cv2.utils.logging.LOG_LEVEL_ERROR


def quiet_native_logs() -> None:
    """Keep OpenCV's native log at errors and FFmpeg's silent, unless the environment says otherwise."""
    os.environ.setdefault("OPENCV_FFMPEG_LOGLEVEL", FFMPEG_QUIET)
    set_level = getattr(cv2, "setLogLevel", None)  # cv2.utils.logging in some builds, top level in others
    if set_level is None:
        set_level = getattr(getattr(getattr(cv2, "utils", None), "logging", None), "setLogLevel", None)
    if "OPENCV_LOG_LEVEL" not in os.environ and set_level is not None:
        set_level(OPENCV_LOG_ERROR)


def backend_for(uri: str) -> tuple[str | int, int]:
    """(what to pass to VideoCapture, API preference) for a configured uri."""
    if uri.isdigit():
        return int(uri), cv2.CAP_V4L2
    if re.fullmatch(r"/dev/video\d+", uri):
        return uri, cv2.CAP_V4L2
    if "!" in uri:  # a GStreamer pipeline ending in appsink
        return uri, cv2.CAP_GSTREAMER
    return uri, cv2.CAP_FFMPEG


class OpenCvConnection:
    def __init__(self, uri: str, timeout_s: float):
        target, api = backend_for(uri)
        params = [
            cv2.CAP_PROP_OPEN_TIMEOUT_MSEC,
            int(timeout_s * 1000),
            cv2.CAP_PROP_READ_TIMEOUT_MSEC,
            int(timeout_s * 1000),
        ]
        self.capture = cv2.VideoCapture(target, api, params)
        if not self.capture.isOpened():
            self.capture.release()
            raise CameraError(f"OpenCV cannot open {uri!r} (API preference {api})")

    def read(self) -> np.ndarray | None:
        ok, bgr = self.capture.read()
        if not ok or bgr is None:
            return None
        if bgr.ndim == 2:
            return cv2.cvtColor(bgr, cv2.COLOR_GRAY2RGB)
        return cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB)

    def release(self) -> None:
        self.capture.release()


def opencv_source(
    uri: str, timeout_s: float, backoff_initial_s: float, backoff_max_s: float
) -> StreamingSource:
    quiet_native_logs()  # before the first open: FFmpeg reads its level once
    return StreamingSource(
        f"opencv:{uri}", lambda: OpenCvConnection(uri, timeout_s), timeout_s, backoff_initial_s, backoff_max_s
    )
