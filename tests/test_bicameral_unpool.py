"""The export path's mask unpooling equals max_unpool2d exactly, ties included; one mask per stage."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F
from hypothesis import given, settings
from hypothesis import strategies as st

from bicameral import build_network, decoders, encoders
from bicameral.unpool import first_max_mask, unpool_with_indices, unpool_with_mask


def reference(x: torch.Tensor, values: torch.Tensor) -> torch.Tensor:
    _, idx = F.max_pool2d(x, 2, 2, return_indices=True)
    return F.max_unpool2d(values, idx, 2, 2, output_size=x.shape[-2:])


def test_planted_ties_keep_only_the_first_maximum() -> None:
    x = torch.tensor(
        [[[[5.0, 5.0, 2.0, 2.0],   # window 1: tie on the top row
           [0.0, 5.0, 2.0, 2.0],   # window 2: all four equal
           [3.0, 0.0, -1.0, -1.0],
           [0.0, 3.0, -1.0, 0.0]]]]  # window 3: tie on a diagonal; window 4: negatives, max 0
    )  # fmt: skip
    values = torch.tensor([[[[7.0, 8.0], [9.0, 10.0]]]])
    expected = torch.tensor(
        [[[[7.0, 0.0, 8.0, 0.0],
           [0.0, 0.0, 0.0, 0.0],
           [9.0, 0.0, 0.0, 0.0],
           [0.0, 0.0, 0.0, 10.0]]]]
    )  # fmt: skip
    assert torch.equal(reference(x, values), expected)
    assert torch.equal(unpool_with_mask(values, x), expected)
    # The naive "upsample x (x == upsample(max))" form is wrong on exactly these windows.
    pooled = F.max_pool2d(x, 2, 2)
    naive = F.interpolate(values, scale_factor=2.0) * (x == F.interpolate(pooled, scale_factor=2.0))
    assert not torch.equal(naive, expected)


def test_all_zero_input_after_relu() -> None:
    """ReLU makes whole windows of 0: the most common tie in a real network."""
    x = torch.relu(torch.randn(2, 3, 8, 8) - 2.0)
    values = torch.randn(2, 3, 4, 4)
    assert torch.equal(unpool_with_mask(values, x), reference(x, values))


@settings(max_examples=60, deadline=None)
@given(
    st.integers(1, 3), st.integers(1, 4), st.integers(1, 5), st.integers(1, 5), st.integers(0, 2**31 - 1),
    st.integers(2, 5),
)  # fmt: skip
def test_matches_max_unpool2d_on_tie_heavy_inputs(n, c, h, w, seed, levels) -> None:
    g = torch.Generator().manual_seed(seed)
    x = torch.randint(0, levels, (n, c, 2 * h, 2 * w), generator=g).float()  # few levels: many ties
    values = torch.randn(n, c, h, w, generator=g)
    out = unpool_with_mask(values, x)
    assert torch.equal(out, reference(x, values))
    _, idx = F.max_pool2d(x, 2, 2, return_indices=True)
    assert torch.equal(out, unpool_with_indices(values, idx, (2 * h, 2 * w)))
    assert torch.equal(first_max_mask(x).view(n, c, h, 2, w, 2).sum(dim=(3, 5)), torch.ones(n, c, h, w))


@pytest.mark.parametrize(
    ("variant", "masks"), [("bicameral", 4), ("two_stream", 8), ("m2_b2", 4), ("multi_task", 4)]
)
def test_export_mode_computes_each_stage_mask_once_with_the_same_outputs(variant, masks, monkeypatch) -> None:
    """Decoder paths unpooling the same skip share its mask (bicameral: 4 masks, not 8), and the
    outputs are bit-identical to every path recomputing it (the form before the sharing)."""
    torch.manual_seed(0)
    net = build_network(variant, 0.25).eval()
    net.set_export_mode(True)
    x = torch.round(torch.randn(1, 3, 48, 64, generator=torch.Generator().manual_seed(1)))
    shapes = []

    def counting_mask(pre_pool: torch.Tensor) -> torch.Tensor:
        shapes.append(tuple(pre_pool.shape))
        return first_max_mask(pre_pool)

    monkeypatch.setattr(encoders, "first_max_mask", counting_mask)
    with torch.no_grad():
        shared = net(x)
    assert len(shapes) == masks and len(set(shapes)) == 4  # one per stage (per encoder)

    def recomputing_upsample(features: torch.Tensor, encoded, stage: int) -> torch.Tensor:
        return unpool_with_mask(features, encoded.skips[stage])

    monkeypatch.setattr(decoders, "upsample", recomputing_upsample)
    with torch.no_grad():
        recomputed = net(x)
    assert all(torch.equal(a, b) for a, b in zip(shared, recomputed, strict=True))


def test_graphed_network_names_a_bad_unpool_form() -> None:
    """Checked before anything touches CUDA, so it is a clear error on any machine."""
    from bicameral.graphed import GraphedNetwork

    with pytest.raises(ValueError, match=r"unpool must be one of \['mask', 'indices'\], got 'maxunpool'"):
        GraphedNetwork(build_network("bicameral", 0.125), (3, 32, 32), unpool="maxunpool")
