"""PyTorch: eager for development (`torch`), and a CUDA-graph backend for GPU servers (`torch-cuda`).

Both run a training checkpoint without exporting it first.

torch is imported only when this backend is chosen (the appliance itself never needs it).
"""

from __future__ import annotations

import logging
import os
import threading
from types import ModuleType
from typing import TYPE_CHECKING

import numpy as np

from edge.inference.base import InferenceBackend, InferenceError
from edge.machine import physical_cores

if TYPE_CHECKING:
    from torch import Tensor, nn

log = logging.getLogger(__name__)


#: The checkpoint the configuration check read last, for the backend the start builds moments
#: later (`_take_checked`): the check reads the whole file (torch.load, weights included, 8.6 MB
#: for the shipped F25, far more for a bigger network) and the start read it a second time. One
#: slot, keyed by the file's identity: a file replaced or rewritten in between is read again.
_checked: tuple[tuple, dict] | None = None
_checked_lock = threading.Lock()


def _identity(checkpoint: str) -> tuple | None:
    try:
        st = os.stat(checkpoint)
    except OSError:
        return None
    return os.path.realpath(checkpoint), st.st_dev, st.st_ino, st.st_size, st.st_mtime_ns


def checkpoint_channels(checkpoint: str) -> int:
    """The input channels (3 RGB, 4 RGB-D, 1 depth) a training checkpoint's network takes, read
    from its recorded config without building the network. The frames are preprocessed as
    `inference.model` says, so edge/config.py compares the two at load: a mismatch used to fail
    every cycle inside the network. ImportError where torch (the `train` extra) is absent;
    InferenceError for a checkpoint that cannot be read. What was read is kept for the backend
    (`_take_checked`)."""
    global _checked
    from bicameral.checkpoint import CheckpointError, NetworkConfig, read_checkpoint

    identity = _identity(checkpoint)  # before the read: a file rewritten meanwhile is not taken
    try:
        data = read_checkpoint(checkpoint)
    except CheckpointError as exc:
        raise InferenceError(str(exc)) from exc
    with _checked_lock:
        _checked = (identity, data) if identity is not None else None
    return NetworkConfig.from_dict(data["config"]).in_channels  # validated by read_checkpoint


def _take_checked(checkpoint: str) -> dict | None:
    """The checkpoint dict the configuration check read, if the file is still the one it read
    (the slot is emptied: the weights are not kept twice); None otherwise (read it)."""
    global _checked
    with _checked_lock:
        checked, _checked = _checked, None
    if checked is None or checked[0] != _identity(checkpoint):
        return None
    return checked[1]


def _network(checkpoint: str, device: str) -> nn.Module:
    """The checkpoint's network on `device`: from the configuration check's read when it is still
    the file's content, else read now (CheckpointError)."""
    from bicameral.checkpoint import load_checkpoint, network_from_checkpoint

    data = _take_checked(checkpoint)
    if data is not None:
        log.debug("%s: the network from the configuration check's read", checkpoint)
        return network_from_checkpoint(data, checkpoint, device)
    return load_checkpoint(checkpoint, device=device)[0]


