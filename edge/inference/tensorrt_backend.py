"""TensorRT: an engine built once from the ONNX file, cached next to it, loaded after.

Written against TensorRT's Python API (>= 8.6, the tensor-name API and `execute_async_v3`; the
Jetson TX2's 8.2 binding-index API where they differ) and NVIDIA's `cuda-python` runtime
bindings for device memory. NOT RUN HERE: TensorRT is installed neither on the build machines nor
on the lent GPU machine. Guarded: without `tensorrt` the error says what to install.

The cache key is the model file's SHA-256, the GPU's name and compute capability, the input shape
(a dynamic model's engine has one optimisation profile, min = opt = max = the camera's size), the
TensorRT version and the precision, because an engine is only valid for exactly that combination.
"""

from __future__ import annotations

import logging
import re
from pathlib import Path
from types import ModuleType
from typing import Any

import numpy as np

from binpick_core.model_file import file_sha256
from edge.atomic_file import write_atomically
from edge.inference.base import InferenceBackend, InferenceError, split_outputs

log = logging.getLogger(__name__)
WORKSPACE_BYTES = 1 << 30


def _import() -> tuple[ModuleType, ModuleType]:  # (tensorrt, cuda-python's runtime bindings)
    try:
        import tensorrt as trt
    except ImportError as exc:
        raise InferenceError(
            "inference.backend = 'tensorrt' needs NVIDIA TensorRT's Python package (JetPack ships it; "
            "elsewhere `pip install tensorrt`) and `pip install cuda-python`"
        ) from exc
    try:
        from cuda.bindings import runtime as cudart  # cuda-python >= 12.6
    except ImportError:
        try:
            from cuda import cudart  # older cuda-python
        except ImportError as exc:
            raise InferenceError("the TensorRT backend needs `pip install cuda-python`") from exc
    return trt, cudart


# cuda-python's results (its error enums and handles; not installed here): Any
def _check(result: Any) -> Any:
    """cuda-python returns (error, value...); raise on error, return the value(s)."""
    err, *values = result if isinstance(result, tuple) else (result,)
    if int(err) != 0:
        raise InferenceError(f"CUDA runtime error {err}")
    return values[0] if len(values) == 1 else values


def engine_path(
    model_path: str | Path,
    gpu_name: str,
    compute_capability: tuple[int, int],
    input_shape: tuple[int, ...],
    trt_version: str,
    fp16: bool,
) -> Path:
    """<model>.<sha16>.<gpu>.sm<major><minor>.<N>x<C>x<H>x<W>.trt<version>[.fp16].engine next to
    the model file. The shape is in the key because a dynamic model's engine only takes the size it
    was built for: a new camera size or `input_scale` must build a new engine, not load the old."""
    model_path = Path(model_path)
    gpu = re.sub(r"[^A-Za-z0-9]+", "-", gpu_name).strip("-").lower()
    sm = "sm{}{}".format(*compute_capability)
    shape = "x".join(str(int(d)) for d in input_shape)
    precision = ".fp16" if fp16 else ""
    parts = (model_path.stem, file_sha256(model_path)[:16], gpu, sm, shape, f"trt{trt_version}{precision}")
    name = ".".join(parts) + ".engine"
    return model_path.with_name(name)


def build_engine(
    trt: ModuleType, model_path: Path, fp16: bool, input_shape: tuple[int, int, int, int]
) -> bytes:
    logger = trt.Logger(trt.Logger.WARNING)
    builder = trt.Builder(logger)
    if int(trt.__version__.split(".")[0]) >= 10:
        network = builder.create_network(0)  # explicit batch is the only mode in 10.x
    else:
        network = builder.create_network(1 << int(trt.NetworkDefinitionCreationFlag.EXPLICIT_BATCH))
    parser = trt.OnnxParser(network, logger)
    if not parser.parse(model_path.read_bytes()):
        errors = "; ".join(str(parser.get_error(i)) for i in range(parser.num_errors))
        raise InferenceError(f"{model_path}: TensorRT cannot parse the ONNX file: {errors}")
    config = builder.create_builder_config()
    if hasattr(config, "set_memory_pool_limit"):  # 8.4+
        config.set_memory_pool_limit(trt.MemoryPoolType.WORKSPACE, WORKSPACE_BYTES)
    else:  # 8.2
        config.max_workspace_size = WORKSPACE_BYTES
    if fp16 and builder.platform_has_fast_fp16:
        config.set_flag(trt.BuilderFlag.FP16)
    tensor = network.get_input(0)
    if any(d < 0 for d in tensor.shape):  # dynamic export: one profile at the camera's size
        profile = builder.create_optimization_profile()
        profile.set_shape(tensor.name, input_shape, input_shape, input_shape)
        config.add_optimization_profile(profile)
    serialized = builder.build_serialized_network(network, config)
    if serialized is None:
        raise InferenceError(f"{model_path}: TensorRT engine build failed (see the TensorRT log above)")
    return bytes(serialized)


