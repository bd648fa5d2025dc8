"""The `torch-cuda` backend (PyTorch, fp16, channels-last, one CUDA graph) and GPU-resident ranking.

Everywhere: the configuration accepts and refuses the new choice by key, the backend refuses in
one line where CUDA is absent, and the CPU backends keep the CPU ranking (`gpu_ranker` is None).
On a GPU (skipped with the reason elsewhere; scripts/gpu_check.sh sets BINPICK_REQUIRE_GPU=1 so
they fail instead): the backend's maps equal the CPU PyTorch backend's within fp16 tolerance,
and ranking them on the GPU gives exactly the CPU ranking of the same maps.
"""

from __future__ import annotations

import importlib.util
import math
import os
import shutil
from pathlib import Path

import numpy as np
import pytest
from appliance_helpers import tiny_model

from edge.config import ConfigError, InferenceSection, parse_config
from edge.inference import InferenceError, load_backend
from edge.inference.base import InferenceBackend
from edge.inference.predictor import DeviceMaps, Maps, Predictor, gpu_ranker
from edge.ranking import RankingParams, rank
from edge.ranking.cuda import cuda_available

pytestmark = pytest.mark.timeout(180)
ROOT = Path(__file__).resolve().parents[1]
REQUIRE_GPU = os.environ.get("BINPICK_REQUIRE_GPU") == "1"
RANKING_OK, RANKING_WHY = cuda_available()
FP16_ATOL = 2e-2  # sigmoid outputs of an fp16 network against fp32 on the CPU

RGB_MODEL = ROOT / "models" / "bicameral_f25_rgb.onnx"


def torch_has_cuda() -> tuple[bool, str]:
    if importlib.util.find_spec("torch") is None:
        return False, "torch is not installed"
    import torch

    return (True, "") if torch.cuda.is_available() else (False, "torch has no CUDA device")


TORCH_CUDA, TORCH_WHY = torch_has_cuda()
gpu = pytest.mark.skipif(not TORCH_CUDA and not REQUIRE_GPU, reason=TORCH_WHY or "CUDA present")


@pytest.fixture(scope="module")
def model(tmp_path_factory):
    return tiny_model(tmp_path_factory.mktemp("model"))


def config(tmp_path: Path, inference: str):
    (tmp_path / "registers.toml").write_text((ROOT / "firmware_config" / "registers.toml").read_text())
    if not (tmp_path / "m.onnx").exists():
        (tmp_path / "m.onnx").symlink_to(RGB_MODEL)  # a real model: its input kind is checked
    if not (tmp_path / "f25.pt").exists():  # a real checkpoint: its input kind is checked against m.onnx
        shutil.copyfile(ROOT / "models" / "bicameral_f25_rgb.pt", tmp_path / "f25.pt")  # a link would resolve
    text = f'[inference]\nmodel = "m.onnx"\n{inference}\n[plc]\nregisters = "registers.toml"\n'
    return parse_config(text, tmp_path / "cell.toml")


def test_torch_cuda_is_a_backend_choice(tmp_path):
    pytest.importorskip("torch", reason="the loader reads the checkpoint (without torch: the `train` extra)")
    c = config(tmp_path, 'backend = "torch-cuda"\ndevice = "cuda"\nfp16 = true\ntorch_checkpoint = "f25.pt"')
    assert (c.inference.backend, c.inference.device, c.inference.fp16) == ("torch-cuda", "cuda", True)
    assert c.inference.torch_compile is False
    compiled = config(
        tmp_path, 'backend = "torch-cuda"\ndevice = "cuda"\ntorch_checkpoint = "f25.pt"\ntorch_compile = true'
    )
    assert compiled.inference.torch_compile is True
    assert c.inference.torch_checkpoint == str(tmp_path / "f25.pt")
    assert config(tmp_path, 'backend = "torch-cuda"\ndevice = "auto"\ntorch_checkpoint = "f25.pt"')


