"""PyTorch eager, for development: runs a training checkpoint without exporting it first.

torch is imported only when this backend is chosen (the appliance itself never needs it).
"""

from __future__ import annotations

import numpy as np

from edge.inference.base import InferenceBackend, InferenceError, physical_cores


class TorchBackend(InferenceBackend):
    name = "torch"

    def __init__(self, checkpoint: str, device: str = "cpu", threads: int = 0):
        try:
            import torch

            from bicameral.checkpoint import CheckpointError, load_checkpoint
        except ImportError as exc:
            raise InferenceError(f"inference.backend = 'torch' needs `pip install .[train]` ({exc})") from exc
        self.torch = torch
        if device == "auto":
            device = "cuda" if torch.cuda.is_available() else "cpu"
        if device == "cuda" and not torch.cuda.is_available():
            raise InferenceError("inference.device = 'cuda' but PyTorch sees no CUDA GPU")
        torch.set_num_threads(threads or physical_cores())
        try:
            self.model, _ = load_checkpoint(checkpoint, device=device)
        except CheckpointError as exc:
            raise InferenceError(str(exc)) from exc
        self.device = device

    def infer(self, tensor: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        torch = self.torch
        with torch.inference_mode():
            boundary, occlusion = self.model(torch.from_numpy(tensor).to(self.device))
            y = torch.sigmoid(boundary)[0, 0].float().cpu().numpy()
            z = torch.sigmoid(occlusion)[0, 0].float().cpu().numpy()
        return y, z

    def describe(self) -> dict:
        return {"backend": self.name, "device": self.device, "threads": self.torch.get_num_threads()}
