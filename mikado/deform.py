"""Static augmentation of one instance (thesis 5.1.2): scaling, tapering, bending, twisting and
local surface noise, applied to a template's vertices in millimetres.

Applied in the template frame (x = long axis), in a fixed order: scale, taper, twist, bend,
noise. The collision pieces are cut from the deformed vertices, so physics follows the shape.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

import numpy as np


@dataclass(frozen=True)
class Deformation:
    scale: float  # isotropic
    anisotropy: tuple[float, float, float]  # per-axis factors on top of `scale`
    taper: float  # relative width change per half length (y, z scale 1 + taper * x / half)
    twist_deg: float  # rotation about x from one end to the other
    bend_deg: float  # arc angle of the long axis, bending about y
    noise_mm: float  # amplitude of a smooth random displacement along z
    noise_phase: tuple[float, ...]  # 6 phases/frequencies that define that displacement

    def to_dict(self) -> dict:
        return asdict(self)


def sample_deformation(rng: np.random.Generator, rigid: bool, strength: float = 1.0) -> Deformation:
    """Draw one instance's deformation; `strength` scales every non-rigid term (0 = none)."""
    k = 0.0 if rigid else strength
    return Deformation(
        scale=float(rng.uniform(0.9, 1.1)),
        anisotropy=tuple(float(v) for v in rng.uniform(0.92, 1.08, 3)),
        taper=float(rng.uniform(-0.2, 0.2) * k),
        twist_deg=float(rng.uniform(-35, 35) * k),
        bend_deg=float(rng.uniform(-45, 45) * k),
        noise_mm=float(rng.uniform(0.0, 1.0) * k),
        noise_phase=tuple(float(v) for v in rng.uniform(0, 2 * np.pi, 6)),
    )


def apply_deformation(vertices: np.ndarray, d: Deformation) -> np.ndarray:
    """Deformed copy of (N, 3) vertices in mm."""
    v = np.asarray(vertices, dtype=np.float64).copy()
    v *= d.scale * np.asarray(d.anisotropy)
    x = v[:, 0]
    half = max(1e-6, np.abs(x).max())
    t = x / half  # -1 .. 1 along the long axis
    # Taper: cross-section grows towards +x, shrinks towards -x.
    f = 1.0 + d.taper * t
    v[:, 1] *= f
    v[:, 2] *= f
    # Twist about the long axis.
    ang = np.deg2rad(d.twist_deg) * t / 2
    c, s = np.cos(ang), np.sin(ang)
    y, z = v[:, 1].copy(), v[:, 2].copy()
    v[:, 1], v[:, 2] = c * y - s * z, s * y + c * z
    # Local surface noise: a smooth field over (x, y) moving vertices along z.
    if d.noise_mm > 0:
        p = d.noise_phase
        ext = max(1e-6, np.abs(v[:, :2]).max())
        xs, ys = v[:, 0] / ext, v[:, 1] / ext
        field = np.sin((2 + p[3]) * xs * np.pi + p[0]) * np.cos((2 + p[4]) * ys * np.pi + p[1])
        field += 0.5 * np.sin((4 + p[5]) * (xs + ys) * np.pi + p[2])
        v[:, 2] += d.noise_mm * field / 1.5
    # Bend: map the long axis onto an arc of the given angle (radius = length / angle).
    theta = np.deg2rad(d.bend_deg)
    if abs(theta) > 1e-4:
        radius = 2 * half / theta
        x, z = v[:, 0].copy(), v[:, 2].copy()
        phi = x / radius
        v[:, 0] = (radius - z) * np.sin(phi)
        v[:, 2] = radius - (radius - z) * np.cos(phi)
        v[:, 2] -= v[:, 2].mean()
    return v
