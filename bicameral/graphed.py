"""A network captured in one CUDA graph: fp16 (or bf16), channels-last, static input and maps.

Used by the appliance's `torch-cuda` backend (edge.inference.torch_backend) and by
benchmarks/gpu.py, so the latency the benchmark reports is the backend's own. Replaying one
graph per frame removes the per-layer launch cost and every allocation; the probability maps
live in static float32 tensors that `edge.postprocess_cuda` ranks in place.

Two input forms:
  - `mean`/`std` given: an 8-bit HxWxC image, normalised inside the graph (the benchmark's
    host image -> grasp path);
  - otherwise: the [1, C, H, W] float32 tensor the appliance's preprocessing already made from
    the model file's metadata (edge.model_file.preprocess), so both paths normalise alike.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import torch
from torch import nn


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
    ) -> None:
        channels, height, width = input_shape
        model = model.eval().to(device=device, dtype=dtype).to(memory_format=torch.channels_last)
        if hasattr(model, "set_export_mode"):
            model.set_export_mode(True)  # capture-safe unpooling (elementwise mask form)
        self.model = model
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
        y_logits, z_logits = self.model(x.contiguous(memory_format=torch.channels_last))
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
