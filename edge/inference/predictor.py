"""Frame in, probability maps out: the model's own metadata decides size and normalisation.

The ONNX metadata (contracts.md §2, read by `edge.model_file`) gives the input size, channels and
preprocessing. A static model gets the camera image resized to its export size; a dynamic one
gets the image at camera size, edge-padded to a multiple of 16 and the maps cropped back. The
scale back to camera pixels is reported so the grasp lands on the image the calibration was
made for.
"""

from __future__ import annotations

import time
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
    preprocess_ms: float = 0.0  # resize + normalisation, inside the inference stage's time


class Predictor:
    def __init__(self, cfg: InferenceSection, camera_size: tuple[int, int]):
        from edge.model_file import ModelFileError, read_model_info

        try:
            self.info = read_model_info(cfg.model)
        except ModelFileError as exc:
            raise InferenceError(str(exc)) from exc
        width, height = camera_size
        multiple = self.info.size_multiple
        self.input_height = self.info.input_height or _ceil(height, multiple)
        self.input_width = self.info.input_width or _ceil(width, multiple)
        self.channels = self.info.channels
        self.model_id = self.info.model_id
        self.backend: InferenceBackend = load_backend(
            cfg, (1, self.channels, self.input_height, self.input_width)
        )

    def predict(self, rgb: np.ndarray, depth_m: np.ndarray | None = None) -> Maps:
        from edge.model_file import pad_to_multiple, preprocess

        started = time.perf_counter()
        height, width = rgb.shape[:2]
        if not self.info.dynamic and (width, height) != (self.input_width, self.input_height):
            size = (self.input_width, self.input_height)
            rgb = cv2.resize(rgb, size, interpolation=cv2.INTER_AREA)
            if depth_m is not None:
                depth_m = cv2.resize(depth_m, size, interpolation=cv2.INTER_NEAREST)
        try:
            if self.info.dynamic:
                tensor = preprocess(self.info, rgb, depth_m if self.info.uses_depth else None)
                tensor, (h, w) = pad_to_multiple(tensor, self.info.size_multiple)
            else:
                tensor = preprocess(self.info, rgb, depth_m if self.info.uses_depth else None)
                h, w = tensor.shape[-2:]
        except ValueError as exc:  # e.g. a depth model fed by an RGB-only camera
            raise InferenceError(f"preprocessing failed: {exc}") from exc
        preprocess_ms = (time.perf_counter() - started) * 1000.0
        boundaries, occlusions = self.backend.infer(tensor)
        boundaries, occlusions = boundaries[:h, :w], occlusions[:h, :w]
        return Maps(boundaries, occlusions, width / w, height / h, rgb, preprocess_ms)

    def describe(self) -> dict:
        return {
            **self.backend.describe(),
            "model": str(self.info.path),
            "variant": f"{self.info.variant} x{self.info.width:g} ({self.info.input_kind})",
            "input": [self.channels, self.info.input_height or "dynamic", self.info.input_width or "dynamic"],
            "model_id": self.model_id,
        }


def _ceil(n: int, multiple: int) -> int:
    return (n + multiple - 1) // multiple * multiple
