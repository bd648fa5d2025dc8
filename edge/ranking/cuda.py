"""GPU twin of `edge.ranking.rank`: the maps stay on the GPU, only the ranking comes back.

The CUDA module `edge._hotpath_cuda` (built only where CMake finds a CUDA compiler) labels
the candidates, gathers their statistics, scores and sorts them on the GPU, and finds the
grasp's distance transform there too; only one compact record per kept candidate and the
grasp's two facts come back, and the host finishes with the CPU path's own C++ (angle from
exact moments, the grasp rule). The native call returns the same table as
`edge._hotpath.rank`, so this module builds the same `Candidate`/`Grasp`/`Ranking` objects and
the two paths agree exactly (docs/gpu.md).

Inputs may be host numpy arrays (copied to the GPU), objects exposing
`__cuda_array_interface__` (PyTorch CUDA tensors, CuPy, Numba) or DLPack CUDA tensors
(`__dlpack__`), so the network's output tensors feed the ranking without a host round trip.
"""

from __future__ import annotations

import ctypes
import sys
import threading
from dataclasses import dataclass
from typing import Any

import numpy as np

from edge.ranking.native import native_params, ranking_from_native
from edge.ranking.params import RankingParams
from edge.ranking.result import Ranking

try:  # the module exists only where CUDA was found at build time
    from edge import _hotpath_cuda as _native
except ImportError as exc:  # pragma: no cover - depends on the build machine
    _native = None
    _IMPORT_ERROR = str(exc)
else:
    _IMPORT_ERROR = ""

_DTYPE_CODES = {"<f4": 0, "|u1": 1, "<u1": 1}
_KDL_CUDA = 2
_KDL_CUDA_MANAGED = 13


def cuda_available() -> tuple[bool, str]:
    """Whether the CUDA ranking can run here, and why not when it cannot."""
    if _native is None:
        return False, f"edge._hotpath_cuda is not built ({_IMPORT_ERROR})"
    count, message = _native.cuda_status()
    if count == 0:
        return False, f"no usable CUDA device: {message}"
    return True, f"{count} CUDA device(s)"


@dataclass(frozen=True)
class _DeviceMap:
    """A 2-D map in GPU memory: address, element type code, strides in elements."""

    pointer: int
    dtype_code: int
    row_stride: int
    col_stride: int
    height: int
    width: int
    stream: int | None
    keepalive: Any


def _from_cuda_array_interface(obj: Any, name: str) -> _DeviceMap:
    cai = obj.__cuda_array_interface__
    shape = tuple(cai["shape"])
    typestr = cai["typestr"]
    if len(shape) != 2:
        raise ValueError(f"{name}: expected an HxW map, got shape {shape}")
    if typestr not in _DTYPE_CODES:
        raise ValueError(f"{name}: expected float32 or uint8, got typestr {typestr!r}")
    itemsize = 4 if typestr == "<f4" else 1
    strides = cai.get("strides")
    if strides is None:
        strides = (shape[1] * itemsize, itemsize)
    if any(s % itemsize for s in strides):
        raise ValueError(f"{name}: strides {strides} are not multiples of the element size {itemsize}")
    stream = cai.get("stream")
    return _DeviceMap(
        pointer=int(cai["data"][0]),
        dtype_code=_DTYPE_CODES[typestr],
        row_stride=strides[0] // itemsize,
        col_stride=strides[1] // itemsize,
        height=shape[0],
        width=shape[1],
        stream=None if stream is None else int(stream),
        keepalive=obj,
    )


class _DLDevice(ctypes.Structure):
    _fields_ = [("device_type", ctypes.c_int32), ("device_id", ctypes.c_int32)]


class _DLDataType(ctypes.Structure):
    _fields_ = [("code", ctypes.c_uint8), ("bits", ctypes.c_uint8), ("lanes", ctypes.c_uint16)]