class TensorRtBackend(InferenceBackend):
    name = "tensorrt"

    def __init__(self, model_path: str, input_shape: tuple[int, int, int, int], fp16: bool = False):
        trt, cudart = _import()
        self.trt, self.cudart = trt, cudart
        props = _check(cudart.cudaGetDeviceProperties(0))
        gpu_name = props.name.decode(errors="replace") if isinstance(props.name, bytes) else str(props.name)
        gpu_name = gpu_name.split("\x00", 1)[0]  # a C char array
        capability = (int(props.major), int(props.minor))
        self.engine_file = engine_path(model_path, gpu_name, capability, input_shape, trt.__version__, fp16)
        if self.engine_file.is_file():
            data = self.engine_file.read_bytes()
            log.info("TensorRT: loading cached engine %s", self.engine_file)
        else:
            log.info(
                "TensorRT: building the engine for %s on %s (once; minutes on a Jetson)", model_path, gpu_name
            )
            data = build_engine(trt, Path(model_path), fp16, input_shape)
            try:
                write_atomically(self.engine_file, data)
            except OSError as exc:
                log.warning("TensorRT: cannot cache the engine at %s (%s)", self.engine_file, exc)
        runtime = trt.Runtime(trt.Logger(trt.Logger.WARNING))
        self.engine = runtime.deserialize_cuda_engine(data)
        if self.engine is None:
            raise InferenceError(
                f"{self.engine_file}: TensorRT cannot deserialize the engine (delete it to rebuild)"
            )
        self.context = self.engine.create_execution_context()
        self.stream = _check(cudart.cudaStreamCreate())
        self.tensor_api = hasattr(self.engine, "num_io_tensors")  # 8.5+; 8.2 has bindings only
        self.input_shape = tuple(input_shape)
        self._allocate()

    def _io(self) -> list[tuple[str, bool, tuple[int, ...]]]:
        """(name, is_input, shape) for every I/O tensor, after the input shape is set."""
        trt, engine, ctx = self.trt, self.engine, self.context
        io = []
        if self.tensor_api:
            for i in range(engine.num_io_tensors):
                name = engine.get_tensor_name(i)
                is_input = engine.get_tensor_mode(name) == trt.TensorIOMode.INPUT
                if is_input:
                    ctx.set_input_shape(name, self.input_shape)
                io.append((name, is_input, tuple(ctx.get_tensor_shape(name))))
        else:
            for i in range(engine.num_bindings):
                is_input = engine.binding_is_input(i)
                if is_input:
                    ctx.set_binding_shape(i, self.input_shape)
                io.append((engine.get_binding_name(i), is_input, tuple(ctx.get_binding_shape(i))))
        return io

    def _allocate(self) -> None:
        self.buffers: dict[str, tuple[int, np.ndarray, bool]] = {}
        for name, is_input, shape in self._io():
            host = np.empty(shape, np.float32)
            device = _check(self.cudart.cudaMalloc(host.nbytes))
            self.buffers[name] = (device, host, is_input)
            if self.tensor_api:
                self.context.set_tensor_address(name, device)

    def infer(self, tensor: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        cudart = self.cudart
        if tuple(tensor.shape) != self.input_shape:
            raise InferenceError(f"TensorRT engine built for {self.input_shape}, got {tuple(tensor.shape)}")
        tensor = np.ascontiguousarray(tensor, np.float32)
        h2d, d2h = cudart.cudaMemcpyKind.cudaMemcpyHostToDevice, cudart.cudaMemcpyKind.cudaMemcpyDeviceToHost
        for device, _host, is_input in self.buffers.values():
            if is_input:
                _check(cudart.cudaMemcpyAsync(device, tensor.ctypes.data, tensor.nbytes, h2d, self.stream))
        if self.tensor_api:
            ok = self.context.execute_async_v3(self.stream)
        else:
            ok = self.context.execute_async_v2([b[0] for b in self.buffers.values()], self.stream)
        if not ok:
            raise InferenceError("TensorRT execution failed")
        for device, host, is_input in self.buffers.values():
            if not is_input:
                _check(cudart.cudaMemcpyAsync(host.ctypes.data, device, host.nbytes, d2h, self.stream))
        _check(cudart.cudaStreamSynchronize(self.stream))
        return split_outputs({name: b[1] for name, b in self.buffers.items() if not b[2]})

    def describe(self) -> dict:
        return {"backend": self.name, "engine": str(self.engine_file), "tensorrt": self.trt.__version__}

    def close(self) -> None:
        for device, _, _ in getattr(self, "buffers", {}).values():
            self.cudart.cudaFree(device)
        self.buffers = {}
