"""A simulated bin: every grab renders a new Mikado pile, so the whole loop runs without hardware.

A plug-in point of the appliance (docs/contracts.md section 0): the one camera module allowed to
import the factory (`mikado`, the `sim` extra), and only when the camera is opened, so that
`pip install .` without the extra still runs every other source and refuses this one in one line.

Depth (`camera.simulated_depth`): "stereo" (default) is what a real cell's depth camera gives,
Mikado's exact depth degraded by `mikado.depth_noise` (noise growing with z², shadow holes,
dropouts; seeded by the pile's seed); "exact" is the renderer's own; "none" sends RGB only.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from edge.camera.base import CameraError, CameraSource, Frame, make_frame
from edge.camera.packages import install_hint

if TYPE_CHECKING:
    import numpy as np

    from mikado import Scene


def preset_names() -> tuple[str, ...] | None:
    """The Mikado presets `camera.preset` may name, from Mikado's own registry (`mikado.presets`,
    which needs numpy only, not MuJoCo), so that edge/config.py refuses a typo at load instead of
    every grab failing on it; None where Mikado is not installed (then opening the camera names
    the extra to install)."""
    try:
        from mikado.presets import PRESETS
    except ImportError:
        return None
    return tuple(PRESETS)


class SimulatedBin(CameraSource):
    holds_device = False

    def __init__(self, preset: str, width: int, height: int, seed: int = 0, depth: str = "stereo"):
        if depth not in ("stereo", "exact", "none"):
            raise ValueError(f"simulated depth {depth!r}: expected stereo, exact or none")
        self.depth = depth
        self.preset = preset
        self.width = width
        self.height = height
        self.seed = seed
        self.name = f"simulated:{preset}"
        self._render = None
        self._index = 0

    def open(self) -> None:
        try:
            from mikado import render_pile
        except ImportError as exc:
            raise CameraError(f"camera.source = 'simulated': {install_hint('simulated')} ({exc})") from exc
        self._render = render_pile

    def grab(self, timeout: float) -> Frame:
        if self._render is None:
            raise CameraError("simulated bin used before open()")
        seed = self.seed + self._index
        scene = self._render(seed, self.preset, width=self.width, height=self.height)
        self._index += 1
        frame = make_frame(scene.rgb, self._index, self.name, depth_m=self._depth(scene, seed))
        frame.extras["seed"] = seed
        frame.extras["scene"] = scene
        return frame

    def _depth(self, scene: Scene, seed: int) -> np.ndarray | None:
        depth = getattr(scene, "depth_m", None)
        if depth is None or self.depth == "none":
            return None
        if self.depth == "exact":
            return depth
        import numpy as np

        from mikado.depth_noise import DepthNoise, degrade_depth

        rng = np.random.default_rng([0x57E0, seed])  # the sensor's own draws, per pile
        return degrade_depth(depth, float(scene.camera.k[0][0]), DepthNoise(), rng)

    def status(self) -> dict:
        return {"source": self.name, "state": "ready" if self._render else "down", "frames": self._index}
