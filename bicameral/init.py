"""Weight initialisation as in thesis Section 4.1.3.

Decoders (and output heads): Xavier (Glorot) uniform weights, zero biases. Encoder: from a
torchvision-format state-dict file the user gives (`--encoder-weights PATH`; ImageNet VGG16 in
the thesis), else from scratch with He (Kaiming) normal, which is what torchvision's VGG uses for
untrained convs. Nothing is ever downloaded: the appliance's factory machines may be offline and
a silent download would make training depend on an unpinned remote file.
"""

from __future__ import annotations

from pathlib import Path

import torch
from torch import nn

from bicameral.networks import BicameralNet


def xavier_(module: nn.Module) -> None:
    for m in module.modules():
        if isinstance(m, nn.Conv2d):
            nn.init.xavier_uniform_(m.weight)
            if m.bias is not None:
                nn.init.zeros_(m.bias)


def kaiming_(module: nn.Module) -> None:
    for m in module.modules():
        if isinstance(m, nn.Conv2d):
            nn.init.kaiming_normal_(m.weight, mode="fan_out", nonlinearity="relu")
            if m.bias is not None:
                nn.init.zeros_(m.bias)
        elif isinstance(m, nn.BatchNorm2d):
            nn.init.ones_(m.weight)
            nn.init.zeros_(m.bias)


def load_state_dict_file(path: str | Path) -> dict[str, torch.Tensor]:
    """A state dict from a `.pth` file (plain dict, or a dict with a 'state_dict'/'model' entry)."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"encoder weights file '{path}' does not exist")
    try:
        data = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:  # corrupt file, pickle with code objects, ...
        raise ValueError(f"cannot read encoder weights '{path}': {exc}") from exc
    for key in ("state_dict", "model"):
        if isinstance(data, dict) and isinstance(data.get(key), dict):
            data = data[key]
    if not isinstance(data, dict) or not all(isinstance(v, torch.Tensor) for v in data.values()):
        raise ValueError(f"encoder weights '{path}' is not a state dict of tensors")
    return data


def initialise(model: BicameralNet, encoder_weights: str | Path | None = None) -> BicameralNet:
    """Initialise in place: Xavier decoders; encoder(s) pretrained from `encoder_weights` or He."""
    for module in model.decoder_modules():
        xavier_(module)
    state = load_state_dict_file(encoder_weights) if encoder_weights is not None else None
    for encoder in model.encoder_modules():
        if state is None:
            kaiming_(encoder)
        else:
            try:
                encoder.load_torchvision(state)
            except (KeyError, ValueError) as exc:
                detail = exc.args[0] if exc.args else exc
                raise ValueError(f"encoder weights '{encoder_weights}': {detail}") from exc
    return model
