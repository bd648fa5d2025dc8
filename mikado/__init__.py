"""Mikado: fast synthetic piles of deformable instances with exact boundary/occlusion ground truth.

`render_pile(seed, preset, width, height, **overrides)` returns one pile in memory; the
`binpick mikado generate|stats|preview` commands write, summarise and show datasets.
"""

# The OpenGL backend must be chosen before mujoco is first imported, and every submodule
# import runs this file first.
from mikado.gl import select_backend

select_backend()

from mikado.pile import Camera, Instance, Scene, render_pile  # noqa: E402

__all__ = ["Camera", "Instance", "Scene", "render_pile", "select_backend"]
