"""GenICam cameras (GigE Vision, USB3 Vision) through `harvesters` and a vendor GenTL producer.

Written against harvesters >= 1.4 (`Harvester.create`, `ImageAcquirer.fetch`); NOT RUN HERE (no
GenICam camera or producer on the build machines). Guarded: without harvesters the error says
what to install.
"""

from __future__ import annotations

import cv2
import numpy as np

from edge.camera.base import CameraError
from edge.camera.packages import install_hint
from edge.camera.streaming import StreamingSource

_BAYER = {
    "BayerRG8": cv2.COLOR_BayerRG2RGB,
    "BayerGR8": cv2.COLOR_BayerGR2RGB,
    "BayerBG8": cv2.COLOR_BayerBG2RGB,
    "BayerGB8": cv2.COLOR_BayerGB2RGB,
}


class GenicamConnection:
    def __init__(self, cti: str, serial: str, timeout_s: float):
        try:
            from harvesters.core import Harvester
        except ImportError as exc:
            raise CameraError(f"camera.source = 'genicam' {install_hint('genicam')}") from exc
        self.timeout_s = timeout_s
        self.harvester = Harvester()
        self.harvester.add_file(cti, check_existence=True)
        self.harvester.update()
        if not self.harvester.device_info_list:
            self.harvester.reset()
            raise CameraError(f"no GenICam camera found through {cti}")
        selector = {"serial_number": serial} if serial else 0
        self.acquirer = self.harvester.create(selector)
        self.acquirer.start()

    def read(self) -> np.ndarray | None:
        with self.acquirer.fetch(timeout=self.timeout_s) as buffer:
            component = buffer.payload.components[0]
            height, width = component.height, component.width
            data = component.data
            fmt = component.data_format
            if fmt in ("RGB8", "RGB8Packed"):
                return data.reshape(height, width, 3).copy()
            if fmt in ("BGR8", "BGR8Packed"):
                return cv2.cvtColor(data.reshape(height, width, 3), cv2.COLOR_BGR2RGB)
            if fmt in _BAYER:
                return cv2.cvtColor(data.reshape(height, width), _BAYER[fmt])
            if fmt == "Mono8":
                return cv2.cvtColor(data.reshape(height, width), cv2.COLOR_GRAY2RGB)
            raise CameraError(
                f"GenICam pixel format {fmt} is not supported (use RGB8, BGR8, Bayer*8 or Mono8)"
            )

    def release(self) -> None:
        try:
            self.acquirer.stop()
            self.acquirer.destroy()
        finally:
            self.harvester.reset()


def genicam_source(
    cti: str, serial: str, timeout_s: float, backoff_initial_s: float, backoff_max_s: float
) -> StreamingSource:
    return StreamingSource(
        f"genicam:{serial or 'first'}",
        lambda: GenicamConnection(cti, serial, timeout_s),
        timeout_s,
        backoff_initial_s,
        backoff_max_s,
    )
