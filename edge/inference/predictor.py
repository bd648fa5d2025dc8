"""Frame in, probability maps out: the model's own metadata decides size and normalisation.

The ONNX metadata (contracts.md §2, read by `edge.model_file`) gives the input size, channels and
preprocessing; this module resizes the camera image to that size (or pads it to a multiple of 16
for a dynamic-size model), runs the backend and reports the scale back to camera pixels, so the
grasp lands on the camera image the calibration was made for.
"""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np

from edge.config import InferenceSection
from edge.inference.base import InferenceBackend, InferenceError
from edge.inference.factory import load_backend


@dataclass
class Maps:
    boundaries: np.ndarray  # HxW float32 in [0, 1], at model resolution
    occlusions: np.ndarray
    scale_x: float  # camera px per model px
    scale_y: float
    model_rgb: np.ndarray  # the image as the model saw it (for overlays)


class Predictor:
    def __init__(self, cfg: InferenceSection, camera_size: tuple[int, int]):
        from edge.model_file import read_model_info

        try:
            self.info = read_model_info(cfg.model)
        except Exception as exc:
            raise InferenceError(f"{cfg.model}: cannot read the model metadata ({exc})") from exc
        width, height = camera_size
        self.input_height = int(self.info.input_height) or _ceil16(height)
        self.input_width = int(self.info.input_width) or _ceil16(width)
        self.channels = int(self.info.channels)
        self.model_id = int(getattr(self.info, "model_id", 0) or 0)
        self.backend: InferenceBackend = load_backend(
            cfg, (1, self.channels, self.input_height, self.input_width)
        )

    def predict(self, rgb: np.ndarray, depth_m: np.ndarray | None = None) -> Maps:
        from edge.model_file import preprocess

        height, width = rgb.shape[:2]
        size = (self.input_width, self.input_height)
        if (width, height) != size:
            rgb = cv2.resize(rgb, size, interpolation=cv2.INTER_AREA)
            if depth_m is not None:
                depth_m = cv2.resize(depth_m, size, interpolation=cv2.INTER_NEAREST)
        if self.channels != 3 and depth_m is None:
            raise InferenceError(
                f"the model expects {self.channels} channels with depth; the camera gives RGB only"
            )
        tensor = preprocess(rgb, self.info, depth_m=depth_m)
        boundaries, occlusions = self.backend.infer(np.ascontiguousarray(tensor, np.float32))
        return Maps(boundaries, occlusions, width / self.input_width, height / self.input_height, rgb)

    def describe(self) -> dict:
        return {
            **self.backend.describe(),
            "input": [self.channels, self.input_height, self.input_width],
            "model_id": self.model_id,
        }


def _ceil16(n: int) -> int:
    return (n + 15) // 16 * 16