class _DLTensor(ctypes.Structure):
    _fields_ = [
        ("data", ctypes.c_void_p),
        ("device", _DLDevice),
        ("ndim", ctypes.c_int32),
        ("dtype", _DLDataType),
        ("shape", ctypes.POINTER(ctypes.c_int64)),
        ("strides", ctypes.POINTER(ctypes.c_int64)),
        ("byte_offset", ctypes.c_uint64),
    ]


def _from_dlpack(obj: Any, name: str, stream: int | None) -> _DeviceMap:
    """Read a DLPack capsule without consuming it: the producer keeps ownership and frees it."""
    device_type, _device_id = obj.__dlpack_device__()
    if int(device_type) not in (_KDL_CUDA, _KDL_CUDA_MANAGED):
        raise ValueError(f"{name}: DLPack tensor is not on a CUDA device (device type {int(device_type)})")
    # Asking the producer for our stream makes it order its pending work before ours.
    capsule = obj.__dlpack__(stream=1 if stream in (None, 0) else stream)
    get_pointer = ctypes.pythonapi.PyCapsule_GetPointer
    get_pointer.restype = ctypes.c_void_p
    get_pointer.argtypes = [ctypes.py_object, ctypes.c_char_p]
    tensor = _DLTensor.from_address(get_pointer(capsule, b"dltensor"))
    if tensor.ndim != 2:
        raise ValueError(f"{name}: expected an HxW map, got {tensor.ndim} dimensions")
    code, bits, lanes = tensor.dtype.code, tensor.dtype.bits, tensor.dtype.lanes
    if (code, bits, lanes) == (2, 32, 1):  # kDLFloat
        dtype_code = 0
    elif (code, bits, lanes) == (1, 8, 1):  # kDLUInt
        dtype_code = 1
    else:
        raise ValueError(f"{name}: expected float32 or uint8, got DLPack dtype code={code} bits={bits}")
    height, width = tensor.shape[0], tensor.shape[1]
    if tensor.strides:
        row_stride, col_stride = tensor.strides[0], tensor.strides[1]
    else:
        row_stride, col_stride = width, 1
    return _DeviceMap(
        pointer=int(tensor.data or 0) + int(tensor.byte_offset),
        dtype_code=dtype_code,
        row_stride=int(row_stride),
        col_stride=int(col_stride),
        height=int(height),
        width=int(width),
        stream=stream,
        keepalive=(obj, capsule),
    )


def _device_map(obj: Any, name: str, stream: int | None) -> _DeviceMap:
    if hasattr(obj, "__cuda_array_interface__"):
        view = _from_cuda_array_interface(obj, name)
    elif hasattr(obj, "__dlpack__") and hasattr(obj, "__dlpack_device__"):
        view = _from_dlpack(obj, name, stream)
    else:
        raise ValueError(
            f"{name}: expected a numpy array, a __cuda_array_interface__ object or a DLPack CUDA tensor, "
            f"got {type(obj).__name__}"
        )
    if view.dtype_code == 0 and view.pointer % 4:  # the kernels load float32 directly
        raise ValueError(f"{name}: float32 data at a misaligned address {view.pointer:#x}")
    return view


def _torch_stream(obj: Any) -> int | None:
    """PyTorch's current stream on the tensor's device, when `obj` is a torch CUDA tensor.

    PyTorch's __cuda_array_interface__ names no stream, and its side streams do not
    synchronise with the legacy default stream, so a tensor produced under
    `torch.cuda.stream(s)` is ranked on `s`. torch is never imported here.
    """
    torch = sys.modules.get("torch")
    if torch is None or not isinstance(obj, torch.Tensor) or not obj.is_cuda:
        return None
    return int(torch.cuda.current_stream(obj.device).cuda_stream)


def _host_map(array: Any, name: str) -> np.ndarray:
    if not isinstance(array, np.ndarray):
        raise ValueError(f"{name}: expected a numpy array, got {type(array).__name__}")
    if array.ndim != 2:
        raise ValueError(f"{name}: expected an HxW map, got shape {array.shape}")
    if array.dtype not in (np.float32, np.uint8):
        raise ValueError(f"{name}: expected float32 or uint8, got {array.dtype}")
    return np.ascontiguousarray(array)


