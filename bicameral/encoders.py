"""Encoders: what the decoders see of the image, at each resolution.

Every encoder returns an `EncoderOutput`: one skip tensor per decoder stage (deepest first), the
bottom features the first decoder stage starts from, and how each stage must upsample. The
decoders are written against that, not against VGG16, which is what makes the design
backbone-agnostic (the optional DenseNet121 encoder proves it).

Both encoders keep torchvision's parameter names so a torchvision-format state dict loads
without translation, yet neither imports torchvision (it does not install beside our torch pin).
"""

from __future__ import annotations

import re
from collections import OrderedDict
from collections.abc import Mapping
from dataclasses import dataclass, field

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from bicameral.unpool import first_max_mask


def scaled(channels: int, width: float) -> int:
    """Filter count of a width variant (F75 = 0.75 ...): rounded, never below one filter."""
    return max(1, int(round(channels * width)))


@dataclass
class EncoderOutput:
    """Features handed to the decoders.

    skips: one per decoder stage, deepest first (the stage's concatenated skip connection).
    bottom: deepest features, where decoder stage 1 starts.
    indices: per stage, max-pooling indices for `max_unpool2d`, or None when the stage upsamples
        by interpolation (DenseNet) or when the encoder runs in export mode (the exact mask
        unpooling then recovers the positions from the skip, which is the pre-pool tensor).
    unpool: per stage, True when the stage max-unpools (VGG16), False when it interpolates.
    masks: the export path's first-max masks, filled by `unpool_mask` on first use.
    """

    skips: list[Tensor]
    bottom: Tensor
    indices: list[Tensor | None]
    unpool: list[bool]
    masks: dict[int, Tensor] = field(default_factory=dict, repr=False)

    def unpool_mask(self, stage: int) -> Tensor:
        """The first-max mask of skip `stage` (0-based), computed once per encoder pass.

        Several decoder paths unpool at the same stage (the bicameral boundary and occlusion
        decoders, the hybrids' branches) and the mask depends only on the skip: recomputing it per
        path doubled the mask kernels PyTorch runs (eager or in a CUDA graph). The ONNX exporter
        merged the duplicates by itself, so exported graphs are unchanged.
        """
        mask = self.masks.get(stage)
        if mask is None:
            mask = first_max_mask(self.skips[stage])
            self.masks[stage] = mask
        return mask


# VGG16 "D" configuration: 13 conv3x3 layers in 5 blocks.
VGG16_BLOCKS: tuple[tuple[int, ...], ...] = (
    (64, 64),
    (128, 128),
    (256, 256, 256),
    (512, 512, 512),
    (512, 512, 512),
)
# Index of each conv in torchvision's `vgg16().features` (ReLUs and pools take the other slots).
VGG16_TORCHVISION_CONV_INDEX: tuple[int, ...] = (0, 2, 5, 7, 10, 12, 14, 17, 19, 21, 24, 26, 28)


