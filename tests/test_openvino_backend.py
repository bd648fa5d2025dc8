"""The openvino backend: the bundled models' maps against ONNX Runtime fp32 (fp32 tight, bf16 and
int8 looser), the refusal when the package is missing, bf16 only where the CPU has it, the int8
file written by `binpick quantize`, and the configuration keys."""

from __future__ import annotations

import builtins
import json
from pathlib import Path

import cv2
import numpy as np
import onnx
import onnxruntime as ort
import pytest

from edge.config import ConfigError, InferenceSection, parse_config
from edge.inference import InferenceError, load_backend
from edge.inference.openvino_backend import resolve_precision

pytestmark = pytest.mark.timeout(300)
ROOT = Path(__file__).resolve().parents[1]
BUNDLED = ROOT / "models" / "bicameral_f25_rgb.onnx"
BUNDLED_INT8 = ROOT / "models" / "bicameral_f25_rgb_int8.onnx"
SHAPE = (1, 3, 128, 160)  # small, a multiple of 16: the bundled model is dynamic

# Tolerances against ONNX Runtime fp32 on the same input (probabilities in [0, 1]).
# fp32: oneDNN's kernels vs MLAS's sum in another order; through 13 VGG convolutions that is up to
# 5e-4 here (on 2 % of the pixels), so 1e-3. bf16 keeps 8 bits of mantissa, int8 256 levels
# per tensor: single pixels near a boundary can move a lot, so they are bounded on average.
FP32_MAX_ABS = 1e-3
BF16_MEAN_ABS = 0.02
INT8_MEAN_ABS = 0.03

RGB_MODEL = Path(__file__).resolve().parents[1] / "models" / "bicameral_f25_rgb.onnx"


def scene_tensor() -> np.ndarray:
    """A Mikado-like input: the first bundled test pile would need a render; a smooth random
    image through the model's own preprocessing stands in (the comparison is runtime vs runtime)."""
    from binpick_core.model_file import preprocess, read_model_info

    rng = np.random.default_rng(0)
    rgb = cv2.GaussianBlur(rng.integers(0, 255, (SHAPE[2], SHAPE[3], 3), dtype=np.uint8), (7, 7), 2)
    return preprocess(read_model_info(BUNDLED), rgb, None)


def ort_fp32(model: Path, x: np.ndarray) -> list[np.ndarray]:
    session = ort.InferenceSession(str(model), providers=["CPUExecutionProvider"])
    return [y[0, 0] for y in session.run(["boundaries", "occlusions"], {"image": x})]


def openvino_backend(model: Path, precision: str = "fp32"):
    pytest.importorskip("openvino")
    cfg = InferenceSection(model=str(model), backend="openvino", precision=precision, threads=2)
    return load_backend(cfg, SHAPE)


def test_fp32_maps_match_onnxruntime():
    x = scene_tensor()
    backend = openvino_backend(BUNDLED)
    assert backend.describe()["precision"] == "fp32" and backend.describe()["int8"] is False
    for got, ref in zip(backend.infer(x), ort_fp32(BUNDLED, x), strict=True):
        assert got.shape == (SHAPE[2], SHAPE[3])
        np.testing.assert_allclose(got, ref, atol=FP32_MAX_ABS)


def test_bf16_maps_are_close_where_the_cpu_has_bf16():
    backend = openvino_backend(BUNDLED, "auto")
    if backend.precision != "bf16":
        pytest.skip(f"this CPU has no bf16 ({backend.capabilities})")
    x = scene_tensor()
    for got, ref in zip(backend.infer(x), ort_fp32(BUNDLED, x), strict=True):
        assert np.abs(got - ref).mean() <= BF16_MEAN_ABS


def test_bundled_int8_model_runs_as_int8_and_stays_close_to_fp32():
    if not BUNDLED_INT8.is_file():
        pytest.skip("no int8 model bundled")
    props = {p.key: p.value for p in onnx.load(str(BUNDLED_INT8), load_external_data=False).metadata_props}
    assert props["binpick.precision"] == "int8"
    assert json.loads(props["binpick.calibration"])["frames"] > 0
    backend = openvino_backend(BUNDLED_INT8, "auto")  # auto: fp32 around the int8 kernels
    assert backend.describe()["int8"] is True and backend.precision == "fp32"
    with pytest.raises(InferenceError, match="'bf16' with the int8 model"):
        openvino_backend(BUNDLED_INT8, "bf16")
    x = scene_tensor()
    for got, ref in zip(backend.infer(x), ort_fp32(BUNDLED, x), strict=True):
        assert np.abs(got - ref).mean() <= INT8_MEAN_ABS


