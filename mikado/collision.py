"""Collision compound that follows a deformed instance: convex pieces cut from its own vertices.

MuJoCo collides meshes through their convex hulls, so one hull per instance would fill the
inside of a bend and make bent sachets float on each other. We cut the deformed grid into
slabs (`Template.pieces` along u and v, neighbouring slabs sharing one grid line so the
compound has no gaps) and hand each slab's vertices to MuJoCo as its own convex mesh. A slab
is short enough that its hull hugs the bent surface to within a fraction of a millimetre for
the bends we sample (checked by the settled-pile test).
"""

from __future__ import annotations

import numpy as np


def _cuts(n: int, k: int) -> list[tuple[int, int]]:
    """k index ranges over n grid lines that share their end lines."""
    edges = np.linspace(0, n - 1, k + 1).round().astype(int)
    return [(int(edges[i]), int(edges[i + 1]) + 1) for i in range(k)]


def collision_pieces(
    vertices: np.ndarray, grid: tuple[int, int], pieces: tuple[int, int], stride: int = 2
) -> list[np.ndarray]:
    """Vertex clouds (one per convex piece) from a two-sheet grid mesh's (2*nu*nv, 3) vertices.

    `stride` subsamples grid lines inside a slab (the ends are always kept): hulls with fewer
    vertices collide faster and the shape loss is negligible on a smooth surface.
    """
    nu, nv = grid
    sheets = np.asarray(vertices).reshape(2, nu, nv, 3)
    out = []
    for u0, u1 in _cuts(nu, pieces[0]):
        us = sorted(set(range(u0, u1, stride)) | {u1 - 1})
        for v0, v1 in _cuts(nv, pieces[1]):
            vs = sorted(set(range(v0, v1, stride)) | {v1 - 1})
            out.append(sheets[:, us][:, :, vs].reshape(-1, 3).copy())
    return out
