"""RGB-D cameras: Intel RealSense (`pyrealsense2`) and Orbbec (`pyorbbecsdk`, PyPI `pyorbbecsdk2`).

Each delivers a colour image and a depth map aligned to it (same pixels, same size), in metres,
with the scale the device reports. Both run behind `StreamingSource` (worker thread, watchdog,
reopen with backoff), like the GenICam and OpenCV sources.

Written against pyrealsense2 2.5x (`rs.pipeline`, `rs.align`, `first_depth_sensor().get_depth_scale()`)
and pyorbbecsdk 2.x (`Pipeline`, `AlignFilter`, `DepthFrame.get_depth_scale()` in millimetres per
unit); NOT RUN HERE (no depth camera on the build machines, and neither package is installed by
default). Guarded: without the package the error names it in one line.
"""

from __future__ import annotations

from typing import Any

import cv2
import numpy as np

from edge.camera.base import CameraError
from edge.camera.packages import install_hint
from edge.camera.streaming import StreamingSource

RGBD = tuple[np.ndarray, np.ndarray]  # (HxWx3 uint8 RGB, HxW float32 metres, NaN = no depth)


def _metres(raw: np.ndarray, metres_per_unit: float) -> np.ndarray:
    """Raw depth units to metres; 0 (no return) becomes NaN, the appliance's hole."""
    depth = raw.astype(np.float32) * np.float32(metres_per_unit)
    depth[raw == 0] = np.nan
    return depth


class RealsenseConnection:
    """One RealSense stream pair: colour (rgb8) and depth (z16) aligned to colour."""

    def __init__(self, serial: str, width: int, height: int, fps: int, timeout_s: float):
        try:
            import pyrealsense2 as rs
        except ImportError as exc:
            raise CameraError(f"camera.source = 'realsense' {install_hint('realsense')}") from exc
        self.rs = rs
        self.timeout_ms = max(1, int(timeout_s * 1000))
        self.pipeline = rs.pipeline()
        config = rs.config()
        if serial:
            config.enable_device(serial)
        config.enable_stream(rs.stream.color, width, height, rs.format.rgb8, fps)
        # Depth at the sensor's own resolution: `rs.align` maps it onto the colour image, so it
        # need not match. Asking for width x height on both made the default 512x512, which no
        # RealSense offers for either stream, and sizes that only colour offers, fail every start.
        config.enable_stream(rs.stream.depth, rs.format.z16, fps)
        try:
            profile = self.pipeline.start(config)
        except RuntimeError as exc:
            raise CameraError(
                f"RealSense {serial or '(first)'}: {exc} (asked for colour {width}x{height} rgb8 at "
                f"{fps} fps and depth z16 at {fps} fps: set camera.width/height to a colour mode the "
                "camera offers, e.g. 640x480 or 1280x720; `rs-enumerate-devices` lists them)"
            ) from exc
        self.depth_scale = float(profile.get_device().first_depth_sensor().get_depth_scale())  # m/unit
        self.align = rs.align(rs.stream.color)

    def read(self) -> RGBD | None:
        try:
            frames = self.pipeline.wait_for_frames(self.timeout_ms)
        except RuntimeError:
            return None
        aligned = self.align.process(frames)
        color, depth = aligned.get_color_frame(), aligned.get_depth_frame()
        if not color or not depth:
            return None
        rgb = np.asanyarray(color.get_data()).copy()
        return rgb, _metres(np.asanyarray(depth.get_data()), self.depth_scale)

    def release(self) -> None:
        self.pipeline.stop()


class OrbbecConnection:
    """One Orbbec stream pair: colour (RGB, or MJPG decoded) and depth (Y16) aligned to colour."""

    def __init__(self, serial: str, timeout_s: float):
        try:
            import pyorbbecsdk as ob
        except ImportError as exc:
            raise CameraError(f"camera.source = 'orbbec' {install_hint('orbbec')}") from exc
        self.ob = ob
        self.timeout_ms = max(1, int(timeout_s * 1000))
        devices = ob.Context().query_devices()
        if devices.get_count() == 0:
            raise CameraError("no Orbbec camera found")
        device = devices.get_device_by_serial_number(serial) if serial else devices.get_device_by_index(0)
        self.pipeline = ob.Pipeline(device)
        config = ob.Config()
        try:
            colors = self.pipeline.get_stream_profile_list(ob.OBSensorType.COLOR_SENSOR)
            config.enable_stream(colors.get_default_video_stream_profile())
            depths = self.pipeline.get_stream_profile_list(ob.OBSensorType.DEPTH_SENSOR)
            config.enable_stream(depths.get_default_video_stream_profile())
            config.set_frame_aggregate_output_mode(ob.OBFrameAggregateOutputMode.FULL_FRAME_REQUIRE)
            self.pipeline.start(config)
        except ob.OBError as exc:
            raise CameraError(f"Orbbec {serial or '(first)'}: {exc}") from exc
        self.align = ob.AlignFilter(align_to_stream=ob.OBStreamType.COLOR_STREAM)

    def _rgb(self, frame: Any) -> np.ndarray | None:  # a pyorbbecsdk VideoFrame (not installed here)
        ob = self.ob
        data = np.asanyarray(frame.get_data())
        height, width, fmt = frame.get_height(), frame.get_width(), frame.get_format()
        if fmt == ob.OBFormat.RGB:
            return data.reshape(height, width, 3).copy()
        if fmt == ob.OBFormat.BGR:
            return cv2.cvtColor(data.reshape(height, width, 3), cv2.COLOR_BGR2RGB)
        if fmt == ob.OBFormat.MJPG:
            bgr = cv2.imdecode(data, cv2.IMREAD_COLOR)
            return None if bgr is None else cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB)
        raise CameraError(f"Orbbec colour format {fmt} is not supported (use RGB, BGR or MJPG)")

    def read(self) -> RGBD | None:
        frames = self.pipeline.wait_for_frames(self.timeout_ms)
        if not frames:
            return None
        aligned = self.align.process(frames)
        if not aligned:
            return None
        aligned = aligned.as_frame_set()
        color, depth = aligned.get_color_frame(), aligned.get_depth_frame()
        if not color or not depth:
            return None
        rgb = self._rgb(color)
        if rgb is None:
            return None
        raw = np.frombuffer(depth.get_data(), np.uint16).reshape(depth.get_height(), depth.get_width())
        return rgb, _metres(raw, depth.get_depth_scale() / 1000.0)  # the SDK's scale is mm per unit

    def release(self) -> None:
        self.pipeline.stop()


def realsense_source(
    serial: str, width: int, height: int, timeout_s: float, backoff: tuple[float, float]
) -> StreamingSource:
    return StreamingSource(
        f"realsense:{serial or 'first'}",
        lambda: RealsenseConnection(serial, width, height, 30, timeout_s),
        timeout_s,
        *backoff,
    )


def orbbec_source(serial: str, timeout_s: float, backoff: tuple[float, float]) -> StreamingSource:
    return StreamingSource(
        f"orbbec:{serial or 'first'}", lambda: OrbbecConnection(serial, timeout_s), timeout_s, *backoff
    )