class VGG16Encoder(nn.Module):
    """VGG16's 13 conv3x3+ReLU layers; 2x2 max-pooling with indices after blocks 1-4 (DESIGN.md).

    Block 5 runs at 1/16 resolution unpooled. Skips are the last conv of blocks 4, 3, 2, 1
    (conv4_3, conv3_3, conv2_2, conv1_2): exactly the tensors pool4..pool1 reduced, so the
    export path's mask unpooling can recompute the pooling positions from them.
    """

    stride = 16
    name = "vgg16"

    def __init__(self, in_channels: int = 3, width: float = 1.0) -> None:
        super().__init__()
        self.in_channels = in_channels
        self.width = width
        self.return_indices = True
        convs: list[nn.Conv2d] = []
        self.block_sizes = [len(b) for b in VGG16_BLOCKS]
        channels = in_channels
        for block in VGG16_BLOCKS:
            for filters in block:
                out = scaled(filters, width)
                convs.append(nn.Conv2d(channels, out, kernel_size=3, padding=1))
                channels = out
        self.convs = nn.ModuleList(convs)
        block_out = [scaled(b[-1], width) for b in VGG16_BLOCKS]
        self.skip_channels = [block_out[3], block_out[2], block_out[1], block_out[0]]
        self.bottom_channels = block_out[4]

    def forward(self, x: Tensor) -> EncoderOutput:
        pre_pool: list[Tensor] = []
        indices: list[Tensor | None] = []
        layer = 0
        for block_number, size in enumerate(self.block_sizes):
            for _ in range(size):
                x = F.relu(self.convs[layer](x))
                layer += 1
            if block_number < 4:
                pre_pool.append(x)
                if self.return_indices:
                    x, idx = F.max_pool2d(x, kernel_size=2, stride=2, return_indices=True)
                    indices.append(idx)
                else:
                    x = F.max_pool2d(x, kernel_size=2, stride=2)
                    indices.append(None)
        return EncoderOutput(
            skips=pre_pool[::-1], bottom=x, indices=indices[::-1], unpool=[True, True, True, True]
        )

    def load_torchvision(self, state: Mapping[str, Tensor]) -> None:
        """Load a torchvision-format VGG16 state dict (`features.N.weight` ...; classifier ignored).

        For 1-channel (depth) input the first conv gets the mean of the RGB kernels; for 4-channel
        (RGB-D) input the RGB kernels are kept and the depth kernel is their mean, so pretrained
        colour features survive and depth starts as a luminance-like channel.
        """
        if self.width != 1.0:
            raise ValueError(f"pretrained VGG16 weights need width 1.0, this encoder has width {self.width}")
        own: dict[str, Tensor] = {}
        for i, tv_index in enumerate(VGG16_TORCHVISION_CONV_INDEX):
            for kind in ("weight", "bias"):
                key = f"features.{tv_index}.{kind}"
                if key not in state:
                    raise KeyError(f"VGG16 state dict lacks '{key}' (expected torchvision's vgg16 layout)")
                own[f"convs.{i}.{kind}"] = state[key]
        first = own["convs.0.weight"]
        if first.shape[1] != 3:
            raise ValueError(f"'features.0.weight' has {first.shape[1]} input channels, expected 3 (RGB)")
        if self.in_channels == 1:
            own["convs.0.weight"] = first.mean(dim=1, keepdim=True)
        elif self.in_channels == 4:
            own["convs.0.weight"] = torch.cat([first, first.mean(dim=1, keepdim=True)], dim=1)
        for key, value in own.items():
            expected = self.state_dict()[key].shape
            if tuple(value.shape) != tuple(expected):
                raise ValueError(
                    f"VGG16 weight '{key}' has shape {tuple(value.shape)}, expected {tuple(expected)}"
                )
        self.load_state_dict(own)


# ---------------------------------------------------------------- DenseNet121 (torchvision layout)


class _DenseLayer(nn.Module):
    def __init__(self, in_features: int, growth: int, bn_size: int) -> None:
        super().__init__()
        self.norm1 = nn.BatchNorm2d(in_features)
        self.relu1 = nn.ReLU(inplace=True)
        self.conv1 = nn.Conv2d(in_features, bn_size * growth, kernel_size=1, bias=False)
        self.norm2 = nn.BatchNorm2d(bn_size * growth)
        self.relu2 = nn.ReLU(inplace=True)
        self.conv2 = nn.Conv2d(bn_size * growth, growth, kernel_size=3, padding=1, bias=False)

    def forward(self, features: list[Tensor]) -> Tensor:
        x = torch.cat(features, dim=1)
        x = self.conv1(self.relu1(self.norm1(x)))
        return self.conv2(self.relu2(self.norm2(x)))


class _DenseBlock(nn.ModuleDict):
    def __init__(self, layers: int, in_features: int, growth: int, bn_size: int) -> None:
        super().__init__()
        for i in range(layers):
            self.add_module(f"denselayer{i + 1}", _DenseLayer(in_features + i * growth, growth, bn_size))

    def forward(self, x: Tensor) -> Tensor:
        features = [x]
        for layer in self.values():
            features.append(layer(features))
        return torch.cat(features, dim=1)