BUNDLED_RGBD = ROOT / "models" / "bicameral_f25_rgbd.onnx"
BUNDLED_RGBD_INT8 = ROOT / "models" / "bicameral_f25_rgbd_int8.onnx"


def test_bundled_rgbd_int8_model_was_calibrated_on_noisy_depth_and_stays_close_to_fp32():
    if not BUNDLED_RGBD_INT8.is_file():
        pytest.skip("no RGB-D int8 model bundled")
    pytest.importorskip("openvino")
    from binpick_core.model_file import preprocess, read_model_info

    props = {
        p.key: p.value for p in onnx.load(str(BUNDLED_RGBD_INT8), load_external_data=False).metadata_props
    }
    calibration = json.loads(props["binpick.calibration"])
    assert props["binpick.precision"] == "int8" and calibration["input"] == "rgbd"
    assert calibration["depth_noise"] is not None  # the model was trained on stereo-noise depth
    rng = np.random.default_rng(0)
    rgb = cv2.GaussianBlur(rng.integers(0, 255, (SHAPE[2], SHAPE[3], 3), dtype=np.uint8), (7, 7), 2)
    depth = np.full((SHAPE[2], SHAPE[3]), 1.0, np.float32)
    depth[30:80, 40:100] = 0.93  # a product on the floor
    x = preprocess(read_model_info(BUNDLED_RGBD_INT8), rgb, depth)
    cfg = InferenceSection(model=str(BUNDLED_RGBD_INT8), backend="openvino", precision="auto", threads=2)
    backend = load_backend(cfg, x.shape)  # auto: fp32 around the int8 kernels
    assert backend.describe()["int8"] is True
    for got, ref in zip(backend.infer(x), ort_fp32(BUNDLED_RGBD, x), strict=True):
        assert np.abs(got - ref).mean() <= INT8_MEAN_ABS


def test_a_missing_openvino_package_is_one_line_naming_the_extra(monkeypatch):
    real_import = builtins.__import__

    def no_openvino(name, *args, **kwargs):
        if name == "openvino" or name.startswith("openvino."):
            raise ImportError("No module named 'openvino'")
        return real_import(name, *args, **kwargs)

    monkeypatch.setattr(builtins, "__import__", no_openvino)
    cfg = InferenceSection(model=str(BUNDLED), backend="openvino")
    with pytest.raises(InferenceError) as err:
        load_backend(cfg, SHAPE)
    message = str(err.value)
    assert "\n" not in message and "pip install '.[x86]'" in message and "inference.backend" in message


def test_bf16_is_refused_by_name_on_a_cpu_without_it():
    assert resolve_precision("auto", ["FP32", "INT8"]) == "fp32"
    assert resolve_precision("auto", ["BF16", "FP32"]) == "bf16"
    assert resolve_precision("fp32", ["BF16", "FP32"]) == "fp32"
    with pytest.raises(InferenceError, match="inference.precision = 'bf16'.*no bf16"):
        resolve_precision("bf16", ["FP32", "INT8"])
    with pytest.raises(InferenceError, match=r"^--precision = 'bf16'.*no bf16"):
        resolve_precision("bf16", ["FP32", "INT8"], "--precision")  # binpick eval's flag


