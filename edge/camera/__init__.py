"""Camera sources behind one interface: `open_camera(config.camera)` returns a `CameraSource`."""

from edge.camera.base import CameraError, CameraLost, CameraSource, CorruptFrame, Frame
from edge.camera.factory import open_camera

__all__ = ["CameraError", "CameraLost", "CameraSource", "CorruptFrame", "Frame", "open_camera"]