class TorchBackend(InferenceBackend):
    name = "torch"

    def __init__(self, checkpoint: str, device: str = "cpu", threads: int = 0):
        try:
            import torch

            from bicameral.checkpoint import CheckpointError
        except ImportError as exc:
            raise InferenceError(f"inference.backend = 'torch' needs `pip install .[train]` ({exc})") from exc
        self.torch = torch
        if device == "auto":
            device = "cuda" if torch.cuda.is_available() else "cpu"
        if device == "cuda" and not torch.cuda.is_available():
            raise InferenceError("inference.device = 'cuda' but PyTorch sees no CUDA GPU")
        torch.set_num_threads(threads or physical_cores())
        try:
            self.model = _network(checkpoint, device)
        except CheckpointError as exc:
            raise InferenceError(str(exc)) from exc
        self.denormals_flushed = flush_module_denormals(torch, self.model, checkpoint)
        # Then flush-to-zero / denormals-are-zero for torch's CPU threads on x86 (False where the
        # CPU has no such mode): denormal activations cost like denormal weights (edge.denormals).
        # Set after the count, as loading under FTZ would silently zero the weights uncounted.
        # The mode is a per-thread CPU register: set here (to report whether the CPU has it) and
        # again in each thread that infers (the appliance's cycle thread is not this one).
        self.flush_denormal = torch.set_flush_denormal(True)
        self._ftz_threads = threading.local()
        self.device = device

    def infer(self, tensor: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        torch = self.torch
        if not getattr(self._ftz_threads, "set", False):
            torch.set_flush_denormal(True)
            self._ftz_threads.set = True
        with torch.inference_mode():
            boundary, occlusion = self.model(torch.from_numpy(tensor).to(self.device))
            y = torch.sigmoid(boundary)[0, 0].float().cpu().numpy()
            z = torch.sigmoid(occlusion)[0, 0].float().cpu().numpy()
        return y, z

    def describe(self) -> dict:
        return {
            "backend": self.name,
            "device": self.device,
            "threads": self.torch.get_num_threads(),
            "flush_denormal": self.flush_denormal,
            "denormals_flushed_at_load": self.denormals_flushed,
        }


def flush_module_denormals(torch: ModuleType, model: nn.Module, where: str) -> int:
    """Set a model's subnormal float32 parameters and buffers to 0 in place; warns with the count."""
    tiny = torch.finfo(torch.float32).tiny
    flushed = total = 0
    with torch.no_grad():
        for tensor in [*model.parameters(), *model.buffers()]:
            if tensor.dtype != torch.float32:
                continue
            mask = (tensor != 0) & (tensor.abs() < tiny)
            total += tensor.numel()
            count = int(mask.sum())
            if count:
                tensor.masked_fill_(mask, 0.0)
                flushed += count
    if flushed:
        log.warning(
            "%s: %d of %d float32 weights are denormal; flushed to zero in memory", where, flushed, total
        )
    return flushed


class TorchCudaBackend(InferenceBackend):
    """PyTorch on an x86 GPU server: fp16 (`inference.fp16`, else fp32), channels-last, one CUDA graph,
    optionally compiled first (`inference.torch_compile`).

    The graph is captured once for the configured input size (bicameral.graphed, the same code
    benchmarks/gpu.py times), so a frame costs one host->GPU copy and one graph replay.
    `infer_device` leaves the maps on the GPU for `edge.ranking.cuda`; `infer` copies them
    back for the CPU ranking. Refused, in one line naming the key, where CUDA is not available.
    """

    name = "torch-cuda"
    keeps_maps_on_gpu = True

    def __init__(
        self,
        checkpoint: str,
        input_shape: tuple[int, int, int, int],
        fp16: bool = True,
        compile: bool = False,
    ):
        try:
            import torch

            from bicameral.checkpoint import CheckpointError
            from bicameral.graphed import GraphedNetwork
        except ImportError as exc:
            raise InferenceError(
                f"inference.backend = 'torch-cuda' needs PyTorch with CUDA (`pip install .[train]`) ({exc})"
            ) from exc
        if not torch.cuda.is_available():
            raise InferenceError(
                "inference.backend = 'torch-cuda' but PyTorch sees no CUDA GPU "
                "(torch.cuda.is_available() is False); use backend 'onnxruntime' or 'torch'"
            )
        self.torch = torch
        try:
            model = _network(checkpoint, "cuda")
        except CheckpointError as exc:
            raise InferenceError(str(exc)) from exc
        torch.backends.cudnn.benchmark = True  # one input size for the process's lifetime
        self.input_shape = tuple(input_shape)
        self.precision = "fp16" if fp16 else "fp32"
        try:
            self.net = GraphedNetwork(
                model,
                self.input_shape[1:],
                torch.float16 if fp16 else torch.float32,
                device="cuda",
                compile=compile,
            )
        except Exception as exc:  # capture, out-of-memory or (torch.compile) compiler errors
            what = "compiling and capturing" if compile else "capturing"
            # Compiler errors run to pages: the log keeps all of it, the one-line refusal its first line.
            log.error("torch-cuda: %s the CUDA graph failed:\n%s", what, exc)
            first = next((line for line in str(exc).splitlines() if line.strip()), type(exc).__name__)
            raise InferenceError(f"torch-cuda: {what} the CUDA graph failed: {first.strip()}") from exc
        self.compiled = compile

    def infer_device(self, tensor: np.ndarray) -> tuple[Tensor, Tensor]:
        """(boundaries, occlusions) as float32 HxW torch CUDA tensors, valid until the next call."""
        if tuple(tensor.shape) != self.input_shape:
            raise InferenceError(
                f"torch-cuda graph captured for {self.input_shape}, got {tuple(tensor.shape)}"
            )
        try:
            self.net.upload(np.ascontiguousarray(tensor, np.float32))
            self.net.replay()
        except RuntimeError as exc:
            raise InferenceError(f"torch-cuda inference failed: {exc}") from exc
        return self.net.boundaries, self.net.occlusions

    def infer(self, tensor: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        y, z = self.infer_device(tensor)
        return y.cpu().numpy(), z.cpu().numpy()

    def describe(self) -> dict:
        return {
            "backend": self.name,
            "device": self.torch.cuda.get_device_name(0),
            "precision": self.precision,
            "cuda_graph": list(self.input_shape),
            "torch_compile": self.compiled,
        }

    def close(self) -> None:
        self.net = None
        self.torch.cuda.empty_cache()
