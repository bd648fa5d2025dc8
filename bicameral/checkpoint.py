"""Checkpoints: one file that rebuilds a trained network and says how to feed it.

A checkpoint is a dict saved with `torch.save` and read back with `weights_only=True` (no
arbitrary code runs on load):

    format          "binpick-checkpoint"
    version         1
    config          {"variant", "width", "in_channels", "encoder"}   (NetworkConfig)
    state_dict      the model's parameters
    preprocess      contracts.md section 2 record (channel_order, rgb_scale, mean, std, depth_unit)
    provenance      JSON-able dict: dataset, preset, iterations, epochs, hardware, seconds, commit, date
    optimizer_state optimizer.state_dict() or None (to resume training)
    extra           JSON-able dict for the trainer's own bookkeeping (step, scheduler, metrics ...)

`binpick export` turns `config`, `preprocess` and `provenance` into the ONNX metadata, so the
appliance learns from the model file alone how it was trained. Writes are atomic (temp file in
the same directory, fsync, rename): a crash mid-save leaves the previous checkpoint intact.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import torch
from torch import nn

from bicameral.networks import BicameralNet, NetworkConfig
from binpick_core.model_file import CHANNELS, ModelFileError, Preprocess
from edge.atomic_file import write_atomically_with

FORMAT = "binpick-checkpoint"
VERSION = 1
INPUT_KIND_BY_CHANNELS = {v: k for k, v in CHANNELS.items()}


class CheckpointError(ValueError):
    """A checkpoint that cannot be used; the message names the file and the key."""


def _config(config: NetworkConfig | dict) -> NetworkConfig:
    return config.validate() if isinstance(config, NetworkConfig) else NetworkConfig.from_dict(dict(config))


def _json_able(name: str, value: Any) -> dict:
    if value is None:
        return {}
    if not isinstance(value, dict):
        raise TypeError(f"{name} must be a dict, got {type(value).__name__}")
    try:
        return json.loads(json.dumps(value))
    except (TypeError, ValueError) as exc:
        raise TypeError(f"{name} must be JSON-serialisable: {exc}") from None


def unwrap(model: nn.Module) -> BicameralNet:
    """The BicameralNet inside torch.compile / DataParallel / DDP wrappers (their state-dict keys
    carry prefixes that a plain network could not load)."""
    while True:
        if isinstance(model, BicameralNet):
            return model
        inner = getattr(model, "_orig_mod", None) or getattr(model, "module", None)
        if not isinstance(inner, nn.Module):
            raise TypeError(f"save_checkpoint needs a BicameralNet, got {type(model).__name__}")
        model = inner


def save_checkpoint(
    path: str | Path,
    model: nn.Module,
    config: NetworkConfig | dict,
    preprocess: Preprocess | dict,
    provenance: dict,
    optimizer_state: dict | None = None,
    extra: dict | None = None,
) -> Path:
    """Write a checkpoint atomically; validates config against the model and preprocess against
    the input channels so that a bad checkpoint fails at save time, not at export on the cell."""
    model = unwrap(model)
    cfg = _config(config)
    if cfg != model.config:
        raise ValueError(f"config {cfg.to_dict()} does not describe this model {model.config.to_dict()}")
    record = preprocess.to_dict() if isinstance(preprocess, Preprocess) else dict(preprocess)
    try:
        Preprocess.from_dict(record, cfg.in_channels)
    except ModelFileError as exc:
        raise ValueError(str(exc)) from None
    checkpoint = {
        "format": FORMAT,
        "version": VERSION,
        "config": cfg.to_dict(),
        "state_dict": {k: v.detach().cpu() for k, v in model.state_dict().items()},
        "preprocess": record,
        "provenance": _json_able("provenance", provenance),
        "optimizer_state": optimizer_state,
        "extra": _json_able("extra", extra),
    }
    write_atomically_with(path, lambda f: torch.save(checkpoint, f))
    return Path(path)


def checkpoint_from_onnx(path: str | Path) -> dict:
    """A checkpoint rebuilt from a model file that `binpick export` wrote: its metadata holds the
    network config, preprocessing and provenance, and its initializers the weights under their
    parameter names ("model." + the state-dict key). So a bundled model can be fine-tuned or
    warm-started from the ONNX file alone, without keeping a second 8 MB copy of its weights.
    What is lost: the optimizer state (training restarts Adam's moments) and denormal weights,
    which the export flushed to zero. An export shares parameters that are exactly equal (an
    untrained network's zero biases): such a file is refused with a pointer to the .pt."""
    import onnx
    from onnx import numpy_helper

    from binpick_core.model_file import read_model_info

    path = Path(path)
    try:
        info = read_model_info(path)
    except ModelFileError as exc:
        raise CheckpointError(str(exc)) from None
    config = NetworkConfig(info.variant, info.width, info.channels, info.encoder).validate()
    weights = {i.name: i for i in onnx.load(str(path), load_external_data=False).graph.initializer}
    state_dict = {}
    for key, value in BicameralNet(config).state_dict().items():
        found = weights.get(f"model.{key}")
        if found is None:
            raise CheckpointError(
                f"checkpoint '{path}': the ONNX file has no initializer 'model.{key}' (weights folded or "
                "renamed by the export); use the run's .pt checkpoint"
            )
        state_dict[key] = torch.from_numpy(numpy_helper.to_array(found).copy()).reshape(value.shape)
    return {
        "format": FORMAT,
        "version": VERSION,
        "config": config.to_dict(),
        "state_dict": state_dict,
        "preprocess": info.preprocess.to_dict(),
        "provenance": {**info.provenance, "weights_from": str(path)},
        "optimizer_state": None,
        "extra": {},
    }


ZIP_MAGIC = b"PK\x03\x04"  # torch.save writes a zip archive (since PyTorch 1.6)


def _check_archive(path: Path) -> None:
    """Name the usual wrong files before torch.load, whose errors are long and misleading."""
    try:
        with path.open("rb") as f:
            head = f.read(64)
    except OSError as exc:
        raise CheckpointError(f"checkpoint '{path}' cannot be read: {exc.strerror}") from None
    if not head:
        raise CheckpointError(f"checkpoint '{path}' cannot be read: the file is empty (0 bytes)")
    if head.startswith(ZIP_MAGIC):
        return
    if head[0] == 0x08 and b"\x12" in head[2:4]:  # protobuf: ir_version, then producer_name
        raise CheckpointError(
            f"checkpoint '{path}' cannot be read: it looks like an ONNX model, "
            "not a PyTorch checkpoint (name it .onnx)"
        )
    raise CheckpointError(
        f"checkpoint '{path}' cannot be read: not a PyTorch checkpoint (torch.save writes a zip archive)"
    )


def read_checkpoint(path: str | Path) -> dict:
    """The validated checkpoint dict (no model built); an exported `.onnx` model also reads as one
    (`checkpoint_from_onnx`)."""
    path = Path(path)
    if path.is_dir():
        raise CheckpointError(f"checkpoint '{path}' is a folder, expected a checkpoint file (.pt or .onnx)")
    if not path.is_file():
        raise CheckpointError(f"checkpoint '{path}' does not exist")
    if path.suffix.lower() == ".onnx":
        return checkpoint_from_onnx(path)
    _check_archive(path)
    try:
        data = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:
        # torch appends paragraphs of advice (re-run with weights_only=False, which would run
        # arbitrary code from the file): the first line says what is wrong.
        first = next((line.strip() for line in str(exc).splitlines() if line.strip()), type(exc).__name__)
        raise CheckpointError(f"checkpoint '{path}' cannot be read: {first}") from None
    if not isinstance(data, dict) or data.get("format") != FORMAT:
        raise CheckpointError(f"checkpoint '{path}': 'format' is not {FORMAT!r} (not a binpick checkpoint)")
    if data.get("version") != VERSION:
        raise CheckpointError(
            f"checkpoint '{path}': 'version' = {data.get('version')!r}, this code reads {VERSION}"
        )
    for key in ("config", "state_dict", "preprocess", "provenance"):
        if not isinstance(data.get(key), dict):
            raise CheckpointError(f"checkpoint '{path}': key '{key}' is missing or not a dict")
    try:
        config = NetworkConfig.from_dict(data["config"])
        Preprocess.from_dict(data["preprocess"], config.in_channels)
    except (TypeError, ValueError) as exc:
        raise CheckpointError(f"checkpoint '{path}': {exc}") from None
    return data


def load_checkpoint(path: str | Path, device: str | torch.device = "cpu") -> tuple[BicameralNet, dict]:
    """Rebuild the network from a checkpoint (eval mode); returns (model, checkpoint dict)."""
    data = read_checkpoint(path)
    return network_from_checkpoint(data, path, device), data


def network_from_checkpoint(data: dict, path: str | Path, device: str | torch.device = "cpu") -> BicameralNet:
    """The network (eval mode) of a checkpoint dict `read_checkpoint` returned for `path` (named in
    the errors): for a caller that has read the file already, so that it is not read twice."""
    model = BicameralNet(NetworkConfig.from_dict(data["config"]))
    try:
        model.load_state_dict(data["state_dict"])
    except RuntimeError as exc:
        raise CheckpointError(
            f"checkpoint '{path}': state_dict does not fit config {data['config']}: {exc}"
        ) from None
    return model.to(device).eval()


def checkpoint_preprocess(data: dict) -> Preprocess:
    config = NetworkConfig.from_dict(data["config"])
    return Preprocess.from_dict(data["preprocess"], config.in_channels)
