"""Inference backends: ONNX Runtime and PyTorch agree on the same weights; the TensorRT engine cache
key and the guarded errors (TensorRT itself is not installed here, see docs/appliance.md)."""

from __future__ import annotations

import ctypes
import importlib.util
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest
from appliance_helpers import tiny_model

from edge.config import ConfigError, InferenceSection, parse_config
from edge.inference import InferenceError, load_backend
from edge.inference.onnxruntime_backend import choose_providers
from edge.inference.predictor import Predictor
from edge.inference.tensorrt_backend import _check, _fp16_flag, engine_path, host_view

pytestmark = pytest.mark.timeout(120)


@pytest.fixture(scope="module")
def model(tmp_path_factory):
    return tiny_model(tmp_path_factory.mktemp("model"))


def test_onnxruntime_and_pytorch_backends_give_the_same_maps(model):
    rgb = np.random.default_rng(1).integers(0, 255, (96, 128, 3), dtype=np.uint8)
    ort_maps = Predictor(InferenceSection(model=str(model), threads=1), (128, 96)).predict(rgb)
    torch_cfg = InferenceSection(
        model=str(model), backend="torch", torch_checkpoint=str(model.parent / "f25.pt")
    )
    torch_maps = Predictor(torch_cfg, (128, 96)).predict(rgb)
    assert ort_maps.boundaries.shape == (64, 64)  # the export size, from the ONNX metadata
    assert (ort_maps.scale_x, ort_maps.scale_y) == (2.0, 1.5)  # back to camera pixels
    np.testing.assert_allclose(ort_maps.boundaries, torch_maps.boundaries, atol=1e-4)
    np.testing.assert_allclose(ort_maps.occlusions, torch_maps.occlusions, atol=1e-4)


def test_model_id_and_input_come_from_the_metadata(model):
    predictor = Predictor(InferenceSection(model=str(model)), (64, 64))
    assert predictor.model_id == 4242 and predictor.describe()["input"] == [3, 64, 64]


def test_a_file_that_is_not_a_model_is_a_clear_error(tmp_path):
    bad = tmp_path / "bad.onnx"
    bad.write_bytes(b"not onnx")
    with pytest.raises(InferenceError, match="bad.onnx"):
        Predictor(InferenceSection(model=str(bad)), (64, 64))


def test_provider_choice():
    assert choose_providers("cpu", ["CUDAExecutionProvider", "CPUExecutionProvider"]) == [
        "CPUExecutionProvider"
    ]
    everything = ["TensorrtExecutionProvider", "CUDAExecutionProvider", "CPUExecutionProvider"]
    assert choose_providers("auto", list(reversed(everything))) == everything
    with pytest.raises(InferenceError, match="onnxruntime-gpu"):
        choose_providers("cuda", ["CPUExecutionProvider"])


def test_tensorrt_engine_cache_key_names_model_hash_gpu_shape_and_version(tmp_path):
    """Pure naming logic (TensorRT is not installed here): every part an engine depends on is in
    the file name, so an engine built for another model, GPU, size, TensorRT or precision is never
    the one loaded."""
    onnx_file = tmp_path / "m.onnx"
    onnx_file.write_bytes(b"model one")
    orin, shape = ("Orin", (8, 7)), (1, 3, 544, 960)
    a = engine_path(onnx_file, *orin, shape, "10.3.0", fp16=True)
    assert (
        a.parent == tmp_path
        and a.name.startswith("m.")
        and a.name.endswith(".orin.sm87.1x3x544x960.trt10.3.0.fp16.engine")
    )
    assert engine_path(onnx_file, "NVIDIA H100 80GB HBM3", (9, 0), shape, "10.3.0", fp16=True) != a
    assert engine_path(onnx_file, "Orin", (8, 6), shape, "10.3.0", fp16=True) != a  # same name, other SM
    assert engine_path(onnx_file, *orin, (1, 3, 1088, 1440), "10.3.0", fp16=True) != a  # camera size
    assert engine_path(onnx_file, *orin, shape, "10.7.0", fp16=True) != a
    assert engine_path(onnx_file, *orin, shape, "10.3.0", fp16=False) != a
    onnx_file.write_bytes(b"model two")
    assert engine_path(onnx_file, *orin, shape, "10.3.0", fp16=True) != a  # retrained model: new engine


