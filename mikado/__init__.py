"""Mikado: fast synthetic piles of deformable instances with exact boundary/occlusion ground truth.

`render_pile(seed, preset, width, height, **overrides)` returns one pile in memory; the
`binpick mikado generate|stats|preview` commands write, summarise and show datasets.
"""

from mikado.pile import Camera, Instance, Scene, render_pile

__all__ = ["Camera", "Instance", "Scene", "render_pile"]
