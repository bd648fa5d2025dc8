"""Mikado: fast synthetic piles of deformable instances with exact boundary/occlusion ground truth.

`render_pile(seed, preset, width, height, **overrides)` returns one pile in memory; the
`binpick mikado generate|stats|preview|coco` commands write, summarise and show datasets.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

# The OpenGL backend must be chosen before mujoco is first imported, and every submodule
# import runs this file first.
from mikado.gl import select_backend

select_backend()

if TYPE_CHECKING:
    from collections.abc import Callable

    from mikado.pile import Camera, Instance, Scene, render_pile

__all__ = ["Camera", "Instance", "Scene", "render_pile", "select_backend"]


def __getattr__(name: str) -> type[Camera | Instance | Scene] | Callable[..., Scene]:
    """Import the simulation lazily: `binpick mikado --help` and `stats` need no mujoco."""
    if name in ("Camera", "Instance", "Scene", "render_pile"):
        from mikado import pile

        return getattr(pile, name)
    raise AttributeError(f"module 'mikado' has no attribute {name!r}")
