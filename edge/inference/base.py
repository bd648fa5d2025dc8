"""The inference interface: one NCHW float32 tensor in, boundary and occlusion maps out."""

from __future__ import annotations

from abc import ABC, abstractmethod

import numpy as np


class InferenceError(RuntimeError):
    """The model could not be loaded or run; the supervisor reports `model_error`."""


class InferenceBackend(ABC):
    """A loaded model on one runtime. `infer` is called from one thread at a time."""

    name: str = "backend"
    # True: the backend also offers `infer_device(tensor)`, the maps as CUDA tensors, so the
    # ranking can run on the GPU (edge.inference.predictor.gpu_ranker decides whether it does).
    keeps_maps_on_gpu: bool = False

    @abstractmethod
    def infer(self, tensor: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """(boundaries, occlusions) probabilities, each HxW float32, for a [1, C, H, W] input."""

    def describe(self) -> dict:
        """What the status page shows about the runtime (providers, device, engine file...)."""
        return {"backend": self.name}

    def close(self) -> None:  # noqa: B027 - only some runtimes hold device memory
        """Free the runtime's resources."""


def split_outputs(outputs: dict[str, np.ndarray]) -> tuple[np.ndarray, np.ndarray]:
    """Pick `boundaries` and `occlusions` (contracts.md §2) from named outputs as HxW float32."""
    try:
        y, z = outputs["boundaries"], outputs["occlusions"]
    except KeyError as exc:
        raise InferenceError(
            f"model has outputs {sorted(outputs)}, expected 'boundaries' and 'occlusions'"
        ) from exc
    return np.asarray(y, np.float32).reshape(y.shape[-2:]), np.asarray(z, np.float32).reshape(z.shape[-2:])
