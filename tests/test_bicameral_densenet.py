"""The optional DenseNet121 encoder: torchvision-format weights load, the network exports."""

from __future__ import annotations

import numpy as np
import onnxruntime as ort
import pytest
import torch

from bicameral import build_network, initialise, save_checkpoint
from bicameral.encoders import DenseNet121Encoder
from bicameral.export import export_checkpoint
from bicameral.init import load_state_dict_file
from binpick_core.model_file import default_preprocess, read_model_info


def test_loads_torchvision_state_dict_with_legacy_keys(tmp_path) -> None:
    torch.manual_seed(0)
    source = DenseNet121Encoder()
    for p in source.parameters():
        torch.nn.init.normal_(p)
    state = {f"features.{k}": v for k, v in source.features.state_dict().items()}
    # torchvision's oldest checkpoints spell 'norm1' as 'norm.1': accepted like torchvision does.
    layer = "features.denseblock1.denselayer1"
    state[f"{layer}.norm.1.weight"] = state.pop(f"{layer}.norm1.weight")
    state["classifier.weight"] = torch.zeros(1000, 1024)  # ignored
    torch.save(state, tmp_path / "densenet121.pth")
    encoder = DenseNet121Encoder()
    encoder.load_torchvision(load_state_dict_file(tmp_path / "densenet121.pth"))
    for key, value in source.features.state_dict().items():
        assert torch.equal(encoder.features.state_dict()[key], value), key
    del state[f"{layer}.norm.1.weight"]
    with pytest.raises(KeyError, match="lacks 1 keys"):
        DenseNet121Encoder().load_torchvision(state)


def calibrate_batch_norm(model: torch.nn.Module) -> None:
    """Give BatchNorm the running statistics a trained model has (untrained ones are 0/1, which
    lets 121 layers of activations grow to ~1e6 and makes any float comparison meaningless)."""
    for module in model.modules():
        if isinstance(module, torch.nn.BatchNorm2d):
            module.momentum = None  # cumulative average
    model.train()
    with torch.no_grad():
        for _ in range(3):
            model(torch.randn(2, 3, 32, 64))
    model.eval()


def test_densenet_variant_exports_and_matches(tmp_path) -> None:
    torch.manual_seed(0)
    model = initialise(build_network("bicameral", 0.125, encoder="densenet121"))
    calibrate_batch_norm(model)
    save_checkpoint(tmp_path / "d.pt", model, model.config, default_preprocess("rgb"), {"dataset": "none"})
    export_checkpoint(tmp_path / "d.pt", tmp_path / "d.onnx", height=32, width=64)
    info = read_model_info(tmp_path / "d.onnx")
    assert info.encoder == "densenet121" and info.size_multiple == 32
    x = np.random.default_rng(0).normal(size=(1, 3, 32, 64)).astype(np.float32)
    got = ort.InferenceSession(str(tmp_path / "d.onnx")).run(None, {"image": x})
    with torch.no_grad():
        expected = [torch.sigmoid(t).numpy() for t in model(torch.from_numpy(x))]
    assert all(np.abs(g - e).max() <= 1e-4 for g, e in zip(got, expected, strict=True))
