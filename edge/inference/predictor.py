"""Frame in, probability maps out: the model's own metadata decides size and normalisation.

The ONNX metadata (contracts.md §2, read by `binpick_core.model_file`) gives the input size, channels and
preprocessing. A static model gets the camera image resized to its export size; a dynamic one
gets the image at camera size times `inference.input_scale` (1 by default), edge-padded to a
multiple of 16 and the maps cropped back: the scale lets products span as many pixels as they did
in the training scenes when the camera sees them larger (a close camera over a small bin) and
costs less. The scale back to camera pixels is reported so the grasp lands on the image the
calibration was made for.

Where the backend keeps its maps on the GPU and the CUDA ranking is built, the maps stay there
and `Predictor.rank` ranks them in place (`gpu_ranker` decides, once); only the ranking comes
back. Everywhere else the maps come to the host and the CPU hot path ranks them.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import cv2
import numpy as np

from binpick_core.model_file import (
    ModelFileError,
    frame_reference_m,
    preprocess,
    preprocess_padded,
    read_model_info,
)
from edge.config import InferenceSection
from edge.inference.base import InferenceBackend, InferenceError
from edge.inference.factory import load_backend
from edge.ranking import Ranking, RankingParams, rank

if TYPE_CHECKING:
    import torch

    from edge.ranking.cuda import CudaRanker

log = logging.getLogger(__name__)
# inference.tta_views -> the extra views' flipped axes (0 = rows, 1 = columns of frame and maps)
VIEW_FLIPS = {1: (), 2: ((1,),), 4: ((1,), (0,), (0, 1))}


@dataclass
class Maps:
    boundaries: np.ndarray  # HxW float32 in [0, 1], at model resolution
    occlusions: np.ndarray
    scale_x: float  # camera px per model px
    scale_y: float
    model_rgb: np.ndarray  # the image as the model saw it (for overlays)
    preprocess_ms: float = 0.0  # resize + normalisation, inside the inference stage's time


class DeviceMaps(Maps):
    """Maps left on the GPU (`device`: two float32 HxW CUDA tensors, this cycle's own copies).

    `boundaries` and `occlusions` are copied to the host only when something reads them (the
    overlay, a snapshot), so a cycle that only ranks never moves the maps off the GPU.
    """

    def __init__(
        self,
        device: tuple[Any, Any],
        scale_x: float,
        scale_y: float,
        model_rgb: np.ndarray,
        preprocess_ms: float,
    ) -> None:
        self.device = device
        self.scale_x, self.scale_y = scale_x, scale_y
        self.model_rgb = model_rgb
        self.preprocess_ms = preprocess_ms
        self._host: tuple[np.ndarray, np.ndarray] | None = None

    def _host_maps(self) -> tuple[np.ndarray, np.ndarray]:
        if self._host is None:
            self._host = (self.device[0].cpu().numpy(), self.device[1].cpu().numpy())
        return self._host

    @property
    def boundaries(self) -> np.ndarray:  # type: ignore[override]
        return self._host_maps()[0]

    @property
    def occlusions(self) -> np.ndarray:  # type: ignore[override]
        return self._host_maps()[1]


def gpu_ranker(backend: InferenceBackend) -> CudaRanker | None:
    """The CUDA ranker when the maps can stay on the GPU, else None (the CPU path, unchanged).

    The one place that decides: the backend must produce CUDA maps and `edge._hotpath_cuda`
    must be built and see a device.
    """
    if not backend.keeps_maps_on_gpu:
        return None
    from edge.ranking.cuda import CudaRanker, cuda_available

    ok, why = cuda_available()
    if not ok:
        log.warning("%s: ranking on the CPU, the CUDA ranking is unavailable (%s)", backend.name, why)
        return None
    return CudaRanker()


def _flipped(image: np.ndarray | None, axes: tuple[int, ...]) -> np.ndarray | None:
    return image if image is None or not axes else np.ascontiguousarray(np.flip(image, axes))


class Predictor:
    def __init__(self, cfg: InferenceSection, camera_size: tuple[int, int]):
        try:
            self.info = read_model_info(cfg.model)
        except ModelFileError as exc:
            raise InferenceError(str(exc)) from exc
        width, height = camera_size
        multiple = self.info.size_multiple
        self.input_scale = float(cfg.input_scale)
        if self.input_scale != 1.0 and not self.info.dynamic:
            raise InferenceError(
                f"inference.input_scale = {self.input_scale:g}: only for dynamic-size models; "
                f"{cfg.model} is exported at {self.info.input_width}x{self.info.input_height} "
                "(every frame is resized to that)"
            )
        width, height = self._scaled(width, height)
        self.input_height = self.info.input_height or _ceil(height, multiple)
        self.input_width = self.info.input_width or _ceil(width, multiple)
        self.channels = self.info.channels
        self.model_id = self.info.model_id
        self.backend: InferenceBackend = load_backend(
            cfg, (1, self.channels, self.input_height, self.input_width)
        )
        self.ranker = gpu_ranker(self.backend)
        self.view_flips: tuple[tuple[int, ...], ...] = VIEW_FLIPS[cfg.tta_views]

    def predict(self, rgb: np.ndarray, depth_m: np.ndarray | None = None) -> Maps:
        started = time.perf_counter()
        height, width = rgb.shape[:2]
        static = (self.input_width, self.input_height)
        size = self._scaled(width, height) if self.info.dynamic else static
        if (width, height) != size:
            rgb = cv2.resize(rgb, size, interpolation=cv2.INTER_AREA)
            if depth_m is not None:
                depth_m = cv2.resize(depth_m, size, interpolation=cv2.INTER_NEAREST)
        h, w = rgb.shape[:2]  # the frame the model sees; outputs are cropped back to it
        prepare = preprocess_padded if self.info.dynamic else preprocess
        depth = depth_m if self.info.uses_depth else None
        reference = frame_reference_m(self.info, depth)  # a flip leaves it as it is: once per frame
        views = []
        for axes in ((),) + self.view_flips:  # each view is a flipped frame, padded on its own
            try:
                flipped = (_flipped(rgb, axes), _flipped(depth, axes))
                views.append((axes, prepare(self.info, *flipped, reference)))
            except ValueError as exc:  # e.g. a depth model fed by an RGB-only camera
                raise InferenceError(f"preprocessing failed: {exc}") from exc
        preprocess_ms = (time.perf_counter() - started) * 1000.0
        if self.ranker is not None:
            y, z = self._infer_views_device(views, h, w)
            return DeviceMaps((y, z), width / w, height / h, rgb, preprocess_ms)
        boundaries, occlusions = self._infer_views(views, h, w)
        return Maps(boundaries, occlusions, width / w, height / h, rgb, preprocess_ms)

    def _infer_views(
        self, views: list[tuple[tuple[int, ...], np.ndarray]], h: int, w: int
    ) -> tuple[np.ndarray, np.ndarray]:
        """The frame's maps, averaged over its `inference.tta_views` views: each view's maps are
        cropped to the frame and flipped back first."""
        (_, tensor), *others = views
        boundaries, occlusions = self.backend.infer(tensor)
        boundaries, occlusions = boundaries[:h, :w], occlusions[:h, :w]
        if not others:
            return boundaries, occlusions
        boundaries, occlusions = boundaries.astype(np.float32), occlusions.astype(np.float32)
        for axes, tensor in others:
            b, o = self.backend.infer(tensor)
            boundaries += np.flip(b[:h, :w], axes)
            occlusions += np.flip(o[:h, :w], axes)
        return boundaries / np.float32(len(views)), occlusions / np.float32(len(views))

    def _infer_views_device(
        self, views: list[tuple[tuple[int, ...], np.ndarray]], h: int, w: int
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """`_infer_views` for a backend whose maps stay on the GPU (torch tensors). Each view's
        maps are copied at once: the backend's static outputs are overwritten by the next call."""
        import torch

        (_, tensor), *others = views
        y, z = self.backend.infer_device(tensor)  # type: ignore[attr-defined]
        y, z = y[:h, :w].clone(), z[:h, :w].clone()
        for axes, tensor in others:
            b, o = self.backend.infer_device(tensor)  # type: ignore[attr-defined]
            y += torch.flip(b[:h, :w], axes)
            z += torch.flip(o[:h, :w], axes)
        if others:
            y, z = y / len(views), z / len(views)
        return y, z

    def _scaled(self, width: int, height: int) -> tuple[int, int]:
        """The frame size a dynamic model sees: the camera's times `inference.input_scale`."""
        s = self.input_scale
        return max(16, round(width * s)), max(16, round(height * s))

    def rank(self, maps: Maps, params: RankingParams) -> Ranking:
        """Rank this predictor's maps where they are: on the GPU, or by the CPU hot path."""
        if isinstance(maps, DeviceMaps) and self.ranker is not None:
            return self.ranker.rank(maps.device[0], maps.device[1], params, return_labels=True)
        return rank(maps.boundaries, maps.occlusions, params, return_labels=True)

    def describe(self) -> dict:
        return {
            **self.backend.describe(),
            "ranking": "cuda" if self.ranker is not None else "cpu",
            "model": str(self.info.path),
            "variant": f"{self.info.variant} x{self.info.width:g} ({self.info.input_kind})",
            "input": [self.channels, self.info.input_height or "dynamic", self.info.input_width or "dynamic"],
            "model_id": self.model_id,
            "tta_views": len(self.view_flips) + 1,
        }


def _ceil(n: int, multiple: int) -> int:
    return (n + multiple - 1) // multiple * multiple
