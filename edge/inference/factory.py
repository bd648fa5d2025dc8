"""Pick the inference backend from the configuration and from what is installed."""

from __future__ import annotations

import importlib.util
import logging

from edge.config import InferenceSection
from edge.inference.base import InferenceBackend, InferenceError

log = logging.getLogger(__name__)


def _found(name: str) -> bool:
    try:
        return importlib.util.find_spec(name) is not None
    except ImportError:  # a dotted name whose parent package is absent
        return False


def available_backends() -> dict[str, bool]:
    """Which runtimes are importable here (checked without importing them). TensorRT counts only
    with cuda-python beside it: the backend allocates its buffers through cuda-python."""
    cuda_python = _found("cuda.bindings.runtime") or _found("cuda.cudart")
    return {
        "onnxruntime": _found("onnxruntime"),
        "tensorrt": _found("tensorrt") and cuda_python,
        "torch": _found("torch"),
        "openvino": _found("openvino"),
    }


def resolve_backend_name(cfg: InferenceSection) -> str:
    """`auto` means TensorRT where it and cuda-python are installed and a GPU is allowed, else
    ONNX Runtime."""
    if cfg.backend != "auto":
        return cfg.backend
    if cfg.device != "cpu" and available_backends()["tensorrt"]:
        return "tensorrt"
    return "onnxruntime"


def load_backend(cfg: InferenceSection, input_shape: tuple[int, int, int, int]) -> InferenceBackend:
    """Load the configured model on the chosen runtime (raises InferenceError with the fix)."""
    name = resolve_backend_name(cfg)
    if name == "onnxruntime":
        from edge.inference.onnxruntime_backend import OnnxRuntimeBackend

        return OnnxRuntimeBackend(cfg.model, cfg.device, cfg.threads)
    if name == "openvino":
        from edge.inference.openvino_backend import OpenVinoBackend

        return OpenVinoBackend(cfg.model, input_shape, cfg.threads, cfg.precision)
    if name == "tensorrt":
        from edge.inference.tensorrt_backend import TensorRtBackend

        return TensorRtBackend(cfg.model, input_shape, cfg.fp16)
    if name == "torch":
        from edge.inference.torch_backend import TorchBackend

        return TorchBackend(cfg.torch_checkpoint, cfg.device, cfg.threads)
    if name == "torch-cuda":
        from edge.inference.torch_backend import TorchCudaBackend

        return TorchCudaBackend(cfg.torch_checkpoint, input_shape, cfg.fp16, compile=cfg.torch_compile)
    raise InferenceError(
        f"inference.backend = {name!r}: expected onnxruntime, openvino, tensorrt, torch, torch-cuda or auto"
    )
