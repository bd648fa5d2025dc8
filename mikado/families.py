"""Procedural mesh templates with UV coordinates, one per product family, in millimetres.

Every family is a closed "two-sided height field": a (nu x nv) grid over the product's outline
in the template's x-y plane (x is the long axis), a top sheet at z = +h_top(x, y), a bottom sheet
at z = -h_bot(x, y), and a strip that stitches the two sheets along the grid's perimeter.
Sachets get zero thickness at their sealed seams, the box a constant one. One layout serves
every family, so the deformations, the collision pieces (slabs of grid rows and columns) and the
UV mapping (grid parameters) are written once.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class Template:
    """A family's undeformed mesh: grid-shaped vertices plus faces and UVs."""

    family: str
    grid: tuple[int, int]  # (nu, nv) of each sheet
    vertices: np.ndarray  # (2*nu*nv, 3) float64 mm; first sheet = top, second = bottom
    faces: np.ndarray  # (F, 3) int32, counter-clockwise seen from outside
    uv: np.ndarray  # (2*nu*nv, 2) float32 in [0, 1]
    pieces: tuple[int, int]  # collision compound: slabs along u and v
    rigid: bool  # a rigid product: no bending, twisting, tapering or surface noise


def thickened(template: Template, min_thickness_mm: float) -> np.ndarray:
    """Template vertices with each sheet pushed to at least min_thickness/2 from the mid-plane.

    Seams have zero thickness; a convex piece cut there is a flat sliver that other slivers
    pass through. Collision pieces are cut from this thickened copy instead.
    """
    v = template.vertices.copy()
    n = len(v) // 2
    v[:n, 2] = np.maximum(v[:n, 2], min_thickness_mm / 2)
    v[n:, 2] = np.minimum(v[n:, 2], -min_thickness_mm / 2)
    return v


def _profile(t: np.ndarray, seal: float, power: float) -> np.ndarray:
    """0 at |t| >= 1 - seal, rising to 1 at t = 0: the inflated cross-section of a sachet."""
    inner = np.clip(np.abs(t) / max(1e-9, 1.0 - seal), 0.0, 1.0)
    return np.sqrt(np.clip(1.0 - inner**power, 0.0, 1.0))


def _faces(nu: int, nv: int) -> np.ndarray:
    """Triangles of the top sheet, the bottom sheet and the perimeter strip."""
    idx = np.arange(nu * nv).reshape(nu, nv)
    a, b, c, d = idx[:-1, :-1], idx[1:, :-1], idx[1:, 1:], idx[:-1, 1:]
    top = np.concatenate([np.stack([a, b, c], -1).reshape(-1, 3), np.stack([a, c, d], -1).reshape(-1, 3)])
    off = nu * nv
    bottom = top[:, ::-1] + off
    ring = np.concatenate([idx[:, 0], idx[-1, 1:], idx[-2::-1, -1], idx[0, -2:0:-1]])
    nxt = np.roll(ring, -1)
    # The ring runs counter-clockwise in (u, v) = (x, y); the strip faces outwards.
    strip = np.concatenate(
        [np.stack([ring, ring + off, nxt], -1), np.stack([nxt, ring + off, nxt + off], -1)]
    )
    return np.concatenate([top, bottom, strip]).astype(np.int32)


def _assemble(
    family: str,
    x: np.ndarray,
    y: np.ndarray,
    h_top: np.ndarray,
    h_bot: np.ndarray,
    pieces: tuple[int, int],
    rigid: bool = False,
) -> Template:
    nu, nv = x.shape
    top = np.stack([x, y, h_top], -1).reshape(-1, 3)
    bot = np.stack([x, y, -h_bot], -1).reshape(-1, 3)
    u, v = np.meshgrid(np.linspace(0, 1, nu), np.linspace(0, 1, nv), indexing="ij")
    uv_top = np.stack([u, v], -1).reshape(-1, 2)
    uv_bot = np.stack([1.0 - u, v], -1).reshape(-1, 2)  # the back of the print, mirrored
    return Template(
        family=family,
        grid=(nu, nv),
        vertices=np.concatenate([top, bot]).astype(np.float64),
        faces=_faces(nu, nv),
        uv=np.concatenate([uv_top, uv_bot]).astype(np.float32),
        pieces=pieces,
        rigid=rigid,
    )


def _rect_grid(length: float, width: float, nu: int, nv: int) -> tuple[np.ndarray, np.ndarray]:
    s, t = np.meshgrid(np.linspace(-1, 1, nu), np.linspace(-1, 1, nv), indexing="ij")
    return s * length / 2, t * width / 2


def stick_sachet(
    length: float = 150.0, width: float = 25.0, thickness: float = 7.0, seal: float = 8.0
) -> Template:
    """A long thin sachet (sugar stick, sauce stick) with crimped seals at both ends."""
    nu, nv = 24, 7
    x, y = _rect_grid(length, width, nu, nv)
    h = (
        thickness
        / 2
        * _profile(x / (length / 2), seal / (length / 2), 6)
        * _profile(y / (width / 2), 0.08, 2)
    )
    return _assemble("stick_sachet", x, y, h, h, pieces=(3, 1))


