"""TensorRT: an engine built once from the ONNX file, cached next to it, loaded after.

Written against TensorRT's Python API (>= 8.6, the tensor-name API and `execute_async_v3`; the
8.2 binding-index API where they differ, though JetPack 4.6's bindings are for Python 3.6 and the
appliance needs 3.10, JetPack 6's) and NVIDIA's `cuda-python` runtime bindings for device memory. NOT RUN
HERE: TensorRT is installed neither on the build machines nor on the lent GPU machine; only the
pure-Python parts are tested. Guarded: without `tensorrt` or `cuda-python` the error is one line
naming `inference.backend`, what to install and the alternative.

The cache key is the model file's SHA-256, the GPU's name and compute capability, the input shape
(a dynamic model's engine has one optimisation profile, min = opt = max = the camera's size), the
TensorRT version and the precision, because an engine is only valid for exactly that combination.
"""

from __future__ import annotations

import ctypes
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


# What pip installs beside JetPack's TensorRT (edge/install_plan.py, which pins it to the host's CUDA
# major version): the runtime bindings the backend allocates with. Its major version must not be
# newer than the driver's CUDA (12 on JetPack 6).
CUDA_PYTHON_REQUIREMENT = "cuda-python"
ALTERNATIVE = "or set inference.backend = 'onnxruntime' (CPU; its CUDA provider with onnxruntime-gpu)"


def _import() -> tuple[ModuleType, ModuleType]:  # (tensorrt, cuda-python's runtime bindings)
    try:
        import tensorrt as trt
    except ImportError as exc:
        raise InferenceError(
            f"inference.backend = 'tensorrt': NVIDIA TensorRT's Python package is not importable ({exc}); "
            "on a Jetson, JetPack installs it and the venv must see the system's packages, elsewhere "
            f"`pip install tensorrt`; it also needs `pip install cuda-python`; {ALTERNATIVE}"
        ) from None
    try:
        from cuda.bindings import runtime as cudart  # cuda-python >= 12.6
    except ImportError:
        try:
            from cuda import cudart  # older cuda-python
        except ImportError as exc:
            raise InferenceError(
                f"inference.backend = 'tensorrt' needs NVIDIA's cuda-python for device memory ({exc}): "
                "`pip install cuda-python`, its major version the CUDA version of the driver (12 on "
                f"JetPack 6); {ALTERNATIVE}"
            ) from None
    return trt, cudart


# cuda-python's results (its error enums and handles; not installed here): Any
def _check(result: Any) -> Any:
    """cuda-python returns (error, value...); raise on error, return the value(s)."""
    err, *values = result if isinstance(result, tuple) else (result,)
    code = int(getattr(err, "value", err))  # an enum member (NVIDIA's samples read .value)
    if code != 0:
        name = getattr(err, "name", str(err))
        raise InferenceError(f"inference.backend = 'tensorrt': CUDA runtime error {code} ({name})")
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
    if fp16:
        config.set_flag(_fp16_flag(trt, builder, model_path))
    tensor = network.get_input(0)
    if any(d < 0 for d in tensor.shape):  # dynamic export: one profile at the camera's size
        profile = builder.create_optimization_profile()
        profile.set_shape(tensor.name, input_shape, input_shape, input_shape)
        config.add_optimization_profile(profile)
    serialized = builder.build_serialized_network(network, config)
    if serialized is None:
        raise InferenceError(f"{model_path}: TensorRT engine build failed (see the TensorRT log above)")
    return bytes(serialized)


