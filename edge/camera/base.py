"""The camera interface every source implements, and the frame it delivers."""

from __future__ import annotations

import time
from abc import ABC, abstractmethod
from dataclasses import dataclass, field

import numpy as np


class CameraError(RuntimeError):
    """No usable image for this cycle (timeout); the supervisor reports `no_image`."""


class CameraLost(CameraError):
    """The source is down and being reopened; the supervisor reports `camera_lost`."""


class CorruptFrame(CameraError):
    """The source delivered something that is not a decodable image."""


@dataclass
class Frame:
    """One RGB image with the time it was captured (wall clock for logs, monotonic for latency)."""

    rgb: np.ndarray  # HxWx3 uint8, RGB order
    index: int
    captured_wall: float
    captured_mono: float
    source: str
    depth_m: np.ndarray | None = None  # HxW float32 metres, when the source has depth
    extras: dict = field(default_factory=dict)


def make_frame(
    rgb: np.ndarray, index: int, source: str, depth_m: np.ndarray | None = None, depth_source: str = ""
) -> Frame:
    """Stamp an image at the moment it was obtained and check it is a real image, and its depth
    (if any) a map aligned to it, in metres. `depth_source` names the depth in the errors when
    it is not `source` (a replayed folder's depth file)."""
    check_image(rgb, source)
    if depth_m is not None:
        depth_m = checked_depth(depth_m, rgb.shape[:2], depth_source or source)
    return Frame(rgb, index, time.time(), time.monotonic(), source, depth_m)


# A bin seen by a depth camera, with room on both sides (the simulated cell's camera has seen a
# pile of boxes at a median of 42 mm): millimetres read as metres (x 1000) or metres as
# kilometres (/ 1000) fall outside it for any bin from 1 cm to 50 m away.
DEPTH_RANGE_M = (0.01, 50.0)


def depth_range_problem(depth: np.ndarray) -> str:
    """Why `depth` (metres) is not a bin's distance from the camera ("" when it can be): its
    median outside `DEPTH_RANGE_M` (no finite pixel: ""). Why: a .npy of float millimetres (850.0
    for 850 mm) was read as 850 m; `binpick bin` then blamed a rough floor and with
    --accept-failed wrote a model whose rim stood 59886 mm above the floor, and a replayed folder
    fed the model, the bin and the seal check depths a thousand times too far."""
    finite = depth[np.isfinite(depth)]
    if finite.size == 0:
        return ""
    median, (low, high) = float(np.median(finite)), DEPTH_RANGE_M
    if low <= median <= high:
        return ""
    return f"median depth {median:g} m, expected {low:g}-{high:g} m from the camera"


def checked_depth(depth: object, size: tuple[int, int], source: str) -> np.ndarray:
    """`depth` as the HxW float32 metres `Frame.depth_m` promises for an image of `size` (H, W),
    or CorruptFrame. A map of another size is not aligned to the image (an RGB-D camera whose
    alignment was not applied): every consumer (model, depth cue, bin, seal check) indexes it by
    the image's pixels, so it would be resized into wrong pixels or fail the cycle as `internal`.
    A depth in another unit than metres (`depth_range_problem`) is refused for the same reason."""
    if not isinstance(depth, np.ndarray) or depth.ndim != 2 or not np.issubdtype(depth.dtype, np.floating):
        shape, dtype = getattr(depth, "shape", None), getattr(depth, "dtype", type(depth).__name__)
        raise CorruptFrame(f"{source}: expected an HxW float depth map in metres, got {dtype} {shape}")
    if depth.shape != size:
        raise CorruptFrame(
            f"{source}: depth is {depth.shape[1]}x{depth.shape[0]} px, its image {size[1]}x{size[0]} px "
            "(expected the same size, aligned to the image)"
        )
    problem = depth_range_problem(depth[::4, ::4])  # a sixteenth of the pixels: 0.1 ms at 512 px
    if problem:
        raise CorruptFrame(
            f"{source}: {problem}: depth in another unit? (16-bit PNGs and camera units: "
            "[camera] depth_unit_mm; a .npy holds float metres)"
        )
    return depth.astype(np.float32, copy=False)


def check_image(rgb: object, source: str) -> None:
    if not isinstance(rgb, np.ndarray) or rgb.dtype != np.uint8 or rgb.ndim != 3 or rgb.shape[2] != 3:
        shape = getattr(rgb, "shape", None)
        raise CorruptFrame(f"{source}: expected an HxWx3 uint8 image, got {type(rgb).__name__} {shape}")
    if rgb.shape[0] < 8 or rgb.shape[1] < 8:
        raise CorruptFrame(f"{source}: image of {rgb.shape[1]}x{rgb.shape[0]} px is too small")


class CameraSource(ABC):
    """A source of frames. `grab` returns a frame captured after the call started."""

    name: str = "camera"

    @abstractmethod
    def open(self) -> None:
        """Start the source (may raise CameraError with a message saying what to fix)."""

    @abstractmethod
    def grab(self, timeout: float) -> Frame:
        """A fresh frame, or CameraError / CameraLost / CorruptFrame."""

    def close(self) -> None:  # noqa: B027 - most sources hold nothing to release
        """Release the device; safe to call twice."""

    #: Opening this source takes a device (a camera, a stream) that a running appliance may hold:
    #: `binpick run --check-config` does not open it. Sources of files or of a simulation say False.
    holds_device: bool = True

    def require_depth(self) -> None:  # noqa: B027 - most sources deliver depth or not by configuration
        """Called at start when the model takes depth: raise CameraError where this source can be
        seen not to deliver any (a replay folder without depth files), so the appliance stops with
        that reason instead of failing every cycle."""

    def lingering_threads(self) -> int:
        """Driver threads still stuck in a read after `close` (the process should then exit hard)."""
        return 0

    def status(self) -> dict:
        """State for the status page: at least `state` ("streaming", "reopening", "down", "ready")."""
        return {"state": "ready", "source": self.name}

    def __enter__(self) -> CameraSource:
        self.open()
        return self

    def __exit__(self, *exc) -> None:
        self.close()