def pillow_sachet(
    length: float = 90.0, width: float = 65.0, thickness: float = 14.0, seal: float = 6.0
) -> Template:
    """A puffed rectangular bag (crisps, sweets) sealed at both short ends."""
    nu, nv = 16, 12
    x, y = _rect_grid(length, width, nu, nv)
    h = (
        thickness
        / 2
        * _profile(x / (length / 2), seal / (length / 2), 4)
        * _profile(y / (width / 2), 0.05, 2.5)
    )
    return _assemble("pillow_sachet", x, y, h, h, pieces=(2, 2))


def square_sachet(side: float = 75.0, thickness: float = 6.0, seal: float = 5.0) -> Template:
    """A flat four-side-sealed sachet (wet wipe, condiment)."""
    nu = nv = 13
    x, y = _rect_grid(side, side, nu, nv)
    prof = _profile(x / (side / 2), seal / (side / 2), 4) * _profile(y / (side / 2), seal / (side / 2), 4)
    h = thickness / 2 * prof
    return _assemble("square_sachet", x, y, h, h, pieces=(2, 2))


def round_cookie(diameter: float = 60.0, thickness: float = 12.0) -> Template:
    """A disc with rounded rim (cookie, burger patty, round cheese)."""
    nu = nv = 13
    s, t = np.meshgrid(np.linspace(-1, 1, nu), np.linspace(-1, 1, nv), indexing="ij")
    # Square-to-disc elliptical mapping keeps a regular grid, hence plain UVs and slab pieces.
    x = s * np.sqrt(1 - t**2 / 2) * diameter / 2
    y = t * np.sqrt(1 - s**2 / 2) * diameter / 2
    rr = np.sqrt(x**2 + y**2) / (diameter / 2)
    h = thickness / 2 * (0.25 + 0.75 * np.sqrt(np.clip(1 - rr**4, 0, 1)))
    return _assemble("round_cookie", x, y, h, h, pieces=(2, 2))


def rigid_box(length: float = 90.0, width: float = 55.0, height: float = 30.0) -> Template:
    """A carton box: constant thickness, vertical sides, rigid."""
    nu, nv = 4, 3
    x, y = _rect_grid(length, width, nu, nv)
    h = np.full_like(x, height / 2)
    return _assemble("rigid_box", x, y, h, h, pieces=(1, 1), rigid=True)


def folded_pouch(diameter: float = 110.0, thickness: float = 8.0) -> Template:
    """A crêpe folded in half: a flat half-disc, thicker along the fold."""
    nu, nv = 12, 14
    r, a = np.meshgrid(np.linspace(0, 1, nu), np.linspace(0, np.pi, nv), indexing="ij")
    radius = diameter / 2
    x = r * np.cos(a) * radius
    y = r * np.sin(a) * radius - radius * 0.42  # centre the half-disc on its area's middle
    fold = np.clip(1.0 - (y + radius * 0.42) / radius, 0, 1)
    h = thickness / 2 * (0.35 + 0.65 * fold) * np.sqrt(np.clip(1 - r**6, 0, 1))
    h = np.maximum(h, 0.4)
    return _assemble("folded_pouch", x, y, h, h, pieces=(2, 2))


# name -> (builder, parameter ranges in mm sampled per scene)
FAMILIES: dict[str, tuple[Callable[..., Template], dict[str, tuple[float, float]]]] = {
    "stick_sachet": (stick_sachet, {"length": (120, 180), "width": (20, 32), "thickness": (5, 9)}),
    "pillow_sachet": (pillow_sachet, {"length": (70, 110), "width": (50, 75), "thickness": (10, 18)}),
    "square_sachet": (square_sachet, {"side": (55, 90), "thickness": (4, 8)}),
    "round_cookie": (round_cookie, {"diameter": (45, 75), "thickness": (8, 16)}),
    "rigid_box": (rigid_box, {"length": (70, 110), "width": (40, 65), "height": (20, 40)}),
    "folded_pouch": (folded_pouch, {"diameter": (90, 130), "thickness": (6, 10)}),
}


def sample_family_params(family: str, rng: np.random.Generator) -> dict[str, float]:
    """Draw a family's size parameters (mm) uniformly within its ranges."""
    if family not in FAMILIES:
        raise ValueError(f"unknown family {family!r}; expected one of {sorted(FAMILIES)}")
    return {k: float(rng.uniform(lo, hi)) for k, (lo, hi) in FAMILIES[family][1].items()}


def build_template(family: str, params: dict[str, float]) -> Template:
    if family not in FAMILIES:
        raise ValueError(f"unknown family {family!r}; expected one of {sorted(FAMILIES)}")
    return FAMILIES[family][0](**params)
