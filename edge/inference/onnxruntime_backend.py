"""ONNX Runtime: the default backend (CPU; CUDA or TensorRT execution providers when present).

The model is loaded with its denormal weights flushed (edge.denormals, a warning with the count
when the file still has any) and the session's threads treat denormal activations as zero
(`session.set_denormal_as_zero`, ORT's flush-to-zero/denormals-are-zero for its own threads).
"""

from __future__ import annotations

import numpy as np

from edge.denormals import load_flushed, prime_float_limits
from edge.inference.base import InferenceBackend, InferenceError, split_outputs
from edge.machine import physical_cores

# Preference order when the device allows a GPU; the CPU provider always closes the list.
GPU_PROVIDERS = ("TensorrtExecutionProvider", "CUDAExecutionProvider")


def choose_providers(device: str, available: list[str]) -> list[str]:
    if device == "cpu":
        return ["CPUExecutionProvider"]
    gpu = [p for p in GPU_PROVIDERS if p in available]
    if device == "cuda" and not gpu:
        raise InferenceError(
            f"inference.device = 'cuda' but ONNX Runtime offers only {available}; install onnxruntime-gpu "
            "or set device = 'cpu'"
        )
    return [*gpu, "CPUExecutionProvider"]


class OnnxRuntimeBackend(InferenceBackend):
    name = "onnxruntime"

    def __init__(self, model_path: str, device: str = "cpu", threads: int = 0):
        import onnxruntime as ort

        prime_float_limits()  # the session below turns on FTZ in this thread
        options = ort.SessionOptions()
        options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
        options.intra_op_num_threads = threads or physical_cores()
        options.inter_op_num_threads = 1
        options.add_session_config_entry("session.set_denormal_as_zero", "1")
        providers = choose_providers(device, ort.get_available_providers())
        try:
            proto, self.denormals_flushed = load_flushed(model_path)
            self.session = ort.InferenceSession(proto.SerializeToString(), options, providers=providers)
        except Exception as exc:  # onnx's DecodeError, ORT's own Fail/InvalidGraph types
            raise InferenceError(f"{model_path}: ONNX Runtime cannot load the model ({exc})") from exc
        self.input_name = self.session.get_inputs()[0].name
        self.output_names = [o.name for o in self.session.get_outputs()]
        self.threads = options.intra_op_num_threads

    def infer(self, tensor: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        try:
            values = self.session.run(self.output_names, {self.input_name: tensor})
        except Exception as exc:
            raise InferenceError(f"ONNX Runtime inference failed: {exc}") from exc
        return split_outputs(dict(zip(self.output_names, values, strict=True)))

    def describe(self) -> dict:
        return {
            "backend": self.name,
            "providers": self.session.get_providers(),
            "threads": self.threads,
            "denormals_flushed_at_load": self.denormals_flushed,
        }