def _fp16_flag(trt: ModuleType, builder: Any, model_path: Path) -> Any:
    """BuilderFlag.FP16, TensorRT 10's weakly-typed fp16 (deprecated in 10.12, removed in 11 with
    Builder.platform_has_fast_fp16: docs.nvidia.com/deeplearning/tensorrt, "Removed Python APIs")."""
    flag = getattr(getattr(trt, "BuilderFlag", None), "FP16", None)
    if flag is None:
        raise InferenceError(
            f"{model_path}: inference.fp16 = true: TensorRT {trt.__version__} has no BuilderFlag.FP16 "
            "(removed in TensorRT 11); set inference.fp16 = false"
        )
    if not getattr(builder, "platform_has_fast_fp16", True):
        log.warning("TensorRT: this GPU has no fast fp16: inference.fp16 = true may be no faster than fp32")
    return flag


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
        if self.context is None:
            raise InferenceError(
                f"{self.engine_file}: TensorRT cannot create an execution context (GPU memory?)"
            )
        self.tensor_api = hasattr(self.engine, "num_io_tensors")  # 8.5+; 8.2 has bindings only
        self.input_shape = tuple(input_shape)
        self.buffers: dict[str, _Buffer] = {}
        self.stream = None
        try:
            self.stream = _check(cudart.cudaStreamCreate())
            self._allocate()
        except BaseException:
            self.close()
            raise

    def _io(self) -> list[tuple[str, bool, tuple[int, ...], np.dtype]]:
        """(name, is_input, shape, numpy dtype) for every I/O tensor, after the input shape is set.
        The dtypes are the engine's own (an fp16 model's I/O is float16, not float32)."""
        trt, engine, ctx = self.trt, self.engine, self.context
        io = []
        if self.tensor_api:
            for i in range(engine.num_io_tensors):
                name = engine.get_tensor_name(i)
                is_input = engine.get_tensor_mode(name) == trt.TensorIOMode.INPUT
                if is_input and not ctx.set_input_shape(name, self.input_shape):
                    raise self._shape_refused(name)
                dtype = _numpy_dtype(trt, engine.get_tensor_dtype(name), name)
                io.append((name, is_input, tuple(ctx.get_tensor_shape(name)), dtype))
        else:
            for i in range(engine.num_bindings):
                name, is_input = engine.get_binding_name(i), engine.binding_is_input(i)
                if is_input and not ctx.set_binding_shape(i, self.input_shape):
                    raise self._shape_refused(name)
                dtype = _numpy_dtype(trt, engine.get_binding_dtype(i), name)
                io.append((name, is_input, tuple(ctx.get_binding_shape(i)), dtype))
        return io

    def _shape_refused(self, name: str) -> InferenceError:
        return InferenceError(
            f"{self.engine_file}: the engine does not take input {name!r} of shape {self.input_shape} "
            "(its optimisation profile was built for another size; delete the file to rebuild)"
        )

    def _allocate(self) -> None:
        io = self._io()
        inputs = [name for name, is_input, _, _ in io if is_input]
        if len(inputs) != 1:
            raise InferenceError(f"{self.engine_file}: expected one input tensor, the engine has {inputs}")
        for name, is_input, shape, dtype in io:
            if any(d < 0 for d in shape):
                raise InferenceError(f"{self.engine_file}: tensor {name!r} has no static shape ({shape})")
            buffer = _Buffer.allocate(self.cudart, shape, dtype, is_input)
            self.buffers[name] = buffer
            if self.tensor_api and not self.context.set_tensor_address(name, buffer.device):
                raise InferenceError(f"{self.engine_file}: TensorRT refused the address of tensor {name!r}")

    def infer(self, tensor: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        cudart = self.cudart
        if tuple(tensor.shape) != self.input_shape:
            raise InferenceError(f"TensorRT engine built for {self.input_shape}, got {tuple(tensor.shape)}")
        h2d, d2h = cudart.cudaMemcpyKind.cudaMemcpyHostToDevice, cudart.cudaMemcpyKind.cudaMemcpyDeviceToHost
        for b in self.buffers.values():
            if b.is_input:  # into page-locked memory (in the engine's dtype), then to the device
                np.copyto(b.host, tensor, casting="same_kind")
                _check(cudart.cudaMemcpyAsync(b.device, b.host_ptr, b.host.nbytes, h2d, self.stream))
        if self.tensor_api:
            ok = self.context.execute_async_v3(self.stream)
        else:
            ok = self.context.execute_async_v2([b.device for b in self.buffers.values()], self.stream)
        if not ok:
            _check(cudart.cudaStreamSynchronize(self.stream))  # nothing of this call left in flight
            raise InferenceError("TensorRT execution failed (see the TensorRT log)")
        for b in self.buffers.values():
            if not b.is_input:
                _check(cudart.cudaMemcpyAsync(b.host_ptr, b.device, b.host.nbytes, d2h, self.stream))
        _check(cudart.cudaStreamSynchronize(self.stream))
        # Copies: the page-locked buffers are overwritten by the next call and freed by close().
        return split_outputs({name: b.host.copy() for name, b in self.buffers.items() if not b.is_input})

    def describe(self) -> dict:
        return {"backend": self.name, "engine": str(self.engine_file), "tensorrt": self.trt.__version__}

    def close(self) -> None:
        """Free the buffers and the stream, then drop the context before the engine."""
        cudart = self.cudart
        if getattr(self, "stream", None) is not None:
            cudart.cudaStreamSynchronize(self.stream)
        for b in getattr(self, "buffers", {}).values():
            b.free(cudart)
        self.buffers = {}
        if getattr(self, "stream", None) is not None:
            cudart.cudaStreamDestroy(self.stream)
            self.stream = None
        self.context = None
        self.engine = None


def _numpy_dtype(trt: ModuleType, trt_dtype: Any, name: str) -> np.dtype:
    try:
        return np.dtype(trt.nptype(trt_dtype))
    except TypeError as exc:  # bf16, fp8, int4: no numpy type
        raise InferenceError(f"tensor {name!r} is {trt_dtype}, which numpy cannot hold") from exc


def host_view(address: int, shape: tuple[int, ...], dtype: np.dtype) -> np.ndarray:
    """A numpy array over `address` (page-locked memory from cudaMallocHost), any dtype (float16
    has no ctypes type, so the memory is viewed as bytes first)."""
    dtype = np.dtype(dtype)
    count = int(np.prod(shape, dtype=np.int64))
    raw = (ctypes.c_ubyte * (count * dtype.itemsize)).from_address(address)
    return np.frombuffer(raw, dtype=dtype, count=count).reshape(shape)


class _Buffer:
    """One I/O tensor: device memory and its page-locked host copy (cudaMemcpyAsync from pageable
    memory is not asynchronous; NVIDIA's samples/python/common_runtime.py uses cudaMallocHost)."""

    def __init__(self, device: int, host_ptr: int, host: np.ndarray, is_input: bool):
        self.device, self.host_ptr, self.host, self.is_input = device, host_ptr, host, is_input

    @classmethod
    def allocate(cls, cudart: Any, shape: tuple[int, ...], dtype: np.dtype, is_input: bool) -> _Buffer:
        nbytes = max(int(np.prod(shape, dtype=np.int64)) * np.dtype(dtype).itemsize, 1)
        host_ptr = _check(cudart.cudaMallocHost(nbytes))
        try:
            device = _check(cudart.cudaMalloc(nbytes))
        except InferenceError:
            cudart.cudaFreeHost(host_ptr)
            raise
        return cls(device, host_ptr, host_view(host_ptr, shape, dtype), is_input)

    def free(self, cudart: Any) -> None:
        self.host = np.empty(0)  # no view over freed memory
        cudart.cudaFree(self.device)
        cudart.cudaFreeHost(self.host_ptr)
