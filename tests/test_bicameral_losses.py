"""Eq. 4.1 / 4.2 from logits: hand-computed example, float64 transcription, stability."""

from __future__ import annotations

import math

import pytest
import torch

from bicameral.losses import MU, bicameral_loss, boundary_loss, occlusion_loss


def test_hand_computed_example() -> None:
    # Two pixels. Boundary logits 0 (p = 1/2) and ln 3 (p = 3/4); Y = [1, 0].
    # Eq. 4.1: -(1/2) [10 ln(1/2) + ln(1 - 3/4)] = (10 ln 2 + ln 4) / 2 = 6 ln 2.
    y_logits = torch.tensor([[[[0.0, math.log(3.0)]]]])
    Y = torch.tensor([[[[1.0, 0.0]]]])
    assert boundary_loss(y_logits, Y).item() == pytest.approx(6 * math.log(2), rel=1e-6)
    # Occlusions: logits 0 and 0, Z = [0, 1]. Pixel 1 is a boundary (Y=1), Z=0: weight (10-1)*1+1 = 10
    # on ln(1/2); pixel 2: 10 * ln(1/2). Eq. 4.2 = -(1/2)(10 ln 1/2 + 10 ln 1/2) = 10 ln 2.
    z_logits = torch.zeros(1, 1, 1, 2)
    Z = torch.tensor([[[[0.0, 1.0]]]])
    assert occlusion_loss(z_logits, Z, Y).item() == pytest.approx(10 * math.log(2), rel=1e-6)
    total, lb, lo = bicameral_loss(y_logits, z_logits, Y, Z)
    assert total.item() == pytest.approx(16 * math.log(2), rel=1e-6)


def transcription(y_hat: torch.Tensor, z_hat: torch.Tensor, Y: torch.Tensor, Z: torch.Tensor, mu: float):
    """Eq. 4.1 and 4.2 written literally in probability space, float64."""
    n = Y.shape[0]
    p = Y[0].numel()
    lb = -(mu * Y * torch.log(y_hat) + (1 - Y) * torch.log(1 - y_hat)).sum() / (n * p)
    lo = -(mu * Z * torch.log(z_hat) + ((mu - 1) * Y + 1) * (1 - Z) * torch.log(1 - z_hat)).sum() / (n * p)
    return lb, lo


def test_matches_float64_transcription() -> None:
    g = torch.Generator().manual_seed(3)
    y = torch.randn(3, 1, 9, 11, generator=g, dtype=torch.float64) * 4
    z = torch.randn(3, 1, 9, 11, generator=g, dtype=torch.float64) * 4
    Y = (torch.rand(3, 1, 9, 11, generator=g) < 0.2).double()
    Z = ((torch.rand(3, 1, 9, 11, generator=g) < 0.3).double()) * (1 - Y)
    lb_ref, lo_ref = transcription(torch.sigmoid(y), torch.sigmoid(z), Y, Z, MU)
    assert boundary_loss(y, Y).item() == pytest.approx(lb_ref.item(), rel=1e-12)
    assert occlusion_loss(z, Z, Y).item() == pytest.approx(lo_ref.item(), rel=1e-12)
    # float32 logits agree with the float64 reference to float32 precision
    assert boundary_loss(y.float(), Y.float()).item() == pytest.approx(lb_ref.item(), rel=1e-5)


def test_stable_for_saturated_logits() -> None:
    logits = torch.tensor([[[[-200.0, 200.0, 80.0, -80.0]]]], requires_grad=True)
    Y = torch.tensor([[[[1.0, 0.0, 1.0, 0.0]]]])
    loss = boundary_loss(logits, Y)
    loss.backward()
    # Wrong by 200 with weight 10 and by 200 with weight 1; right ones cost ~0.
    assert loss.item() == pytest.approx((10 * 200 + 200) / 4, rel=1e-6)
    assert torch.isfinite(logits.grad).all()
    lo = occlusion_loss(logits.detach(), torch.zeros_like(Y), Y)
    assert math.isfinite(lo.item())


def test_shape_mismatch_is_a_clear_error() -> None:
    with pytest.raises(ValueError, match="logits shape"):
        boundary_loss(torch.zeros(1, 1, 4, 4), torch.zeros(1, 1, 4, 5))