def test_tensorrt_host_buffers_view_raw_memory_in_the_engines_dtype():
    """The page-locked buffers are raw memory (cudaMallocHost) seen as numpy arrays of the engine's
    dtype, float16 included (no ctypes type). Checked here on ordinary memory: no CUDA involved."""
    raw = ctypes.create_string_buffer(2 * 3 * 4 * 2)
    half = host_view(ctypes.addressof(raw), (2, 3, 4), np.float16)
    assert half.shape == (2, 3, 4) and half.dtype == np.float16 and half.nbytes == len(raw)
    np.copyto(half, np.full((2, 3, 4), 0.5, np.float32), casting="same_kind")  # float32 in, as infer does
    assert raw.raw[:2] == np.float16(0.5).tobytes()
    single = host_view(ctypes.addressof(raw), (1, 12), np.float32)
    assert single.ctypes.data == ctypes.addressof(raw) and single.shape == (1, 12)


def test_tensorrt_fp16_without_builderflag_fp16_is_one_line_naming_the_setting():
    """TensorRT 11 removed BuilderFlag.FP16: the error text names the model and the setting (a
    stand-in module without the flag; nothing of TensorRT's behaviour is imitated)."""
    trt11 = SimpleNamespace(__version__="11.0.0", BuilderFlag=SimpleNamespace())
    with pytest.raises(InferenceError, match=r"m.onnx: inference.fp16 = true: TensorRT 11.0.0") as err:
        _fp16_flag(trt11, SimpleNamespace(), Path("m.onnx"))
    assert "\n" not in str(err.value)


def test_cuda_errors_are_one_line_naming_the_backend_and_the_error():
    """cuda-python returns (error, values...) with the error an enum member; a stand-in enum here."""
    import enum

    class Err(enum.IntEnum):  # shaped like cuda-python's cudaError_t
        cudaSuccess = 0
        cudaErrorNoDevice = 100

    assert _check((Err.cudaSuccess, 1234)) == 1234 and _check((Err.cudaSuccess,)) == []
    with pytest.raises(
        InferenceError, match=r"^inference.backend = 'tensorrt': .* 100 \(cudaErrorNoDevice\)$"
    ):
        _check((Err.cudaErrorNoDevice, None))


@pytest.mark.skipif(importlib.util.find_spec("tensorrt") is not None, reason="TensorRT is installed here")
def test_tensorrt_backend_without_tensorrt_says_what_to_install(model):
    with pytest.raises(InferenceError, match="TensorRT") as err:
        load_backend(InferenceSection(model=str(model), backend="tensorrt", device="cuda"), (1, 3, 64, 64))
    message = str(err.value)  # one line: the setting, what to install, the alternative
    assert "\n" not in message and "inference.backend = 'tensorrt'" in message
    assert "cuda-python" in message and "inference.backend = 'onnxruntime'" in message


def test_auto_takes_tensorrt_only_with_cuda_python_beside_it(monkeypatch):
    """`auto` with TensorRT importable but not cuda-python (which the backend allocates with) is
    ONNX Runtime, not a start that fails (find_spec stood in for: which packages are installed)."""
    from edge.inference import factory

    def installed(*names):
        def find_spec(name):
            if name.split(".")[0] not in {n.split(".")[0] for n in names}:
                if "." in name:
                    raise ModuleNotFoundError(name)
                return None
            return object() if name in names else None

        return find_spec

    auto = InferenceSection(backend="auto", device="cuda")
    monkeypatch.setattr(factory.importlib.util, "find_spec", installed("tensorrt"))
    assert factory.resolve_backend_name(auto) == "onnxruntime"
    monkeypatch.setattr(factory.importlib.util, "find_spec", installed("tensorrt", "cuda.bindings.runtime"))
    assert factory.resolve_backend_name(auto) == "tensorrt"
    monkeypatch.setattr(factory.importlib.util, "find_spec", installed("tensorrt", "cuda.cudart"))
    assert factory.resolve_backend_name(auto) == "tensorrt"
    assert factory.resolve_backend_name(InferenceSection(backend="auto", device="cpu")) == "onnxruntime"


def test_a_dynamic_model_takes_frames_of_any_size():
    """A camera's 1080-row frame is not a multiple of 16: the frame is padded for the model and the
    maps come back at the frame's own size (the bundled model is exported with dynamic sizes)."""
    bundled = Path(__file__).resolve().parents[1] / "models" / "bicameral_f25_rgb.onnx"
    rgb = np.random.default_rng(2).integers(0, 255, (72, 100, 3), dtype=np.uint8)
    maps = Predictor(InferenceSection(model=str(bundled), threads=1), (100, 72)).predict(rgb)
    assert maps.boundaries.shape == maps.occlusions.shape == (72, 100)
    assert (maps.scale_x, maps.scale_y) == (1.0, 1.0)