# Graph mode (one captured CUDA graph per input, no synchronisation inside the ranking) or
# direct mode (the counts are read back first, every step sized exactly). Both give the same
# result; direct is the default, measured faster on an H100 (docs/gpu.md "Graph mode").
GRAPH_MODE_DEFAULT = False


class CudaRanker:
    """One GPU's ranking workspace; reuse it across frames (no allocation once warm).

    `graph`: capture the ranking as one CUDA graph per input (map addresses, size, parameters)
    and replay it, rather than reading the counts back halfway (None: GRAPH_MODE_DEFAULT).
    """

    def __init__(self, device: int = 0, graph: bool | None = None) -> None:
        ok, why = cuda_available()
        if not ok:
            raise RuntimeError(f"CUDA ranking unavailable: {why}")
        self.graph = GRAPH_MODE_DEFAULT if graph is None else bool(graph)
        self._native = _native.Ranker(device, self.graph)
        self._lock = threading.Lock()  # the workspace serves one call at a time
        self.last_device_ms = 0.0
        self.last_component_count = 0

    @property
    def device(self) -> int:
        return int(self._native.device)

    def rank(
        self,
        boundaries: Any,
        occlusions: Any,
        params: RankingParams | None = None,
        return_labels: bool = False,
        stream: int | None = None,
    ) -> Ranking:
        """Rank like `edge.ranking.rank`; `stream` is a cudaStream_t handle as an integer.

        Device inputs run on `stream`, else on the stream their `__cuda_array_interface__`
        names, else (torch tensors) on PyTorch's current stream, else on the legacy default stream.
        The call returns when the result is on the host.
        """
        native = native_params(params)
        on_host = isinstance(boundaries, np.ndarray), isinstance(occlusions, np.ndarray)
        if all(on_host):
            y, z = _host_map(boundaries, "boundaries"), _host_map(occlusions, "occlusions")
            if y.shape != z.shape:
                raise ValueError(f"occlusions: expected the shape of boundaries {y.shape}, got {z.shape}")
            with self._lock:
                raw = self._native.rank_host(y, z, native, stream or 0, bool(return_labels))
        elif any(on_host):
            raise ValueError("boundaries, occlusions: pass both as host numpy arrays or both on the GPU")
        else:
            ym = _device_map(boundaries, "boundaries", stream)
            zm = _device_map(occlusions, "occlusions", stream)
            if (ym.height, ym.width) != (zm.height, zm.width):
                raise ValueError(
                    f"occlusions: expected the shape of boundaries {(ym.height, ym.width)}, "
                    f"got {(zm.height, zm.width)}"
                )
            run_stream = stream if stream is not None else (ym.stream or _torch_stream(boundaries) or 0)
            with self._lock:
                raw = self._native.rank_device(
                    ym.pointer, ym.dtype_code, ym.row_stride, ym.col_stride,
                    zm.pointer, zm.dtype_code, zm.row_stride, zm.col_stride,
                    ym.height, ym.width, native, run_stream, bool(return_labels),
                )  # fmt: skip
            del ym, zm  # the inputs (and DLPack capsules) are released only once the GPU is done
        table, grasp, labels, n_components, device_ms = raw
        self.last_device_ms = float(device_ms)
        self.last_component_count = int(n_components)
        return ranking_from_native(table, grasp, labels, tuple(_native.CANDIDATE_FIELDS))


_RANKERS: dict[int, CudaRanker] = {}
_RANKERS_LOCK = threading.Lock()


def rank_cuda(
    boundaries: Any,
    occlusions: Any,
    params: RankingParams | None = None,
    return_labels: bool = False,
    stream: int | None = None,
    device: int = 0,
) -> Ranking:
    """`edge.ranking.rank` on the GPU, with one cached workspace per device."""
    with _RANKERS_LOCK:
        ranker = _RANKERS.get(device)
        if ranker is None:
            ranker = _RANKERS[device] = CudaRanker(device)
    return ranker.rank(boundaries, occlusions, params, return_labels=return_labels, stream=stream)
