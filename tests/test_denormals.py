"""Denormal weights: flushed and counted at export (metadata written), flushed in memory with a
warning at load (ONNX Runtime and PyTorch backends), and the outputs unchanged (edge.denormals)."""

from __future__ import annotations

import logging
from pathlib import Path

import numpy as np
import onnx
import onnxruntime as ort
import pytest
from onnx import numpy_helper

from edge.denormals import METADATA_KEY, count_denormals, denormal_mask

pytestmark = pytest.mark.timeout(180)
torch = pytest.importorskip("torch")

PLANTED = 1000  # denormal values written into two convolutions' weights


def plant(values: np.ndarray, count: int, seed: int) -> np.ndarray:
    """`count` entries of `values` (distinct positions) replaced by subnormal float32 numbers."""
    rng = np.random.default_rng(seed)
    flat = values.reshape(-1).copy()
    where = rng.choice(flat.size, count, replace=False)
    flat[where] = rng.uniform(1e-42, 1e-39, count).astype(np.float32) * rng.choice([-1, 1], count)
    assert denormal_mask(flat[where]).all()
    return flat.reshape(values.shape)


@pytest.fixture(scope="module")
def planted_checkpoint(tmp_path_factory) -> tuple[Path, int]:
    """An untrained F25 checkpoint with PLANTED denormal weights; returns it and its total count."""
    from bicameral import build_network, initialise, save_checkpoint
    from binpick_core.model_file import default_preprocess

    torch.manual_seed(0)
    model = initialise(build_network("bicameral", "F25"))
    convs = [m for m in model.modules() if isinstance(m, torch.nn.Conv2d) and m.weight.numel() >= PLANTED]
    with torch.no_grad():
        for i, conv in enumerate(convs[:2]):
            conv.weight.copy_(torch.from_numpy(plant(conv.weight.numpy(), PLANTED // 2, i)))
    already = sum(int(denormal_mask(p.detach().numpy()).sum()) for p in model.parameters())
    path = tmp_path_factory.mktemp("denormal") / "planted.pt"
    save_checkpoint(path, model, model.config, default_preprocess("rgb"), {"dataset": "test"})
    return path, already


def test_export_flushes_denormals_counts_them_and_records_the_count(planted_checkpoint, tmp_path):
    from bicameral.export import export_checkpoint

    ckpt, planted = planted_checkpoint
    assert planted >= PLANTED
    out = tmp_path / "m.onnx"
    report = export_checkpoint(ckpt, out, height=32, width=32, model_id=7)
    assert report.denormals_flushed == planted
    proto = onnx.load(str(out))
    props = {p.key: p.value for p in proto.metadata_props}
    assert props[METADATA_KEY] == str(planted)
    assert count_denormals(proto)[0] == 0  # none left in the file
    assert report.max_abs_diff is not None and report.max_abs_diff <= 1e-4  # vs unflushed PyTorch


def test_reexporting_an_onnx_flushes_it_and_keeps_every_metadata_key(tmp_path, capsys):
    from edge.cli import main as cli_main

    source, planted = denormal_onnx(tmp_path)
    out = tmp_path / "fixed.onnx"
    assert cli_main(["export", "--checkpoint", str(source), "--onnx", str(out)]) == 0
    assert f"flushed to zero: {planted} of" in capsys.readouterr().out
    before = {p.key: p.value for p in onnx.load(str(source)).metadata_props}
    after = {p.key: p.value for p in onnx.load(str(out)).metadata_props}
    assert after == {**before, METADATA_KEY: str(planted)}
    assert count_denormals(onnx.load(str(out)))[0] == 0


def denormal_onnx(folder: Path) -> tuple[Path, int]:
    """The tiny test model with denormals planted straight into its ONNX initializers."""
    from appliance_helpers import tiny_model

    proto = onnx.load(str(tiny_model(folder)))
    convs = [t for t in proto.graph.initializer if len(t.dims) == 4 and np.prod(t.dims) >= 600][:2]
    for i, tensor in enumerate(convs):
        tensor.CopyFrom(numpy_helper.from_array(plant(numpy_helper.to_array(tensor), 300, i), tensor.name))
    path = folder / "denormal.onnx"
    onnx.save(proto, str(path))
    count = count_denormals(proto)[0]
    assert count >= 600
    return path, count


def test_onnxruntime_backend_warns_with_the_count_and_runs_the_flushed_weights(tmp_path, caplog):
    from edge.inference.onnxruntime_backend import OnnxRuntimeBackend

    path, planted = denormal_onnx(tmp_path)
    with caplog.at_level(logging.WARNING, logger="edge.denormals"):
        backend = OnnxRuntimeBackend(str(path), threads=1)
    assert backend.denormals_flushed == planted
    assert f"{planted} of" in caplog.text and "denormal" in caplog.text and str(path) in caplog.text
    assert backend.describe()["denormals_flushed_at_load"] == planted
    # Its maps are those of the file with the weights zeroed (and of the unflushed file, to 1e-5).
    flushed = onnx.load(str(path))
    for tensor in flushed.graph.initializer:
        values = numpy_helper.to_array(tensor)
        if values.dtype == np.float32:
            tensor.CopyFrom(numpy_helper.from_array(np.where(denormal_mask(values), 0, values), tensor.name))
    x = np.random.default_rng(3).standard_normal((1, 3, 64, 64), dtype=np.float32)
    got = backend.infer(x)
    for model, atol in ((flushed.SerializeToString(), 0), (str(path), 1e-5)):
        ref = ort.InferenceSession(model, providers=["CPUExecutionProvider"]).run(None, {"image": x})
        np.testing.assert_allclose(got[0], ref[0][0, 0], atol=atol)
        np.testing.assert_allclose(got[1], ref[1][0, 0], atol=atol)


def test_a_clean_model_loads_without_a_warning(tmp_path, caplog):
    from appliance_helpers import tiny_model

    from edge.inference.onnxruntime_backend import OnnxRuntimeBackend

    with caplog.at_level(logging.WARNING, logger="edge.denormals"):
        backend = OnnxRuntimeBackend(str(tiny_model(tmp_path)), threads=1)
    assert backend.denormals_flushed == 0 and "denormal" not in caplog.text


def test_torch_backend_flushes_the_checkpoint_in_memory_and_sets_flush_to_zero(planted_checkpoint, caplog):
    from edge.inference.torch_backend import TorchBackend

    ckpt, planted = planted_checkpoint
    with caplog.at_level(logging.WARNING, logger="edge.inference.torch_backend"):
        backend = TorchBackend(str(ckpt), threads=1)
    try:
        assert backend.denormals_flushed == planted and f"{planted} of" in caplog.text
        assert not any(denormal_mask(p.detach().numpy()).any() for p in backend.model.parameters())
        # x86 has FTZ/DAZ; the call reports False where the CPU has no such mode.
        assert backend.describe()["flush_denormal"] is torch.set_flush_denormal(True)
    finally:
        torch.set_flush_denormal(False)


def test_model_card_reports_the_flush_and_the_scores_before_and_after():
    from bicameral.model_card import render_model_card

    def scores(ods: float) -> dict:
        return {
            k: {"ods": ods, "ois": ods, "ap": ods - 0.05, "ap60": ods - 0.1}
            for k in ("boundaries", "occlusions")
        }

    facts = {
        "file": "m.onnx", "variant": "bicameral", "width": 0.25, "encoder": "vgg16", "input": "rgb",
        "input_size": "dynamic", "model_id": 1, "provenance": {}, "denormals_flushed": 168111,
    }  # fmt: skip
    card = render_model_card(facts, scores(0.6881), before=scores(0.6879))
    assert "set 168111 denormal float32 weights to zero" in card
    assert "| boundaries | 0.6879 | 0.6881 | 0.6379 | 0.6381 |" in card
    assert "Denormal weights" not in render_model_card({**facts, "denormals_flushed": None}, scores(0.6))
    assert "| Initialisation | from scratch (no pretrained weights) |" in card
    warm = {
        "finetuned_from": "rgb.pt",
        "frozen_blocks": 0,
        "pretraining": {"iterations": 13000, "input": "rgb"},
    }
    card = render_model_card({**facts, "provenance": warm}, scores(0.6))
    assert "| Initialisation | from rgb.pt (13000 iterations, input rgb); 0 encoder blocks frozen |" in card


def test_loading_a_model_leaves_numpy_silent_under_the_sessions_flush_to_zero():
    """ORT's `set_denormal_as_zero` turns on FTZ in the thread that creates the session; NumPy's
    lazily computed float limits then read a zero subnormal and warn on the appliance's first
    cycle (`np.median` imports numpy.ma). A fresh interpreter, warnings as errors."""
    import subprocess
    import sys

    model = Path(__file__).resolve().parents[1] / "models" / "bicameral_f25_rgb.onnx"
    script = (
        "import numpy as np\n"
        "from edge.inference.onnxruntime_backend import OnnxRuntimeBackend\n"
        f"OnnxRuntimeBackend({str(model)!r}, threads=1)\n"
        "assert np.float64(5e-324) * 1.0 == 0, 'the session no longer sets FTZ: this test tests nothing'\n"
        "print(np.median(np.arange(5.0)))\n"
    )
    done = subprocess.run(
        [sys.executable, "-W", "error::UserWarning", "-c", script],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr[-2000:]
    assert done.stdout.strip() == "2.0"