class _Transition(nn.Sequential):
    def __init__(self, in_features: int, out_features: int) -> None:
        super().__init__()
        self.norm = nn.BatchNorm2d(in_features)
        self.relu = nn.ReLU(inplace=True)
        self.conv = nn.Conv2d(in_features, out_features, kernel_size=1, bias=False)
        self.pool = nn.AvgPool2d(kernel_size=2, stride=2)


class DenseNet121Encoder(nn.Module):
    """torchvision's DenseNet121 `features` (growth 32, blocks 6/12/24/16), written out by hand.

    DenseNet has no pooling indices, so every decoder stage upsamples by bilinear interpolation.
    Skips: dense block 3 (1/16), 2 (1/8), 1 (1/4) and the stem's ReLU (1/2); bottom: norm5 (1/32).
    The decoders therefore end at 1/2 resolution and the network interpolates the logits back to
    full size. Width scales the growth rate and stem (F100 = torchvision's exact architecture).
    """

    stride = 32
    name = "densenet121"

    def __init__(self, in_channels: int = 3, width: float = 1.0) -> None:
        super().__init__()
        self.in_channels = in_channels
        self.width = width
        growth, bn_size, block_config = scaled(32, width), 4, (6, 12, 24, 16)
        features = scaled(64, width)
        layers: OrderedDict[str, nn.Module] = OrderedDict(
            conv0=nn.Conv2d(in_channels, features, kernel_size=7, stride=2, padding=3, bias=False),
            norm0=nn.BatchNorm2d(features),
            relu0=nn.ReLU(inplace=True),
            pool0=nn.MaxPool2d(kernel_size=3, stride=2, padding=1),
        )
        block_out: list[int] = []
        for i, count in enumerate(block_config):
            layers[f"denseblock{i + 1}"] = _DenseBlock(count, features, growth, bn_size)
            features += count * growth
            block_out.append(features)
            if i != len(block_config) - 1:
                layers[f"transition{i + 1}"] = _Transition(features, features // 2)
                features //= 2
        layers["norm5"] = nn.BatchNorm2d(features)
        self.features = nn.Sequential(layers)
        self.skip_channels = [block_out[2], block_out[1], block_out[0], scaled(64, width)]
        self.bottom_channels = features

    def forward(self, x: Tensor) -> EncoderOutput:
        f = self.features
        stem = f.relu0(f.norm0(f.conv0(x)))
        b1 = f.denseblock1(f.pool0(stem))
        b2 = f.denseblock2(f.transition1(b1))
        b3 = f.denseblock3(f.transition2(b2))
        bottom = F.relu(f.norm5(f.denseblock4(f.transition3(b3))))
        return EncoderOutput(skips=[b3, b2, b1, stem], bottom=bottom, indices=[None] * 4, unpool=[False] * 4)

    def load_torchvision(self, state: Mapping[str, Tensor]) -> None:
        """Load a torchvision-format DenseNet121 state dict (old 'norm.1' key style accepted)."""
        if self.width != 1.0 or self.in_channels != 3:
            raise ValueError("pretrained DenseNet121 weights need width 1.0 and 3 input channels")
        legacy = re.compile(
            r"^(.*denselayer\d+\.(?:norm|relu|conv))\.((?:[12])\.(?:weight|bias|running_mean|running_var))$"
        )
        own = {}
        for key, value in state.items():
            match = legacy.match(key)
            if match:
                key = match.group(1) + match.group(2)
            if key.startswith("features."):
                own[key[len("features.") :]] = value
        missing = self.features.load_state_dict(own, strict=False).missing_keys
        if missing:
            raise KeyError(f"DenseNet121 state dict lacks {len(missing)} keys, e.g. 'features.{missing[0]}'")


ENCODERS: dict[str, type[nn.Module]] = {"vgg16": VGG16Encoder, "densenet121": DenseNet121Encoder}


def build_encoder(name: str, in_channels: int, width: float) -> nn.Module:
    """The named encoder; a clear error for an unknown name."""
    if name not in ENCODERS:
        raise ValueError(f"unknown encoder '{name}', expected one of {sorted(ENCODERS)}")
    return ENCODERS[name](in_channels=in_channels, width=width)
