"""`binpick export`: graph checks, no MaxUnpool, metadata contract, ORT == PyTorch, torch-free use."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import onnx
import onnxruntime as ort
import pytest
import torch

from bicameral import build_network, initialise, save_checkpoint
from bicameral.export import export_checkpoint
from binpick_core.model_file import default_preprocess

ROOT = Path(__file__).resolve().parents[1]
PROVENANCE = {"dataset": "mikado-smoke", "preset": "mikado+", "iterations": 0, "git_commit": "test"}
CONTRACT_KEYS = {
    "binpick.format", "binpick.variant", "binpick.width", "binpick.encoder", "binpick.input",
    "binpick.channels", "binpick.input_height", "binpick.input_width", "binpick.preprocess",
    "binpick.model_id", "binpick.provenance",
}  # fmt: skip

# Operators of the exported graphs, all in TensorRT's ONNX parser support matrix (onnx-tensorrt
# docs/operators.md, TensorRT 8.2 and later). MaxUnpool and CumSum are deliberately absent.
TENSORRT_OPS = {
    "Cast", "Concat", "Constant", "ConstantOfShape", "Conv", "DepthToSpace", "Div", "Equal", "Gather",
    "Identity", "MaxPool", "Mod", "Mul", "Neg", "Pad", "ReduceMax", "Relu", "Reshape", "Resize", "Shape",
    "Sigmoid", "Slice", "Split", "Squeeze", "Sub", "Transpose", "Unsqueeze",
}  # fmt: skip


@pytest.fixture(scope="module")
def f25(tmp_path_factory) -> tuple[Path, torch.nn.Module]:
    torch.manual_seed(0)
    model = initialise(build_network("bicameral", "F25"))
    path = tmp_path_factory.mktemp("ckpt") / "f25.pt"
    save_checkpoint(path, model, model.config, default_preprocess("rgb"), PROVENANCE)
    return path, model.eval()


def run_ort(path: Path, x: np.ndarray) -> list[np.ndarray]:
    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    return session.run(["boundaries", "occlusions"], {"image": x})


def torch_probabilities(model: torch.nn.Module, x: np.ndarray) -> list[np.ndarray]:
    with torch.no_grad():
        return [torch.sigmoid(t).numpy() for t in model(torch.from_numpy(x))]


def test_static_export_contract(f25, tmp_path) -> None:
    ckpt, model = f25
    out = tmp_path / "model.onnx"
    report = export_checkpoint(ckpt, out, height=48, width=64, model_id=4242)
    proto = onnx.load(str(out))
    onnx.checker.check_model(proto, full_check=True)
    assert proto.opset_import[0].version >= 17
    ops = {n.op_type for n in proto.graph.node}
    assert "MaxUnpool" not in ops and "DepthToSpace" in ops  # exact mask unpooling instead
    assert ops <= TENSORRT_OPS, ops - TENSORRT_OPS
    assert [i.name for i in proto.graph.input] == ["image"]
    assert [o.name for o in proto.graph.output] == ["boundaries", "occlusions"]
    props = {p.key: p.value for p in proto.metadata_props}
    assert set(props) >= CONTRACT_KEYS
    assert props["binpick.format"] == "1" and props["binpick.variant"] == "bicameral"
    assert float(props["binpick.width"]) == 0.25 and props["binpick.encoder"] == "vgg16"
    assert (props["binpick.input"], props["binpick.channels"]) == ("rgb", "3")
    assert (props["binpick.input_height"], props["binpick.input_width"]) == ("48", "64")
    assert props["binpick.model_id"] == "4242"
    assert json.loads(props["binpick.provenance"]) == PROVENANCE
    pre = json.loads(props["binpick.preprocess"])
    assert (
        pre["channel_order"] == "RGB"
        and pre["rgb_scale"] == pytest.approx(1 / 255)
        and pre["depth_unit"] == "m"
    )
    x = np.random.default_rng(1).normal(size=(2, 3, 48, 64)).astype(np.float32)
    got, expected = run_ort(out, x), torch_probabilities(model, x)
    for g, e in zip(got, expected, strict=True):
        assert g.shape == (2, 1, 48, 64) and g.dtype == np.float32
        assert np.abs(g - e).max() <= 1e-4
        assert g.min() >= 0 and g.max() <= 1
    assert report.max_abs_diff is not None and report.max_abs_diff <= 1e-4


def test_dynamic_and_odd_sizes(f25, tmp_path) -> None:
    ckpt, model = f25
    export_checkpoint(ckpt, tmp_path / "dyn.onnx")
    rng = np.random.default_rng(2)
    for h, w in ((32, 48), (64, 32)):
        x = rng.normal(size=(1, 3, h, w)).astype(np.float32)
        for g, e in zip(run_ort(tmp_path / "dyn.onnx", x), torch_probabilities(model, x), strict=True):
            assert g.shape == (1, 1, h, w) and np.abs(g - e).max() <= 1e-4
    props = {p.key: p.value for p in onnx.load(str(tmp_path / "dyn.onnx")).metadata_props}
    assert props["binpick.input_height"] == props["binpick.input_width"] == "0"
    export_checkpoint(ckpt, tmp_path / "odd.onnx", height=37, width=45)  # padded and cropped in-graph
    for name in ("dyn.onnx", "odd.onnx"):
        ops = {n.op_type for n in onnx.load(str(tmp_path / name)).graph.node}
        assert "MaxUnpool" not in ops and ops <= TENSORRT_OPS, ops - TENSORRT_OPS
    x = rng.normal(size=(1, 3, 37, 45)).astype(np.float32)
    for g, e in zip(run_ort(tmp_path / "odd.onnx", x), torch_probabilities(model, x), strict=True):
        assert g.shape == (1, 1, 37, 45) and np.abs(g - e).max() <= 1e-4


def test_fp16_export_runs_with_float32_io(f25, tmp_path) -> None:
    ckpt, model = f25
    report = export_checkpoint(ckpt, tmp_path / "h.onnx", height=32, width=32, fp16=True)
    assert report.max_abs_diff is not None and report.max_abs_diff <= 2e-2
    x = np.zeros((1, 3, 32, 32), np.float32)
    assert all(o.dtype == np.float32 for o in run_ort(tmp_path / "h.onnx", x))
    assert next(model.parameters()).dtype == torch.float32  # the source model is left in fp32


def test_exported_f25_runs_without_torch(f25, tmp_path) -> None:
    """The appliance path: binpick_core.model_file + onnxruntime in a fresh process without torch."""
    ckpt, model = f25
    onnx_path = tmp_path / "appliance.onnx"
    export_checkpoint(ckpt, onnx_path, height=48, width=64, model_id=7)
    rgb = np.random.default_rng(3).integers(0, 256, size=(48, 64, 3), dtype=np.uint8)
    np.save(tmp_path / "rgb.npy", rgb)
    script = textwrap.dedent(
        f"""
        import sys
        import numpy as np
        import onnxruntime as ort
        from binpick_core.model_file import preprocess, read_model_info
        info = read_model_info({str(onnx_path)!r})
        assert (info.variant, info.width, info.model_id, info.input_kind) == ("bicameral", 0.25, 7, "rgb")
        x = preprocess(info, np.load({str(tmp_path / "rgb.npy")!r}), None)
        session = ort.InferenceSession(str(info.path), providers=["CPUExecutionProvider"])
        boundaries, occlusions = session.run(["boundaries", "occlusions"], {{"image": x}})
        np.save({str(tmp_path / "out.npy")!r}, np.stack([boundaries, occlusions]))
        assert "torch" not in sys.modules, "the appliance path imported torch"
        print("ok", x.shape, boundaries.shape)
        """
    )
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    done = subprocess.run(
        [sys.executable, "-c", script], env=env, capture_output=True, text=True, timeout=120
    )
    assert done.returncode == 0, done.stderr
    assert "ok (1, 3, 48, 64) (1, 1, 48, 64)" in done.stdout
    # Independent PyTorch reference of the contract's normalisation.
    mean = torch.tensor([0.485, 0.456, 0.406]).view(1, 3, 1, 1)
    std = torch.tensor([0.229, 0.224, 0.225]).view(1, 3, 1, 1)
    x = (torch.from_numpy(rgb).permute(2, 0, 1)[None].float() / 255 - mean) / std
    expected = np.stack(torch_probabilities(model, x.numpy()))
    assert np.abs(np.load(tmp_path / "out.npy") - expected).max() <= 1e-4


def test_cli_export_and_errors(f25, tmp_path) -> None:
    ckpt, _ = f25
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    cmd = [
        sys.executable,
        "-m",
        "edge",
        "export",
        "--checkpoint",
        str(ckpt),
        "--onnx",
        str(tmp_path / "c.onnx"),
    ]
    done = subprocess.run([*cmd, "--height", "32", "--width", "48", "--model-id", "3"], env=env,
                          capture_output=True, text=True, timeout=120)  # fmt: skip
    assert done.returncode == 0, done.stderr
    assert "32x48" in done.stdout and (tmp_path / "c.onnx").is_file()
    bad = subprocess.run([*cmd, "--model-id", "70000"], env=env, capture_output=True, text=True, timeout=120)
    assert bad.returncode == 2 and bad.stderr.strip() == (
        "binpick export: error: model id 70000 out of range 0..65535 (a PLC register)"
    )
    missing = [
        sys.executable,
        "-m",
        "edge",
        "export",
        "--checkpoint",
        str(tmp_path / "no.pt"),
        "--onnx",
        "x.onnx",
    ]
    bad = subprocess.run(missing, env=env, capture_output=True, text=True, timeout=120)
    assert bad.returncode == 2 and "no.pt' does not exist" in bad.stderr and "Traceback" not in bad.stderr


def test_an_exported_model_reads_back_as_its_checkpoint(tmp_path) -> None:
    from bicameral.checkpoint import CheckpointError, load_checkpoint, read_checkpoint

    model = build_network("bicameral", "F25")
    with torch.no_grad():  # trained weights: no two parameters alike (an export shares equal ones)
        for value in model.parameters():
            value.copy_(torch.randn_like(value) * 0.05)
    ckpt = save_checkpoint(
        tmp_path / "trained.pt", model, model.config, default_preprocess("rgb"), PROVENANCE
    )
    out = tmp_path / "model.onnx"
    export_checkpoint(ckpt, out, model_id=7)  # dynamic size
    rebuilt, data = load_checkpoint(out)
    assert rebuilt.config == model.config and data["optimizer_state"] is None
    assert data["preprocess"] == default_preprocess("rgb").to_dict()
    assert data["provenance"]["dataset"] == "mikado-smoke" and data["provenance"]["weights_from"] == str(out)
    for key, value in model.state_dict().items():  # denormals aside (flushed by the export), equal
        torch.testing.assert_close(rebuilt.state_dict()[key], value, atol=1e-30, rtol=0)
    proto = onnx.load(str(out))
    proto.graph.initializer[0].name = "renamed"
    onnx.save(proto, str(tmp_path / "folded.onnx"))
    with pytest.raises(CheckpointError, match="has no initializer 'model.encoder.convs.0.weight'"):
        read_checkpoint(tmp_path / "folded.onnx")


def test_near_tie_follows_ort_and_a_clear_disagreement_fails() -> None:
    """The check's tie rule alone: PyTorch takes ONNX Runtime's pick in a window whose top two
    differ by float32 rounding, and refuses a pick elsewhere (an export bug, not rounding)."""
    from bicameral.export_check import TieFollower

    windows = torch.tensor([[0.5, 0.0, 0.5 + 6e-7, 0.0], [0.9, 0.1, 0.2, 0.3]]).T.reshape(1, 1, 4, 1, 2)
    ours = windows == windows.amax(dim=2, keepdim=True)
    near = ours.clone()
    near[0, 0, :, 0, 0] = torch.tensor([True, False, False, False])  # ORT: the other of the near-tie
    follower = TieFollower([near.numpy()], fp16=False)
    assert torch.equal(follower(windows, ours), near) and follower.near_ties == 1
    clear = ours.clone()
    clear[0, 0, :, 0, 1] = torch.tensor([False, False, False, True])  # 0.3 is not the max of 0.9
    with pytest.raises(RuntimeError, match="no near-ties"):
        TieFollower([clear.numpy()], fp16=False)(windows, ours)


def test_check_fails_for_a_genuinely_wrong_export(f25, tmp_path, monkeypatch) -> None:
    """An exported graph whose probabilities are off by 1e-3 (here: a bias the network lacks)
    is refused and nothing is written, tie handling or not."""
    from bicameral import export

    forward = export.ProbabilityGraph.forward

    def off(self, image):
        boundaries, occlusions = forward(self, image)
        return boundaries + 1e-3, occlusions

    monkeypatch.setattr(export.ProbabilityGraph, "forward", off)
    ckpt, _ = f25
    with pytest.raises(RuntimeError, match="differs from PyTorch"):
        export_checkpoint(ckpt, tmp_path / "bad.onnx", height=32, width=48)
    assert not (tmp_path / "bad.onnx").exists()


def test_last_instead_of_first_maximum_in_the_graph_fails(f25, tmp_path, monkeypatch) -> None:
    """Exact ties (windows of ReLU zeros) are not near-ties to be forgiven: a graph that unpools
    to the last maximum instead of PyTorch's first is refused."""
    from bicameral import encoders, export, unpool

    def last_max_mask(pre_pool):
        return unpool.first_max_mask(pre_pool.flip(-1, -2)).flip(-1, -2)

    to_onnx = export.to_onnx

    def wrong_export(*args, **kwargs):
        with monkeypatch.context() as patch:
            patch.setattr(encoders, "first_max_mask", last_max_mask)
            return to_onnx(*args, **kwargs)

    monkeypatch.setattr(export, "to_onnx", wrong_export)
    ckpt, _ = f25
    with pytest.raises(RuntimeError, match="differs from PyTorch|max-pooling picks other positions"):
        export_checkpoint(ckpt, tmp_path / "bad.onnx", height=32, width=48)


