"""Run a model on a frame: an exported ONNX file (ONNX Runtime, as on the appliance) or a
training checkpoint (PyTorch). Both return the two probability maps at the frame's size."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np

from binpick_core.model_file import ModelInfo, file_sha256, preprocess, preprocess_padded, read_model_info


def describe(path: str | Path, backend: str, info: ModelInfo) -> dict:
    """What an evaluation reports of the model it ran (the same keys for every backend); the model
    id and the file's SHA-256 let `binpick model-card` refuse an eval of another model."""
    return {
        "model": str(path),
        "sha256": file_sha256(path),
        "model_id": info.model_id,
        "backend": backend,
        "variant": info.variant,
        "width": info.width,
        "input": info.input_kind,
        "provenance": info.provenance,
    }


class OnnxPredictor:
    """The appliance's path: metadata from `binpick_core.model_file`, inference with ONNX Runtime."""

    def __init__(self, path: str | Path, threads: int | None = None) -> None:
        import onnxruntime as ort

        self.info: ModelInfo = read_model_info(path)
        options = ort.SessionOptions()
        options.intra_op_num_threads = threads or max(1, (os.cpu_count() or 2) // 2)
        available = ort.get_available_providers()
        providers = [p for p in ("CUDAExecutionProvider", "CPUExecutionProvider") if p in available]
        self.session = ort.InferenceSession(str(path), options, providers=providers)
        self.input_kind = self.info.input_kind
        self.description = describe(path, "onnxruntime", self.info)

    def __call__(self, rgb: np.ndarray | None, depth_m: np.ndarray | None) -> tuple[np.ndarray, np.ndarray]:
        height, width = (rgb if rgb is not None else depth_m).shape[:2]
        if self.info.dynamic:
            tensor = preprocess_padded(self.info, rgb, depth_m)
        else:
            if (height, width) != (self.info.input_height, self.info.input_width):
                raise ValueError(
                    f"{self.info.path}: exported for {self.info.input_height}x{self.info.input_width} "
                    f"but the frames are {height}x{width}; export with --dynamic or at this size"
                )
            tensor = preprocess(self.info, rgb, depth_m)
        boundaries, occlusions = self.session.run(["boundaries", "occlusions"], {"image": tensor})
        return boundaries[0, 0, :height, :width], occlusions[0, 0, :height, :width]


class OpenVinoPredictor:
    """A model file on the appliance's OpenVINO backend (`edge.inference.openvino_backend`) at
    `precision` (fp32, bf16, auto); int8 when the file is (binpick quantize). The backend is
    compiled for the first frame's padded size and again only when the size changes."""

    def __init__(self, path: str | Path, precision: str = "fp32", threads: int | None = None) -> None:
        from edge.inference.openvino_backend import import_openvino

        import_openvino()  # the missing-package error now, not at the first frame
        self.info: ModelInfo = read_model_info(path)
        self.path, self.precision, self.threads = str(path), precision, threads or 0
        self.backend = None
        self.input_kind = self.info.input_kind
        self.description = describe(path, "openvino", self.info)

    def __call__(self, rgb: np.ndarray | None, depth_m: np.ndarray | None) -> tuple[np.ndarray, np.ndarray]:
        from edge.inference.openvino_backend import OpenVinoBackend

        height, width = (rgb if rgb is not None else depth_m).shape[:2]
        tensor = (preprocess_padded if self.info.dynamic else preprocess)(self.info, rgb, depth_m)
        if self.backend is None or self.backend.input_shape != tensor.shape:
            self.backend = OpenVinoBackend(
                self.path, tensor.shape, self.threads, self.precision, setting="--precision"
            )
            self.description.update(
                precision=self.backend.precision, int8=self.backend.quantized, device=self.backend.device_name
            )
        boundaries, occlusions = self.backend.infer(tensor)
        return boundaries[:height, :width], occlusions[:height, :width]


class CheckpointPredictor:
    """A training checkpoint run in PyTorch (GPU when available), sigmoid on the logits."""

    def __init__(self, path: str | Path, device: str = "auto") -> None:
        import torch

        from bicameral.checkpoint import INPUT_KIND_BY_CHANNELS, load_checkpoint

        self.torch = torch
        if device == "auto":
            device = "cuda" if torch.cuda.is_available() else "cpu"
        try:
            self.device = torch.device(device)
        except (RuntimeError, ValueError):  # torch lists every device type it knows, in one long line
            raise ValueError(f"--device {device!r}: expected auto, cpu, cuda or cuda:N") from None
        if self.device.type == "cuda" and not torch.cuda.is_available():
            raise ValueError(f"--device {device}: no CUDA GPU is visible")
        self.model, data = load_checkpoint(path, self.device)
        channels = self.model.config.in_channels
        self.input_kind = INPUT_KIND_BY_CHANNELS[channels]
        self.preprocess = data["preprocess"]
        self.description = {
            "model": str(path),
            "sha256": file_sha256(path),
            "model_id": None,
            "backend": f"pytorch ({self.device})",
            "variant": self.model.config.variant,
            "width": self.model.config.width,
            "input": self.input_kind,
            "provenance": data.get("provenance", {}),
        }

    def __call__(self, rgb: np.ndarray | None, depth_m: np.ndarray | None) -> tuple[np.ndarray, np.ndarray]:
        from bicameral.data import normalise

        tensor = normalise(rgb, depth_m, self.input_kind, self.preprocess)
        with self.torch.no_grad():
            image = self.torch.from_numpy(tensor)[None].to(self.device)
            b, o = self.model(image)
        return (
            self.torch.sigmoid(b)[0, 0].float().cpu().numpy(),
            self.torch.sigmoid(o)[0, 0].float().cpu().numpy(),
        )


# What `binpick eval` can score: an exported model, its int8 twin on OpenVINO, or a checkpoint.
Predictor = OnnxPredictor | OpenVinoPredictor | CheckpointPredictor


def load_predictor(
    path: str | Path, device: str = "auto", backend: str = "onnxruntime", precision: str = "fp32"
) -> Predictor:
    """`.onnx` → ONNX Runtime (the file as written) or OpenVINO; anything else is read as a
    training checkpoint."""
    path = Path(path)
    if path.suffix.lower() == ".onnx":
        if backend == "openvino":
            return OpenVinoPredictor(path, precision)
        return OnnxPredictor(path)
    return CheckpointPredictor(path, device)
