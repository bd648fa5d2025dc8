"""Decoder vocabulary: one stage type and one path type, from which every variant is assembled.

A decoder stage k (1..4, coarse to fine) upsamples the previous features to the resolution of
encoder skip k (max-unpooling with pool(5-k)'s positions for VGG16), concatenates what the
variant asks for (the encoder skip, the boundary decoder's stage-k output, or both), then applies
conv5x5 + ReLU and, when training, dropout 0.5 (thesis Section 4.1.3).
"""

from __future__ import annotations

import torch
from torch import Tensor, nn
from torch.nn import functional as F

from bicameral.encoders import EncoderOutput, scaled
from bicameral.unpool import unpool_with_indices, unpool_with_mask

# Filters of decoder stages 1..4 at F100 (DESIGN.md; thesis Fig. 4.2).
DECODER_FILTERS: tuple[int, ...] = (256, 128, 64, 32)
KERNEL = 5
DROPOUT = 0.5


def stage_filters(width: float) -> list[int]:
    return [scaled(f, width) for f in DECODER_FILTERS]


def upsample(features: Tensor, encoded: EncoderOutput, stage: int) -> Tensor:
    """Bring `features` to the resolution of skip `stage` (0-based) the way the encoder allows."""
    skip = encoded.skips[stage]
    if not encoded.unpool[stage]:
        return F.interpolate(features, size=skip.shape[-2:], mode="bilinear", align_corners=False)
    indices = encoded.indices[stage]
    if indices is not None:
        return unpool_with_indices(features, indices, output_size=tuple(skip.shape[-2:]))
    return unpool_with_mask(features, skip, mask=encoded.unpool_mask(stage))


class DecoderStage(nn.Module):
    """conv5x5 + ReLU (+ dropout 0.5 in training) on the concatenated inputs of one stage."""

    def __init__(self, in_channels: int, out_channels: int) -> None:
        super().__init__()
        self.conv = nn.Conv2d(in_channels, out_channels, kernel_size=KERNEL, padding=KERNEL // 2)
        self.dropout = nn.Dropout(DROPOUT)

    def forward(self, x: Tensor) -> Tensor:
        return self.dropout(F.relu(self.conv(x)))


class DecoderPath(nn.Module):
    """Decoder stages `first..3` (0-based) of one branch.

    use_skip: concatenate the encoder skip of each stage (every design except the cascaded
        occlusion decoder).
    use_cross: concatenate the boundary branch's output of the same stage (bicameral, cascaded
        and the hybrids' occlusion branches).
    """

    def __init__(
        self,
        first: int,
        in_channels: int,
        skip_channels: list[int],
        filters: list[int],
        use_skip: bool = True,
        use_cross: bool = False,
    ) -> None:
        super().__init__()
        self.first = first
        self.use_skip = use_skip
        self.use_cross = use_cross
        stages = []
        previous = in_channels
        for k in range(first, len(filters)):
            width = previous + (skip_channels[k] if use_skip else 0) + (filters[k] if use_cross else 0)
            stages.append(DecoderStage(width, filters[k]))
            previous = filters[k]
        self.stages = nn.ModuleList(stages)
        self.out_channels = previous

    def forward(
        self, features: Tensor, encoded: EncoderOutput, cross: list[Tensor] | None = None
    ) -> tuple[Tensor, list[Tensor]]:
        """Run the stages; returns the last features and every stage's output (for a cascade)."""
        outputs: list[Tensor] = []
        for offset, stage in enumerate(self.stages):
            k = self.first + offset
            parts = [upsample(features, encoded, k)]
            if self.use_skip:
                parts.append(encoded.skips[k])
            if self.use_cross:
                if cross is None:
                    raise ValueError("this decoder path concatenates the boundary stages but got none")
                parts.append(cross[k])
            features = stage(parts[0] if len(parts) == 1 else torch.cat(parts, dim=1))
            outputs.append(features)
        return features, outputs


class OutputHead(nn.Module):
    """Final conv5x5 to one logit map (sigmoid is applied by the loss or the exported graph)."""

    def __init__(self, in_channels: int) -> None:
        super().__init__()
        self.conv = nn.Conv2d(in_channels, 1, kernel_size=KERNEL, padding=KERNEL // 2)

    def forward(self, x: Tensor) -> Tensor:
        return self.conv(x)