@pytest.mark.parametrize(
    ("inference", "expected"),
    [
        ('backend = "torch-cuda"\ndevice = "cuda"', r"inference.torch_checkpoint = '': .*'torch-cuda'"),
        ('backend = "torch-cuda"\ntorch_checkpoint = "f25.pt"', r"inference.device = 'cpu': .*'torch-cuda'"),
        ('backend = "torch_cuda"', r"inference.backend = 'torch_cuda': expected one of .*'torch-cuda'"),
        ("torch_compile = true", r"inference.torch_compile = true: only for backend 'torch-cuda'"),
        (
            'backend = "torch-cuda"\ndevice = "cuda"\ntorch_checkpoint = "f25.pt"\ntorch_compile = "yes"',
            r"inference.torch_compile",
        ),
    ],
)
def test_torch_cuda_mistakes_are_named(tmp_path, inference, expected):
    with pytest.raises(ConfigError, match=expected) as err:
        config(tmp_path, inference)
    assert "\n" not in str(err.value)


@pytest.mark.skipif(TORCH_CUDA, reason="CUDA is available here: nothing to refuse")
def test_torch_cuda_without_cuda_is_refused_in_one_line(model):
    cfg = InferenceSection(
        model=str(model), backend="torch-cuda", device="cuda", torch_checkpoint=str(model.parent / "f25.pt")
    )
    with pytest.raises(InferenceError, match=r"inference.backend = 'torch-cuda'") as err:
        load_backend(cfg, (1, 3, 64, 64))
    assert "\n" not in str(err.value)


def test_cpu_backends_keep_the_cpu_ranking(model):
    predictor = Predictor(InferenceSection(model=str(model), threads=1), (64, 64))
    assert predictor.ranker is None and predictor.describe()["ranking"] == "cpu"
    maps = predictor.predict(np.random.default_rng(2).integers(0, 255, (64, 64, 3), dtype=np.uint8))
    assert type(maps) is Maps
    params = RankingParams(alpha=float(np.median(maps.boundaries)), min_area=4, patch=3)
    expected = rank(maps.boundaries, maps.occlusions, params, return_labels=True)
    got = predictor.rank(maps, params)
    assert got.candidates == expected.candidates and got.grasp == expected.grasp
    np.testing.assert_array_equal(got.labels, expected.labels)


@pytest.mark.skipif(RANKING_OK, reason="the CUDA ranking is available here")
def test_gpu_maps_fall_back_to_the_cpu_ranking_without_the_cuda_module():
    class GpuBackend(InferenceBackend):
        name = "fake-gpu"
        keeps_maps_on_gpu = True

        def infer(self, tensor):
            raise AssertionError("not called")

    assert gpu_ranker(GpuBackend()) is None


def torch_cuda_predictor(
    model: Path, fp16: bool = True, tta_views: int = 1, compile: bool = False
) -> Predictor:
    cfg = InferenceSection(
        model=str(model),
        backend="torch-cuda",
        device="cuda",
        fp16=fp16,
        torch_checkpoint=str(model.parent / "f25.pt"),
        tta_views=tta_views,
        torch_compile=compile,
    )
    return Predictor(cfg, (128, 96))


@gpu
@pytest.mark.parametrize("compile", [False, True], ids=["graph", "compiled"])
def test_torch_cuda_maps_equal_the_cpu_torch_maps(model, compile):
    """The captured network (compiled first with inference.torch_compile, or not) gives the
    CPU backend's maps."""
    rgb = np.random.default_rng(1).integers(0, 255, (96, 128, 3), dtype=np.uint8)
    cpu_cfg = InferenceSection(
        model=str(model), backend="torch", torch_checkpoint=str(model.parent / "f25.pt")
    )
    cpu_maps = Predictor(cpu_cfg, (128, 96)).predict(rgb)
    predictor = torch_cuda_predictor(model, compile=compile)
    assert predictor.describe()["precision"] == "fp16"
    assert predictor.describe()["torch_compile"] is compile
    tensor_maps = predictor.backend.infer(np.zeros((1, 3, 64, 64), np.float32))  # the host-copy path too
    assert tensor_maps[0].shape == (64, 64)
    for _ in range(2):  # the graph is replayed, not re-captured: the second frame must agree too
        maps = predictor.predict(rgb)
        assert (maps.scale_x, maps.scale_y) == (cpu_maps.scale_x, cpu_maps.scale_y)
        np.testing.assert_allclose(maps.boundaries, cpu_maps.boundaries, atol=FP16_ATOL)
        np.testing.assert_allclose(maps.occlusions, cpu_maps.occlusions, atol=FP16_ATOL)


