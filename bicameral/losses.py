"""The thesis's balanced cross-entropies (Eq. 4.1 and 4.2), computed from logits.

With Y^ = sigmoid(y), log Y^ = -softplus(-y) and log(1 - Y^) = -softplus(y); softplus is stable
for any logit, so neither loss ever evaluates log(0) (a probability-space transcription returns
inf/NaN for saturated logits that a trained network does produce).

    L_boundaries = mean_{n,p}  mu * Y * sp(-y) + (1 - Y) * sp(y)                       (4.1)
    L_occlusions = mean_{n,p}  mu * Z * sp(-z) + ((mu - 1) * Y + 1) * (1 - Z) * sp(z)   (4.2)

mu = 10 in the thesis. The (mu - 1) * Y + 1 factor gives "this boundary pixel is not the
unoccluded side" as much weight as a positive occlusion pixel, keeping the two maps disjoint.
The l2 regularisation the thesis adds is the optimiser's weight decay, not a loss term here.
"""

from __future__ import annotations

import torch.nn.functional as F
from torch import Tensor

MU = 10.0


def _check(name: str, logits: Tensor, target: Tensor) -> None:
    if logits.shape != target.shape:
        raise ValueError(f"{name}: logits shape {list(logits.shape)} != target shape {list(target.shape)}")


def boundary_loss(logits: Tensor, boundaries: Tensor, mu: float = MU) -> Tensor:
    """Eq. 4.1: boundary logits y and binary ground truth Y (same shape), mean over N and pixels."""
    _check("boundary_loss", logits, boundaries)
    y = boundaries.to(logits.dtype)
    return (mu * y * F.softplus(-logits) + (1 - y) * F.softplus(logits)).mean()


def occlusion_loss(logits: Tensor, occlusions: Tensor, boundaries: Tensor, mu: float = MU) -> Tensor:
    """Eq. 4.2: occlusion logits z, ground truth Z, and boundary ground truth Y for the weight."""
    _check("occlusion_loss", logits, occlusions)
    _check("occlusion_loss (boundaries)", logits, boundaries)
    z = occlusions.to(logits.dtype)
    y = boundaries.to(logits.dtype)
    negative_weight = (mu - 1) * y + 1
    return (mu * z * F.softplus(-logits) + negative_weight * (1 - z) * F.softplus(logits)).mean()


def bicameral_loss(
    boundary_logits: Tensor,
    occlusion_logits: Tensor,
    boundaries: Tensor,
    occlusions: Tensor,
    mu: float = MU,
) -> tuple[Tensor, Tensor, Tensor]:
    """Total training loss L_boundaries + L_occlusions, and both terms (for logging)."""
    lb = boundary_loss(boundary_logits, boundaries, mu)
    lo = occlusion_loss(occlusion_logits, occlusions, boundaries, mu)
    return lb + lo, lb, lo
