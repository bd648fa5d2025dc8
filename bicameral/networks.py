"""Every network of the thesis's Chapter 4 comparisons, assembled from one vocabulary.

A variant is four choices (`VariantSpec`): one encoder or one per output, how many decoder
stages the two outputs share, and what the occlusion stages concatenate. That covers:

| variant         | encoders | shared stages | occlusion stage k concatenates          |
|-----------------|----------|---------------|-----------------------------------------|
| bicameral       | 1        | 0             | encoder skip + boundary stage k         |
| two_stream      | 2        | 0             | encoder skip (its own encoder)          |
| shared_encoder  | 1        | 0             | encoder skip                            |
| cascaded        | 1        | 0             | boundary stage k (no encoder skip)      |
| multi_task      | 1        | 4             | (one decoder, two output convs)         |
| m3_b1/m2_b2/m1_b3 | 1      | 3 / 2 / 1     | encoder skip + boundary stage k         |

Inputs of any size are replicate-padded to a multiple of the encoder's stride (16 for VGG16) and
the outputs cropped back, so the output always has the input's size.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from bicameral.decoders import DecoderPath, OutputHead, stage_filters
from bicameral.encoders import build_encoder
from binpick_core.model_file import CHANNELS

INPUT_CHANNELS: dict[str, int] = CHANNELS  # the model file's input kinds


@dataclass(frozen=True)
class VariantSpec:
    """How a variant wires the shared vocabulary (see the module table)."""

    separate_encoders: bool = False
    shared_stages: int = 0
    occlusion_skip: bool = True
    occlusion_cascade: bool = True


VARIANTS: dict[str, VariantSpec] = {
    "bicameral": VariantSpec(),
    "two_stream": VariantSpec(separate_encoders=True, occlusion_cascade=False),
    "shared_encoder": VariantSpec(occlusion_cascade=False),
    "cascaded": VariantSpec(occlusion_skip=False),
    "multi_task": VariantSpec(shared_stages=4),
    "m3_b1": VariantSpec(shared_stages=3),
    "m2_b2": VariantSpec(shared_stages=2),
    "m1_b3": VariantSpec(shared_stages=1),
}

# Thesis names of the width variants.
WIDTHS: dict[str, float] = {"F100": 1.0, "F75": 0.75, "F50": 0.5, "F25": 0.25}


@dataclass(frozen=True)
class NetworkConfig:
    """Everything needed to rebuild a network (stored in checkpoints and ONNX metadata)."""

    variant: str = "bicameral"
    width: float = 1.0
    in_channels: int = 3
    encoder: str = "vgg16"

    def validate(self) -> NetworkConfig:
        if self.variant not in VARIANTS:
            raise ValueError(f"unknown variant '{self.variant}', expected one of {sorted(VARIANTS)}")
        if not (isinstance(self.width, (int, float)) and 0 < float(self.width) <= 4):
            raise ValueError(f"width must be a fraction in (0, 4], got {self.width!r}")
        if self.in_channels not in (1, 3, 4):
            raise ValueError(f"in_channels must be 1 (depth), 3 (RGB) or 4 (RGB-D), got {self.in_channels!r}")
        return self

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict) -> NetworkConfig:
        unknown = set(data) - {"variant", "width", "in_channels", "encoder"}
        if unknown:
            raise ValueError(f"unknown network config keys {sorted(unknown)}")
        data = dict(data)
        if isinstance(data.get("width"), str) and data["width"].upper() in WIDTHS:
            data["width"] = WIDTHS[data["width"].upper()]
        return cls(**data).validate()


class BicameralNet(nn.Module):
    """Encoder(s) + decoder paths + two output heads; forward -> (boundary, occlusion) logits."""

    def __init__(self, config: NetworkConfig) -> None:
        super().__init__()
        self.config = config.validate()
        spec = VARIANTS[config.variant]
        self.spec = spec
        width = float(config.width)
        self.encoder = build_encoder(config.encoder, config.in_channels, width)
        # two-stream: the occlusion stream has its own encoder; otherwise None.
        self.occlusion_encoder = (
            build_encoder(config.encoder, config.in_channels, width) if spec.separate_encoders else None
        )
        filters = stage_filters(width)
        skips = self.encoder.skip_channels
        bottom = self.encoder.bottom_channels
        shared = spec.shared_stages
        stages = len(filters)
        self.trunk = DecoderPath(0, bottom, skips, filters[:shared]) if shared else None
        branch_in = filters[shared - 1] if shared else bottom
        if shared < stages:
            self.boundary = DecoderPath(shared, branch_in, skips, filters)
            self.occlusion = DecoderPath(
                shared,
                branch_in,
                skips,
                filters,
                use_skip=spec.occlusion_skip,
                use_cross=spec.occlusion_cascade,
            )
        else:
            self.boundary = self.occlusion = None
        self.boundary_head = OutputHead(filters[-1])
        self.occlusion_head = OutputHead(filters[-1])

    @property
    def stride(self) -> int:
        """Input sizes are padded to a multiple of this."""
        return self.encoder.stride

    def set_export_mode(self, enabled: bool) -> None:
        """Export mode unpools with the exact mask form (no MaxUnpool node, no pooling indices)."""
        for encoder in (self.encoder, self.occlusion_encoder):
            if encoder is not None and hasattr(encoder, "return_indices"):
                encoder.return_indices = not enabled

    def forward(self, image: Tensor) -> tuple[Tensor, Tensor]:
        if image.dim() != 4 or image.shape[1] != self.config.in_channels:
            raise ValueError(f"expected input [N, {self.config.in_channels}, H, W], got {list(image.shape)}")
        height, width = image.shape[-2:]
        pad_h = (-height) % self.stride
        pad_w = (-width) % self.stride
        x = F.pad(image, (0, pad_w, 0, pad_h), mode="replicate") if (pad_h or pad_w) else image
        boundary, occlusion = self._decode(x)
        if boundary.shape[-2:] != x.shape[-2:]:  # DenseNet decoders end at 1/2 resolution
            boundary = F.interpolate(boundary, size=x.shape[-2:], mode="bilinear", align_corners=False)
            occlusion = F.interpolate(occlusion, size=x.shape[-2:], mode="bilinear", align_corners=False)
        if pad_h or pad_w:
            boundary = boundary[..., :height, :width]
            occlusion = occlusion[..., :height, :width]
        return boundary, occlusion

    def _decode(self, x: Tensor) -> tuple[Tensor, Tensor]:
        encoded = self.encoder(x)
        features = encoded.bottom
        if self.trunk is not None:
            features, _ = self.trunk(features, encoded)
        if self.boundary is None:  # multi-task: one decoder, two output convs
            return self.boundary_head(features), self.occlusion_head(features)
        b_last, b_stages = self.boundary(features, encoded)
        if self.occlusion_encoder is not None:
            occ_encoded = self.occlusion_encoder(x)
            o_last, _ = self.occlusion(occ_encoded.bottom, occ_encoded)
        else:
            cross = [torch.empty(0)] * self.boundary.first + b_stages
            o_last, _ = self.occlusion(features, encoded, cross=cross)
        return self.boundary_head(b_last), self.occlusion_head(o_last)

    def decoder_modules(self) -> list[nn.Module]:
        """Everything but the encoder(s): what the thesis initialises with Xavier."""
        return [
            m
            for m in (self.trunk, self.boundary, self.occlusion, self.boundary_head, self.occlusion_head)
            if m is not None
        ]

    def encoder_modules(self) -> list[nn.Module]:
        return [m for m in (self.encoder, self.occlusion_encoder) if m is not None]


def build_network(
    variant: str = "bicameral",
    width: float | str = 1.0,
    in_channels: int = 3,
    encoder: str = "vgg16",
    device: str | torch.device | None = None,
) -> BicameralNet:
    """Build a variant; `width` is a fraction or a thesis name ("F25"). Weights: see `bicameral.init`."""
    if isinstance(width, str):
        if width.upper() not in WIDTHS:
            raise ValueError(f"unknown width '{width}', expected a fraction or one of {sorted(WIDTHS)}")
        width = WIDTHS[width.upper()]
    config = NetworkConfig(variant=variant, width=float(width), in_channels=in_channels, encoder=encoder)
    if device is None:
        return BicameralNet(config)
    with torch.device(device):
        return BicameralNet(config)


def count_parameters(model: nn.Module) -> int:
    return sum(p.numel() for p in model.parameters())