def test_quantize_writes_an_int8_file_that_records_its_calibration(tmp_path, capsys):
    pytest.importorskip("nncf")
    from appliance_helpers import tiny_model

    from edge.cli import main as cli_main

    data = tmp_path / "calib"
    rng = np.random.default_rng(5)
    for i in range(3):
        scene = data / "scenes" / f"{i:06d}"
        scene.mkdir(parents=True)
        cv2.imwrite(str(scene / "rgb.png"), rng.integers(0, 255, (80, 72, 3), dtype=np.uint8))
    (data / "dataset.json").write_text(json.dumps({"preset": "mikado+", "base_seed": 11}))
    source, out = tiny_model(tmp_path), tmp_path / "int8.onnx"
    assert cli_main(["quantize", "--model", str(source), "--calibration", str(data), "--out", str(out)]) == 0
    assert "int8" in capsys.readouterr().out
    proto = onnx.load(str(out))
    props = {p.key: p.value for p in proto.metadata_props}
    before = {p.key: p.value for p in onnx.load(str(source)).metadata_props}
    assert {k: props[k] for k in before} == before  # every key kept
    calibration = json.loads(props["binpick.calibration"])
    assert props["binpick.precision"] == "int8"
    assert (calibration["frames"], calibration["preset"], calibration["seed"]) == (3, "mikado+", 11)
    assert any(node.op_type == "QuantizeLinear" for node in proto.graph.node)
    backend = load_backend(InferenceSection(model=str(out), backend="openvino", threads=1), (1, 3, 64, 64))
    assert backend.describe()["int8"] is True
    boundaries, _ = backend.infer(np.zeros((1, 3, 64, 64), np.float32))
    assert boundaries.shape == (64, 64) and np.isfinite(boundaries).all()


def write_config(tmp_path: Path, inference: str) -> tuple[str, Path]:
    (tmp_path / "registers.toml").write_text((ROOT / "firmware_config" / "registers.toml").read_text())
    (tmp_path / "m.onnx").symlink_to(RGB_MODEL)  # a real model: its input kind is checked
    return f'[inference]\nmodel = "m.onnx"\n{inference}', tmp_path / "cell.toml"


@pytest.mark.parametrize(
    ("inference", "expected"),
    [
        ("backend = 'openvino'\nprecision = 'int4'\n", "inference.precision = 'int4': expected one of"),
        ("precision = 'bf16'\n", "inference.precision = 'bf16': only for backend 'openvino'"),
        ("backend = 'openvino'\ndevice = 'cuda'\n", "backend 'openvino' runs on the CPU"),
    ],
)
def test_configuration_mistakes_are_named(tmp_path, inference, expected):
    text, path = write_config(tmp_path, inference)
    with pytest.raises(ConfigError, match=expected):
        parse_config(text, path)


def test_openvino_configuration_parses(tmp_path):
    text, path = write_config(tmp_path, "backend = 'openvino'\nprecision = 'auto'\n")
    cfg = parse_config(text, path).inference
    assert (cfg.backend, cfg.precision) == ("openvino", "auto")


def test_quantize_calibrates_an_rgbd_model_on_depth_and_openvino_runs_it(tmp_path, capsys):
    """An RGB-D model end to end: calibrated on RGB + stereo-noise depth (its provenance says it
    was trained so), recorded in the file, run as int8 by the openvino backend, maps close to
    ONNX Runtime fp32 on the first calibration frame."""
    pytest.importorskip("nncf")
    pytest.importorskip("openvino")
    from appliance_helpers import tiny_rgbd_model, write_rgbd_scenes

    from bicameral.quantize import calibration_frames, model_depth_noise
    from binpick_core.model_file import read_model_info
    from edge.cli import main as cli_main

    data = write_rgbd_scenes(tmp_path / "data")
    source, out = tiny_rgbd_model(tmp_path), tmp_path / "rgbd_int8.onnx"
    assert cli_main(["quantize", "--model", str(source), "--calibration", str(data), "--out", str(out)]) == 0
    assert "stereo noise depth" in capsys.readouterr().out
    props = {p.key: p.value for p in onnx.load(str(out)).metadata_props}
    calibration = json.loads(props["binpick.calibration"])
    assert (calibration["input"], calibration["frames"], calibration["seed"]) == ("rgbd", 3, 21)
    assert calibration["depth_noise"]["baseline_m"] == 0.06
    info = read_model_info(out)
    assert info.input_kind == "rgbd" and info.preprocess.depth_reference == "frame_median"
    x = calibration_frames(data, info, 1, (64, 64), model_depth_noise(info))[0]
    backend = load_backend(InferenceSection(model=str(out), backend="openvino", threads=1), x.shape)
    assert backend.describe()["int8"] is True
    for got, ref in zip(backend.infer(x), ort_fp32(source, x), strict=True):
        assert got.shape == (64, 64) and np.abs(got - ref).mean() <= INT8_MEAN_ABS
