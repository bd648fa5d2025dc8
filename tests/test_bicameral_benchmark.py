"""benchmarks/inference.py runs end to end on a tiny configuration and writes its JSON."""

from __future__ import annotations

import importlib.util
import json
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


def test_inference_benchmark_smoke(tmp_path) -> None:
    out = tmp_path / "bench.json"
    cmd = [sys.executable, "-m", "benchmarks.inference", "--device", "cpu", "--widths", "F25",
           "--sizes", "32", "--repeats", "1", "--json", str(out)]  # fmt: skip
    done = subprocess.run(cmd, capture_output=True, text=True, timeout=240, cwd=ROOT)
    assert done.returncode == 0, done.stderr
    assert "machine: cpu=" in done.stdout and "torch/ORT" in done.stdout
    result = json.loads(out.read_text())
    (row,) = result["cpu"]
    assert row["width"] == "F25" and row["size"] == 32 and row["parameters"] == 2_145_426
    assert row["torch_eager_ms"] > 0 and row["onnxruntime_ms"] > 0
    ratio = row["torch_eager_ms"] / row["onnxruntime_ms"]  # of the rounded figures
    assert abs(row["torch_over_ort"] - ratio) <= 0.01 * ratio
    assert result["machine"]["physical_cores"] >= 1
    # The shipped model's table: ORT fp32 first, every row timed, the compute floor last.
    (shipped,) = result["shipped"]
    names = [r["backend"] for r in shipped["rows"]]
    assert names[0] == "onnxruntime fp32" and names[-1].startswith("compute floor")
    assert all(r["ms"] > 0 for r in shipped["rows"]) and shipped["gflop"] > 0 and shipped["sgemm_gflops"] > 0
    assert shipped["rows"][0]["speedup_vs_ort_fp32"] == 1.0


def test_inference_benchmark_times_an_rgbd_model_beside_its_int8_file() -> None:
    """--model takes a depth model (a depth frame is made for it) and its _int8.onnx beside it."""
    model = ROOT / "models" / "bicameral_f25_rgbd.onnx"
    cmd = [sys.executable, "-m", "benchmarks.inference", "--device", "cpu", "--widths", "--sizes", "32",
           "--repeats", "1", "--model", str(model)]  # fmt: skip
    done = subprocess.run(cmd, capture_output=True, text=True, timeout=240, cwd=ROOT)
    assert done.returncode == 0, done.stderr
    assert "models/bicameral_f25_rgbd.onnx at 32x32" in done.stdout and "Untrained" not in done.stdout
    assert "onnxruntime fp32" in done.stdout
    if importlib.util.find_spec("openvino") and (ROOT / "models" / "bicameral_f25_rgbd_int8.onnx").is_file():
        assert "openvino int8" in done.stdout, done.stdout


@pytest.mark.slow
@pytest.mark.skipif(importlib.util.find_spec("mujoco") is None, reason="needs the sim extra (Mikado)")
def test_cycle_benchmark_runs_a_shipped_configuration() -> None:
    """--config: the embedded default's camera and RGB-D model, its listeners off, int8 beside it."""
    cmd = [sys.executable, "-m", "benchmarks.cycle", "--config", "firmware_config/embedded.toml",
           "--cycles", "1", "--warmup", "0", "--backends", "onnxruntime", "openvino-int8"]  # fmt: skip
    done = subprocess.run(cmd, capture_output=True, text=True, timeout=280, cwd=ROOT)
    assert done.returncode == 0, done.stderr
    assert "model: bicameral_f25_rgbd.onnx" in done.stdout and "embedded.toml" in done.stdout
    assert "| onnxruntime | fp32 |" in done.stdout and "{'ok': 1}" in done.stdout, done.stdout


def torch_has_cuda() -> bool:
    if importlib.util.find_spec("torch") is None:
        return False
    import torch

    return torch.cuda.is_available()


@pytest.mark.skipif(torch_has_cuda(), reason="CUDA is available here: nothing to refuse")
def test_cuda_request_without_gpu_is_a_clear_error() -> None:
    cmd = [sys.executable, "-m", "benchmarks.inference", "--device", "cuda"]
    done = subprocess.run(cmd, capture_output=True, text=True, timeout=120, cwd=ROOT)
    assert done.returncode == 2 and "torch.cuda.is_available() is False" in done.stderr


@pytest.mark.parametrize("sizes", [["--sizes", "32", "40"], ["--sizes", "32", "--shipped-sizes", "32", "40"]])
def test_inference_benchmark_refuses_a_size_before_timing_any(
    sizes: list[str], monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture
) -> None:
    """A size the dynamic model cannot take (not a multiple of 16) was found only when its turn
    came: after the sizes before it had been timed, their figures then lost to the error."""
    import benchmarks.inference as bench

    def must_not_run(*args, **kwargs):
        raise AssertionError("a table was timed before the bad size was refused")

    monkeypatch.setattr(bench, "bench_shipped", must_not_run)
    monkeypatch.setattr(bench, "bench_cpu", must_not_run)
    with pytest.raises(SystemExit) as stop:
        bench.main(["--device", "cpu", "--widths", "--repeats", "1", *sizes])
    assert stop.value.code == 2
    assert "size 40: the shipped model is dynamic" in capsys.readouterr().err