@gpu
@pytest.mark.skipif(not RANKING_OK and not REQUIRE_GPU, reason=RANKING_WHY)
def test_gpu_ranking_of_the_maps_equals_the_cpu_ranking(model):
    from test_postprocess_cuda import assert_same

    predictor = torch_cuda_predictor(model)
    assert predictor.ranker is not None and predictor.describe()["ranking"] == "cuda"
    rng = np.random.default_rng(3)
    for frame in range(3):
        maps = predictor.predict(rng.integers(0, 255, (96, 128, 3), dtype=np.uint8))
        assert isinstance(maps, DeviceMaps) and maps.device[0].is_cuda
        alpha = float(maps.device[0].median())  # about half the pixels below alpha: many candidates
        params = RankingParams(alpha=alpha, beta=0.5, min_area=4, max_area=math.inf, patch=3)
        on_gpu = predictor.rank(maps, params)
        on_cpu = rank(maps.boundaries, maps.occlusions, params, return_labels=True)
        assert on_cpu.candidates, "no candidate: the comparison would be empty"
        assert_same(on_cpu, on_gpu, f"frame {frame}")


@gpu
def test_torch_cuda_tta_views_equal_the_cpu_torch_views(model):
    """Four flipped views averaged on the GPU (each view's static output copied before the next
    replay overwrites it) give the CPU backend's four-view average."""
    rgb = np.random.default_rng(5).integers(0, 255, (96, 128, 3), dtype=np.uint8)
    cpu_cfg = InferenceSection(
        model=str(model), backend="torch", torch_checkpoint=str(model.parent / "f25.pt"), tta_views=4
    )
    cpu_maps = Predictor(cpu_cfg, (128, 96)).predict(rgb)
    maps = torch_cuda_predictor(model, tta_views=4).predict(rgb)
    np.testing.assert_allclose(maps.boundaries, cpu_maps.boundaries, atol=FP16_ATOL)
    np.testing.assert_allclose(maps.occlusions, cpu_maps.occlusions, atol=FP16_ATOL)


def test_a_failed_capture_is_refused_in_one_line(model, monkeypatch, caplog):
    """A capture or compiler failure (pages long from Inductor) becomes one line naming the step;
    the log keeps the whole message."""
    torch = pytest.importorskip("torch")
    import bicameral.checkpoint
    import bicameral.graphed
    from edge.inference.torch_backend import TorchCudaBackend

    def failing_capture(*args, **kwargs):
        raise RuntimeError("\nInductor: C++ compile error\n  /tmp/x.cpp:1: error: something\n")

    real_load = bicameral.checkpoint.load_checkpoint
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(
        bicameral.checkpoint, "load_checkpoint", lambda path, device: real_load(path, device="cpu")
    )
    monkeypatch.setattr(bicameral.graphed, "GraphedNetwork", failing_capture)
    with pytest.raises(InferenceError) as err:
        TorchCudaBackend(str(model.parent / "f25.pt"), (1, 3, 64, 64), compile=True)
    assert (
        str(err.value)
        == "torch-cuda: compiling and capturing the CUDA graph failed: Inductor: C++ compile error"
    )
    assert "/tmp/x.cpp:1: error: something" in caplog.text