@pytest.mark.slow
def test_shipped_model_exports_at_the_default_512(tmp_path) -> None:
    """The documented example: at 512x512 one pooling window of the seeded check input is a
    near-tie that ONNX Runtime resolves the other way (was: 'differs from PyTorch by 0.000524')."""
    report = export_checkpoint(ROOT / "models" / "bicameral_f25_rgb.pt", tmp_path / "m.onnx", 512, 512)
    assert report.max_abs_diff is not None and report.max_abs_diff <= 1e-4


def test_export_checks_its_output_before_exporting(f25, tmp_path, capsys) -> None:
    """`--onnx W/afile/x.onnx` said "W/afile: File exists" and `--onnx W/m` (a folder) "Is a
    directory", naming no flag; `--onnx` equal to the checkpoint would replace it. A re-export of
    an .onnx in place stays allowed (the same model, its denormals flushed)."""
    from edge.cli import main as binpick

    ckpt, _ = f25
    afile = tmp_path / "afile"
    afile.write_text("")
    cases = [
        (afile / "x.onnx", f"--onnx {afile / 'x.onnx'}: {afile} is a file, expected a folder"),
        (tmp_path, f"--onnx {tmp_path}: is a folder, expected a file to write"),
        (ckpt, f"--onnx {ckpt}: the same file as --checkpoint {ckpt}, which it would replace"),
    ]
    for out, message in cases:
        assert binpick(["export", "--checkpoint", str(ckpt), "--onnx", str(out), "--no-verify"]) == 2
        assert message in capsys.readouterr().err
    model = tmp_path / "m.onnx"
    assert (
        binpick(
            ["export", "--checkpoint", str(ckpt), "--onnx", str(model), "--height", "32", "--width", "32"]
        )
        == 0
    )
    assert binpick(["export", "--checkpoint", str(model), "--onnx", str(model)]) == 0
