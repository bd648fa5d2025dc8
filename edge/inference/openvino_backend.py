"""OpenVINO on the CPU: the x86 fast path (Intel and AMD) for fp32, bf16 and int8 models.

The same ONNX model file as every other backend (contracts.md section 2): fp32 as exported, or
int8 as written by `binpick quantize` (NNCF post-training quantisation, QuantizeLinear /
DequantizeLinear pairs that OpenVINO runs as int8 kernels, VNNI/AMX where the CPU has them).
`inference.precision` is the precision of an fp32 file's compute: `fp32`, `bf16` (only where the
CPU reports BF16 in OPTIMIZATION_CAPABILITIES; refused by name elsewhere), or `auto` (bf16 where
the CPU has it, else fp32). An int8 file runs its non-int8 parts in fp32: with the bf16 hint
OpenVINO 2026.4 ruins its maps (mean |diff| 0.36 against fp32 on a Mikado+ frame, held-out
boundary ODS 0.688 -> 0.451), so `auto` picks fp32 for it and `bf16` is refused by name.
Denormal weights are flushed at load (edge.denormals) and the CPU plugin's own denormal flushing
is switched on (CPU_DENORMALS_OPTIMIZATION) for its threads.

A dynamic-size model is reshaped to the one input size the predictor will send, so OpenVINO
compiles static kernels for it. The `openvino` package comes with the `x86` extra.
"""

from __future__ import annotations

import logging
from types import ModuleType
from typing import TYPE_CHECKING

import numpy as np

from binpick_core.model_file import OUTPUT_NAMES
from edge.denormals import load_flushed
from edge.inference.base import InferenceBackend, InferenceError, split_outputs
from edge.machine import physical_cores

if TYPE_CHECKING:
    import openvino

log = logging.getLogger(__name__)

PRECISIONS = ("fp32", "bf16", "auto")
REQUIREMENT = ".[x86]"  # what pip installs for this backend (edge.install_plan)
INSTALL = f"inference.backend = 'openvino' needs the openvino package: pip install '{REQUIREMENT}'"


def import_openvino() -> ModuleType:
    """The openvino module, or InferenceError naming the extra to install."""
    try:
        import openvino
    except ImportError as exc:
        raise InferenceError(f"{INSTALL} ({exc})") from None
    return openvino


def cpu_capabilities(core: openvino.Core) -> list[str]:
    """OpenVINO's OPTIMIZATION_CAPABILITIES of the CPU plugin (e.g. FP32, BF16, INT8)."""
    return list(core.get_property("CPU", "OPTIMIZATION_CAPABILITIES"))


def resolve_precision(precision: str, capabilities: list[str], setting: str = "inference.precision") -> str:
    """fp32 | bf16 for `inference.precision`; bf16 on a CPU without it is refused by name.
    `setting` is what the user wrote it as (`binpick eval` says `--precision`)."""
    if precision not in PRECISIONS:
        raise InferenceError(f"{setting} = {precision!r}: expected one of {list(PRECISIONS)}")
    has_bf16 = "BF16" in capabilities
    if precision == "auto":
        return "bf16" if has_bf16 else "fp32"
    if precision == "bf16" and not has_bf16:
        raise InferenceError(
            f"{setting} = 'bf16' but this CPU has no bf16 support (OpenVINO reports "
            f"{capabilities}); use 'fp32' or 'auto'"
        )
    return precision


class OpenVinoBackend(InferenceBackend):
    name = "openvino"

    def __init__(
        self,
        model_path: str,
        input_shape: tuple[int, int, int, int],
        threads: int = 0,
        precision: str = "fp32",
        setting: str = "inference.precision",
    ) -> None:
        ov = import_openvino()
        core = ov.Core()
        self.capabilities = cpu_capabilities(core)
        self.threads = threads or physical_cores()
        try:
            proto, self.denormals_flushed = load_flushed(model_path)
        except Exception as exc:  # onnx's DecodeError, a missing file
            raise InferenceError(f"{model_path}: not a readable ONNX model ({exc})") from exc
        self.quantized = any(node.op_type == "QuantizeLinear" for node in proto.graph.node)
        if self.quantized and precision == "bf16":
            raise InferenceError(
                f"{setting} = 'bf16' with the int8 model {model_path}: OpenVINO's bf16 hint "
                "ruins an int8 model's maps (docs/appliance.md); use 'fp32' or 'auto'"
            )
        self.precision = (
            "fp32" if self.quantized else resolve_precision(precision, self.capabilities, setting)
        )
        try:
            model = core.read_model(proto.SerializeToString())
            del proto
            if model.inputs[0].partial_shape.is_dynamic:
                model.reshape({model.inputs[0]: ov.PartialShape(list(input_shape))})
            config = {
                "INFERENCE_PRECISION_HINT": "bf16" if self.precision == "bf16" else "f32",
                "INFERENCE_NUM_THREADS": self.threads,
                "PERFORMANCE_HINT": "LATENCY",
                "CPU_DENORMALS_OPTIMIZATION": True,
            }
            self.compiled = core.compile_model(model, "CPU", config)
        except InferenceError:
            raise
        except Exception as exc:  # onnx DecodeError, OpenVINO's RuntimeError / GeneralFailure
            first = next((line for line in str(exc).splitlines() if line.strip()), type(exc).__name__)
            raise InferenceError(f"{model_path}: OpenVINO cannot load the model ({first.strip()})") from exc
        self.request = self.compiled.create_infer_request()
        # OpenVINO folds the exporter's final Cast away, so an output has several names.
        self.output_names = [
            next((n for n in OUTPUT_NAMES if n in output.get_names()), output.get_any_name())
            for output in self.compiled.outputs
        ]
        self.input_shape = tuple(input_shape)
        self.device_name = core.get_property("CPU", "FULL_DEVICE_NAME")

    def infer(self, tensor: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        if tuple(tensor.shape) != self.input_shape:
            raise InferenceError(f"openvino compiled for {self.input_shape}, got {tuple(tensor.shape)}")
        try:
            result = self.request.infer({0: np.ascontiguousarray(tensor, np.float32)})
        except Exception as exc:
            raise InferenceError(f"OpenVINO inference failed: {exc}") from exc
        values = [np.array(result[output]) for output in self.compiled.outputs]  # own the buffers
        return split_outputs(dict(zip(self.output_names, values, strict=True)))

    def describe(self) -> dict:
        return {
            "backend": self.name,
            "device": self.device_name,
            "precision": self.precision,
            "int8": self.quantized,
            "threads": self.threads,
            "capabilities": self.capabilities,
            "denormals_flushed_at_load": self.denormals_flushed,
        }
