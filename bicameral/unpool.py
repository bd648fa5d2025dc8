"""Max-unpooling in two interchangeable forms.

The thesis's decoders put each value back where the encoder's 2x2 max-pooling found its maximum
(Fig. 4.3). PyTorch does this with pooling indices and `max_unpool2d`, but TensorRT's ONNX parser
has no `MaxUnpool` operator. The deployable form below recomputes "where was the max" from the
pre-pool features (which the decoder already holds as its skip connection), using only
PixelUnshuffle/DepthToSpace, ReduceMax, Equal and arithmetic, all of which TensorRT parses.

`upsample(pooled) * (x == upsample(pooled))` is NOT equivalent: when a window holds two equal
maxima it keeps both. PyTorch's max-pooling keeps the first maximum in row-major order, so the
mask here keeps only the first position equal to the window's maximum. NaNs are not supported
(a window containing NaN produces an all-zero mask instead of PyTorch's NaN propagation).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager

import torch
import torch.nn.functional as F
from torch import Tensor

# (windows [N, C, 4, H/2, W/2], is_max bool of the same shape) -> the is_max to use instead.
TieResolver = Callable[[Tensor, Tensor], Tensor]
_tie_resolver: TieResolver | None = None


@contextmanager
def resolving_ties(resolver: TieResolver) -> Iterator[None]:
    """Within the block, every `first_max_mask` lets `resolver` replace its "equal to the window's
    maximum" flags (bicameral.export_check: PyTorch follows ONNX Runtime's choice in near-ties)."""
    global _tie_resolver
    previous, _tie_resolver = _tie_resolver, resolver
    try:
        yield
    finally:
        _tie_resolver = previous


def first_max_mask(pre_pool: Tensor) -> Tensor:
    """Float mask [N, C, H, W] with a single 1 per 2x2 window at the window's first maximum.

    "First" follows PyTorch's max-pooling scan order (row-major in the window), so the mask marks
    exactly the positions `max_pool2d(..., return_indices=True)` would return.
    """
    n, c, h, w = pre_pool.shape
    if h % 2 or w % 2:
        raise ValueError(f"first_max_mask needs even height and width, got {h}x{w}")
    windows = F.pixel_unshuffle(pre_pool, 2).reshape(n, c, 4, h // 2, w // 2)
    is_max = windows == windows.amax(dim=2, keepdim=True)
    if _tie_resolver is not None:
        is_max = _tie_resolver(windows, is_max)
    is_max = is_max.to(pre_pool.dtype)
    e0, e1, e2, e3 = is_max.unbind(dim=2)
    # Explicit "first true" over the 4 positions (no CumSum: older TensorRT parsers lack it).
    m0 = e0
    m1 = e1 * (1 - e0)
    m2 = e2 * (1 - e0) * (1 - e1)
    m3 = e3 * (1 - e0) * (1 - e1) * (1 - e2)
    mask = torch.stack((m0, m1, m2, m3), dim=2).reshape(n, c * 4, h // 2, w // 2)
    return F.pixel_shuffle(mask, 2)


def unpool_with_indices(values: Tensor, indices: Tensor, output_size: tuple[int, int]) -> Tensor:
    """The thesis's operator: `max_unpool2d` with the encoder's pooling indices (training path)."""
    return F.max_unpool2d(values, indices, kernel_size=2, stride=2, output_size=output_size)


def unpool_with_mask(values: Tensor, pre_pool: Tensor, mask: Tensor | None = None) -> Tensor:
    """Exact `max_unpool2d` equivalent from the pre-pool tensor (export path, no MaxUnpool node).

    `values` [N, C, H/2, W/2] goes to the first-max position of each window of `pre_pool`
    [N, C, H, W]; every other position is 0. `mask`, when given, is `first_max_mask(pre_pool)`
    already computed (decoder paths unpooling the same skip share it: `EncoderOutput.unpool_mask`).
    """
    if values.shape[1] != pre_pool.shape[1]:
        raise ValueError(
            f"unpool_with_mask: values have {values.shape[1]} channels, pre-pool features {pre_pool.shape[1]}"
        )
    spread = F.interpolate(values, scale_factor=2.0, mode="nearest")
    return spread * (first_max_mask(pre_pool) if mask is None else mask)
