"""binpick_core.model_file: metadata validation with errors naming the key, and the preprocessing."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper

from binpick_core.model_file import ModelFileError, pad_to_multiple, preprocess, read_model_info


def metadata(**overrides: str) -> dict[str, str]:
    props = {
        "binpick.format": "1",
        "binpick.variant": "bicameral",
        "binpick.width": "0.25",
        "binpick.encoder": "vgg16",
        "binpick.input": "rgbd",
        "binpick.channels": "4",
        "binpick.input_height": "32",
        "binpick.input_width": "48",
        "binpick.preprocess": json.dumps(
            {"channel_order": "RGB", "rgb_scale": 1 / 255, "mean": [0.5, 0.5, 0.5, 1.0],
             "std": [0.25, 0.25, 0.25, 0.5], "depth_unit": "m"}
        ),
        "binpick.model_id": "12",
        "binpick.provenance": json.dumps({"dataset": "d"}),
    }  # fmt: skip
    props.update(overrides)
    return {k: v for k, v in props.items() if v is not None}


def write_model(
    path: Path, props: dict[str, str], channels: int = 4, outputs=("boundaries", "occlusions")
) -> Path:
    """A tiny real ONNX graph (no torch) with the given metadata."""
    image = helper.make_tensor_value_info("image", TensorProto.FLOAT, ["N", channels, 32, 48])
    outs = [helper.make_tensor_value_info(n, TensorProto.FLOAT, ["N", 1, 32, 48]) for n in outputs]
    reduce = helper.make_node("ReduceMean", ["image"], ["mean"], axes=[1], keepdims=1)
    nodes = [reduce] + [helper.make_node("Sigmoid", ["mean"], [n]) for n in outputs]
    model = helper.make_model(
        helper.make_graph(nodes, "g", [image], outs), opset_imports=[helper.make_opsetid("", 17)]
    )
    for k, v in props.items():
        model.metadata_props.add(key=k, value=v)
    onnx.save(model, str(path))
    return path


def test_reads_valid_metadata(tmp_path) -> None:
    info = read_model_info(write_model(tmp_path / "m.onnx", metadata()))
    assert (info.variant, info.width, info.channels, info.input_kind) == ("bicameral", 0.25, 4, "rgbd")
    assert (info.input_height, info.input_width, info.model_id, info.dynamic) == (32, 48, 12, False)
    assert info.preprocess.std == (0.25, 0.25, 0.25, 0.5) and info.provenance == {"dataset": "d"}
    assert info.size_multiple == 16


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        ({"binpick.variant": None}, "'binpick.variant' is missing"),
        ({"binpick.format": "2"}, "'binpick.format' = '2'"),
        ({"binpick.input": "rgba"}, "'binpick.input' = 'rgba'"),
        ({"binpick.channels": "3"}, "'binpick.channels' = 3 contradicts 'binpick.input' = 'rgbd'"),
        ({"binpick.model_id": "70000"}, "'binpick.model_id' = 70000, expected 0..65535"),
        ({"binpick.input_height": "tall"}, "'binpick.input_height' = 'tall', expected an integer"),
        ({"binpick.width": "wide"}, "'binpick.width' = 'wide'"),
        ({"binpick.provenance": "{oops"}, "'binpick.provenance' is not valid JSON"),
        ({"binpick.preprocess": json.dumps({"channel_order": "BGR"})}, "missing field 'rgb_scale'"),
        ({"binpick.preprocess": json.dumps({"channel_order": "RGB", "rgb_scale": 1, "mean": [0, 0, 0],
                                            "std": [1, 1, 1], "depth_unit": "m"})},
         r"'binpick.preprocess'.mean = \[0, 0, 0\], expected 4 finite numbers"),
    ],
)  # fmt: skip
def test_errors_name_the_key(tmp_path, overrides, message) -> None:
    path = write_model(tmp_path / "bad.onnx", metadata(**overrides))
    with pytest.raises(ModelFileError, match=message) as err:
        read_model_info(path)
    assert "bad.onnx" in str(err.value)


def test_file_level_errors(tmp_path) -> None:
    with pytest.raises(ModelFileError, match="does not exist"):
        read_model_info(tmp_path / "none.onnx")
    (tmp_path / "junk.onnx").write_bytes(b"\x00garbage")
    with pytest.raises(ModelFileError, match="not a readable ONNX model"):
        read_model_info(tmp_path / "junk.onnx")
    (tmp_path / "empty.onnx").write_bytes(b"")  # onnx reads no bytes as a model without metadata
    with pytest.raises(ModelFileError, match=r"empty.onnx' is an empty file \(0 bytes\)"):
        read_model_info(tmp_path / "empty.onnx")
    path = write_model(tmp_path / "o.onnx", metadata(), outputs=("y", "z"))
    with pytest.raises(ModelFileError, match=r"graph outputs \['y', 'z'\]"):
        read_model_info(path)
    path = write_model(tmp_path / "c.onnx", metadata(), channels=3)
    with pytest.raises(ModelFileError, match="does not match 'binpick.channels' = 4"):
        read_model_info(path)


def test_preprocess_rgbd_follows_the_contract(tmp_path) -> None:
    info = read_model_info(write_model(tmp_path / "m.onnx", metadata()))
    rgb = np.zeros((32, 48, 3), np.uint8)
    rgb[0, 0] = (255, 0, 51)
    depth = np.full((32, 48), 1.5, np.float32)
    depth[1, 1] = np.nan  # a depth-camera hole
    x = preprocess(info, rgb, depth)
    assert x.shape == (1, 4, 32, 48) and x.dtype == np.float32 and x.flags.c_contiguous
    # channel c = (value * scale - mean) / std, R, G, B then depth
    np.testing.assert_allclose(x[0, :, 0, 0], [(1 - 0.5) / 0.25, -2.0, (0.2 - 0.5) / 0.25, 1.0], rtol=1e-6)
    assert x[0, 3, 1, 1] == 0.0
    with pytest.raises(ValueError, match="a depth frame"):
        preprocess(info, rgb, None)
    with pytest.raises(ValueError, match="exported for 32x48"):
        preprocess(info, np.zeros((16, 48, 3), np.uint8), np.zeros((16, 48), np.float32))
    with pytest.raises(ValueError, match="rgb must be uint8 HxWx3"):
        preprocess(info, rgb.astype(np.float32), depth)


def test_depth_only_and_dynamic_padding(tmp_path) -> None:
    props = metadata(**{
        "binpick.input": "depth", "binpick.channels": "1",
        "binpick.input_height": "0", "binpick.input_width": "0",
        "binpick.preprocess": json.dumps({"channel_order": "RGB", "rgb_scale": 1 / 255, "mean": [1.0],
                                          "std": [0.5], "depth_unit": "m"}),
    })  # fmt: skip
    info = read_model_info(write_model(tmp_path / "d.onnx", props, channels=1))
    assert info.dynamic and info.uses_depth and not info.uses_rgb
    x = preprocess(info, None, np.full((32, 64), 2.0, np.float32))
    assert x.shape == (1, 1, 32, 64) and np.all(x == 2.0)
    with pytest.raises(ValueError, match="multiples of 16"):
        preprocess(info, None, np.ones((30, 64), np.float32))
    padded, size = pad_to_multiple(np.ones((1, 1, 30, 50), np.float32), 16)
    assert padded.shape == (1, 1, 32, 64) and size == (30, 50)


def _median_model(tmp_path: Path, reference: str) -> object:
    record = {"channel_order": "RGB", "rgb_scale": 1 / 255, "mean": [0.5, 0.5, 0.5, 0.0],
              "std": [0.25, 0.25, 0.25, 0.02], "depth_unit": "m", "depth_reference": reference}  # fmt: skip
    props = metadata(**{"binpick.preprocess": json.dumps(record), "binpick.input_height": "0",
                        "binpick.input_width": "0"})  # fmt: skip
    return read_model_info(write_model(tmp_path / f"{reference}.onnx", props))


def test_frame_median_depth_does_not_see_the_camera_height(tmp_path) -> None:
    relative, absolute = _median_model(tmp_path, "frame_median"), _median_model(tmp_path, "camera")
    assert relative.preprocess.depth_reference == "frame_median"
    assert (
        read_model_info(write_model(tmp_path / "old.onnx", metadata())).preprocess.depth_reference == "camera"
    )
    rng = np.random.default_rng(0)
    rgb = rng.integers(0, 256, (32, 48, 3), dtype=np.uint8)
    pile = (0.25 - 0.02 * rng.random((32, 48))).astype(np.float32)  # a Mikado-like 0.25 m scene
    pile[3, 4] = np.nan
    near, far = preprocess(relative, rgb, pile), preprocess(relative, rgb, pile + np.float32(0.9))
    np.testing.assert_allclose(near, far, atol=1e-4)  # the same pile seen from a 1.15 m cell camera
    assert near[0, 3, 3, 4] == 0.0  # a hole reads as the depth mean
    expected = np.nan_to_num(pile - np.nanmedian(pile), nan=0.0) / 0.02
    np.testing.assert_allclose(near[0, 3], expected, atol=1e-3)
    assert not np.allclose(preprocess(absolute, rgb, pile), preprocess(absolute, rgb, pile + np.float32(0.9)))
    # a crop normalised against its whole frame's median is the crop of the whole frame's tensor
    crop = preprocess(relative, rgb[:16, :16], pile[:16, :16], float(np.nanmedian(pile)))
    np.testing.assert_allclose(crop, near[:, :, :16, :16], atol=1e-5)


def test_a_bad_depth_reference_is_named(tmp_path) -> None:
    record = {"channel_order": "RGB", "rgb_scale": 1 / 255, "mean": [0.5, 0.5, 0.5, 0.0],
              "std": [0.25, 0.25, 0.25, 0.02], "depth_unit": "m", "depth_reference": "floor"}  # fmt: skip
    path = write_model(tmp_path / "bad.onnx", metadata(**{"binpick.preprocess": json.dumps(record)}))
    with pytest.raises(
        ModelFileError, match=r"depth_reference = 'floor', expected one of \['camera', 'frame_median'\]"
    ):
        read_model_info(path)
