"""The two ways `binpick eval` runs a model agree: a checkpoint in PyTorch and its ONNX export
in ONNX Runtime (through the appliance's `binpick_core.model_file` preprocessing), for RGB-D input too."""

from __future__ import annotations

import numpy as np
import pytest
from training_scenes import mikado_scenes

from bicameral.data import list_scenes, read_scene
from bicameral.evaluation.predictors import CheckpointPredictor, OnnxPredictor, load_predictor
from bicameral.export import export_checkpoint
from bicameral.train import TrainConfig, train


@pytest.mark.parametrize("input_kind", ["rgb", "rgbd"])
def test_checkpoint_and_onnx_predictions_agree(tmp_path_factory, tmp_path, input_kind):
    data = mikado_scenes(tmp_path_factory.getbasetemp())
    train(
        TrainConfig(
            data=str(data), out_dir=str(tmp_path), iterations=1, width=0.0625, crop=32, batch_size=2,
            workers=0, progress=False, input_kind=input_kind, depth_noise=input_kind == "rgbd",
        )
    )  # fmt: skip
    export_checkpoint(tmp_path / "best.pt", tmp_path / "m.onnx")  # dynamic H, W
    torch_side = load_predictor(tmp_path / "best.pt", "cpu")
    onnx_side = load_predictor(tmp_path / "m.onnx")
    assert isinstance(torch_side, CheckpointPredictor) and isinstance(onnx_side, OnnxPredictor)
    assert torch_side.input_kind == onnx_side.input_kind == input_kind
    scene = read_scene(list_scenes(data)[0])
    b1, o1 = torch_side(scene.rgb, scene.depth_m)
    b2, o2 = onnx_side(scene.rgb, scene.depth_m)
    assert b1.shape == b2.shape == scene.rgb.shape[:2]
    np.testing.assert_allclose(b1, b2, atol=1e-4)
    np.testing.assert_allclose(o1, o2, atol=1e-4)
    assert onnx_side.description["provenance"]["input"] == input_kind
