"""A network captured in one CUDA graph: fp16 (or bf16), channels-last, static input and maps.

Used by the appliance's `torch-cuda` backend (edge.inference.torch_backend) and by
benchmarks/gpu.py, so the latency the benchmark reports is the backend's own. Replaying one
graph per frame removes the per-layer launch cost and every allocation; the probability maps
live in static float32 tensors that `edge.ranking.cuda` ranks in place.

Two input forms:
  - `mean`/`std` given: an 8-bit HxWxC image, normalised inside the graph (the benchmark's
    host image -> grasp path);
  - otherwise: the [1, C, H, W] float32 tensor the appliance's preprocessing already made from
    the model file's metadata (binpick_core.model_file.preprocess), so both paths normalise alike.

Two unpooling forms (`unpool`), because which one is faster inside a graph is measured, not known:
  - "mask" (default, what the appliance runs): the export path's exact mask unpooling
    (bicameral.unpool), elementwise work that the ONNX/TensorRT deployments run too;
  - "indices": the encoder keeps max-pooling's indices and the decoders call `max_unpool2d`,
    fewer kernels per stage, but PyTorch's CUDA kernel takes NCHW-contiguous inputs, so the
    channels-last tensors are converted around it. benchmarks/gpu.py times both and compares
    their maps.
`compile=True` runs the network through `torch.compile` (Inductor's fused Triton kernels) and
captures the compiled code in the same single graph.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import torch
from torch import nn

UNPOOL_FORMS: tuple[str, ...] = ("mask", "indices")


class GraphedNetwork:
    """input on the GPU -> dtype channels-last -> network -> sigmoid -> float32 HxW maps, one graph."""

    def __init__(
        self,
        model: nn.Module,
        input_shape: tuple[int, int, int],
        dtype: torch.dtype = torch.float16,
        mean: Sequence[float] | None = None,
        std: Sequence[float] | None = None,
        device: str | torch.device = "cuda",
        unpool: str = "mask",
        compile: bool = False,
    ) -> None:
        """`unpool`: "mask" or "indices" (module docstring). `compile`: torch.compile the network in
        its default mode, not "reduce-overhead"/"max-autotune": those capture CUDA graphs of their
        own (cudagraph trees), which cannot be nested inside the graph captured here. The first
        warm-up call compiles, so the capture records the compiled kernels and never compiles
        (a compilation during capture fails: Dynamo reads the CUDA RNG state, which a capture
        forbids)."""
        if unpool not in UNPOOL_FORMS:
            raise ValueError(f"GraphedNetwork: unpool must be one of {list(UNPOOL_FORMS)}, got {unpool!r}")
        channels, height, width = input_shape
        model = model.eval().to(device=device, dtype=dtype).to(memory_format=torch.channels_last)
        if hasattr(model, "set_export_mode"):
            model.set_export_mode(unpool == "mask")
        self.model = model  # the plain module (hooks, FLOP counting), also when compiled
        self.unpool = unpool
        self.compiled = compile
        # dynamic=False: the graph has one input size for its lifetime; compile for exactly that.
        self._network = torch.compile(model, dynamic=False) if compile else model
        self.dtype = dtype
        self.normalise = mean is not None
        if self.normalise:
            if std is None:
                raise ValueError("mean given without std")
            shape: tuple[int, ...] = (height, width, channels)
            self.input = torch.zeros(shape, dtype=torch.uint8, device=device)
            m = torch.tensor(mean, device=device, dtype=dtype).view(1, channels, 1, 1)
            s = torch.tensor(std, device=device, dtype=dtype).view(1, channels, 1, 1)
            self._scale = (1.0 / (255.0 * s)).contiguous()
            self._shift = (-m / s).contiguous()
        else:
            shape = (1, channels, height, width)
            self.input = torch.zeros(shape, dtype=torch.float32, device=device)
        self.pinned = torch.zeros(shape, dtype=self.input.dtype).pin_memory()
        self.boundaries = torch.zeros(height, width, device=device)
        self.occlusions = torch.zeros(height, width, device=device)
        # Warm up on a side stream (cuDNN picks its algorithms there), then capture.
        stream = torch.cuda.Stream(device)
        stream.wait_stream(torch.cuda.current_stream(device))
        with torch.inference_mode():
            with torch.cuda.stream(stream):
                for _ in range(3):
                    self._forward()
            torch.cuda.current_stream(device).wait_stream(stream)
            self.graph = torch.cuda.CUDAGraph()
            with torch.cuda.graph(self.graph):
                self._forward()
        torch.cuda.synchronize(device)

    @property
    def image(self) -> torch.Tensor:
        """The static input (the benchmark's name for it)."""
        return self.input

    def _forward(self) -> None:
        if self.normalise:
            x = self.input.permute(2, 0, 1).unsqueeze(0).to(self.dtype)
            x = x * self._scale + self._shift
        else:
            x = self.input.to(self.dtype)
        y_logits, z_logits = self._network(x.contiguous(memory_format=torch.channels_last))
        self.boundaries.copy_(torch.sigmoid(y_logits[0, 0].float()))
        self.occlusions.copy_(torch.sigmoid(z_logits[0, 0].float()))

    def upload(self, array: np.ndarray) -> None:
        """Copy a host input (shape and dtype of `input`) through pinned memory, asynchronously."""
        if tuple(array.shape) != tuple(self.input.shape):
            raise ValueError(f"graph captured for input {tuple(self.input.shape)}, got {tuple(array.shape)}")
        self.pinned.numpy()[...] = array
        self.input.copy_(self.pinned, non_blocking=True)

    def replay(self) -> None:
        """Run the captured chain on the current stream; the maps are ready when it completes."""
        self.graph.replay()