def test_input_scale_resizes_frames_for_a_dynamic_model_and_maps_come_back_to_camera_pixels():
    bundled = Path(__file__).resolve().parents[1] / "models" / "bicameral_f25_rgb.onnx"
    rgb = np.random.default_rng(3).integers(0, 255, (96, 128, 3), dtype=np.uint8)
    cfg = InferenceSection(model=str(bundled), threads=1, input_scale=0.5)
    predictor = Predictor(cfg, (128, 96))
    assert predictor.describe()["input"] == [3, "dynamic", "dynamic"]
    maps = predictor.predict(rgb)
    assert maps.boundaries.shape == (48, 64)  # the model saw half the camera's pixels per side
    assert (maps.scale_x, maps.scale_y) == (2.0, 2.0)  # grasps land on camera pixels


def test_input_scale_on_a_fixed_size_model_is_refused_by_name(model):
    with pytest.raises(InferenceError, match="inference.input_scale = 0.5: only for dynamic-size models"):
        Predictor(InferenceSection(model=str(model), input_scale=0.5), (64, 64))


@pytest.mark.parametrize("views", [2, 4])
def test_tta_views_average_the_maps_of_the_flipped_frames(views):
    """Each view is the flipped frame (padded on its own far side, so odd sizes stay right) and its
    maps are flipped back before averaging: the result is the mean computed by hand from separate
    predictions on flipped frames."""
    bundled = Path(__file__).resolve().parents[1] / "models" / "bicameral_f25_rgb.onnx"
    rgb = np.random.default_rng(4).integers(0, 255, (50, 70, 3), dtype=np.uint8)
    one = Predictor(InferenceSection(model=str(bundled), threads=1), (70, 50))
    flips = [(1,), (0,), (0, 1)][: views - 1]
    expected_b = [one.predict(rgb).boundaries]
    expected_o = [one.predict(rgb).occlusions]
    for axes in flips:
        maps = one.predict(np.ascontiguousarray(np.flip(rgb, axes)))
        expected_b.append(np.flip(maps.boundaries, axes))
        expected_o.append(np.flip(maps.occlusions, axes))
    tta = Predictor(InferenceSection(model=str(bundled), threads=1, tta_views=views), (70, 50))
    maps = tta.predict(rgb)
    assert tta.describe()["tta_views"] == views
    assert maps.boundaries.shape == (50, 70)
    np.testing.assert_allclose(maps.boundaries, np.mean(expected_b, axis=0), atol=1e-5)
    np.testing.assert_allclose(maps.occlusions, np.mean(expected_o, axis=0), atol=1e-5)
    assert not np.allclose(maps.boundaries, expected_b[0], atol=1e-3)  # the views did change it


def test_tta_views_other_than_1_2_4_are_refused_by_name(tmp_path):
    from edge.config import ConfigError, load_config

    cfg = tmp_path / "c.toml"
    cfg.write_text("[inference]\ntta_views = 3\n")
    with pytest.raises(ConfigError, match="inference.tta_views"):
        load_config(cfg, check_files=False)


@pytest.mark.parametrize("device", ["cuda", "auto"])
def test_tensorrt_takes_a_gpu_device_and_refuses_cpu_in_one_line(tmp_path, device):
    """TensorRT only runs on the GPU: `device = "cpu"` (the default) with it was silently ignored."""
    root = Path(__file__).resolve().parents[1]
    (tmp_path / "registers.toml").write_text((root / "firmware_config" / "registers.toml").read_text())
    (tmp_path / "m.onnx").symlink_to(root / "models" / "bicameral_f25_rgb.onnx")

    def parse(inference: str):
        text = f'[inference]\nmodel = "m.onnx"\n{inference}\n[plc]\nregisters = "registers.toml"\n'
        return parse_config(text, tmp_path / "cell.toml")

    assert parse(f'backend = "tensorrt"\ndevice = "{device}"').inference.backend == "tensorrt"
    with pytest.raises(
        ConfigError, match=r"inference.device = 'cpu': backend 'tensorrt' runs on the GPU"
    ) as err:
        parse('backend = "tensorrt"')
    assert "\n" not in str(err.value)
