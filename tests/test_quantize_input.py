"""`binpick quantize` input checks: a corrupt calibration frame is named, not an OpenCV assertion."""

from __future__ import annotations

import pytest
from appliance_helpers import tiny_model, tiny_rgbd_model, write_rgbd_scenes

from binpick_core.model_file import read_model_info


def test_a_corrupt_calibration_frame_is_named(tmp_path):
    pytest.importorskip("onnx")
    from bicameral.quantize import calibration_frames

    info = read_model_info(tiny_model(tmp_path, 64, 64))
    frame = tmp_path / "data" / "scenes" / "000000" / "rgb.png"
    frame.parent.mkdir(parents=True)
    frame.write_bytes(b"not a PNG")
    with pytest.raises(ValueError, match=f"{frame} is not a readable image"):
        calibration_frames(tmp_path / "data", info, 1, (64, 64))


def test_the_scenes_folder_given_for_calibration_names_the_dataset(tmp_path_factory, tmp_path):
    """`--calibration DS/scenes` said only "no scenes/*/rgb.png"; it now asks "did you mean DS?"."""
    pytest.importorskip("onnx")
    from training_scenes import mikado_scenes

    from bicameral.quantize import calibration_frames

    root = mikado_scenes(tmp_path_factory.getbasetemp())
    info = read_model_info(tiny_model(tmp_path, 64, 64))
    with pytest.raises(ValueError, match=f"no scenes/\\*/rgb.png .*; did you mean {root}\\?$"):
        calibration_frames(root / "scenes", info, 1, (64, 64))
    assert calibration_frames(root, info, 1, (64, 64))[0].shape == (1, 3, 64, 64)


def test_rgbd_calibration_frames_are_what_eval_feeds_the_model(tmp_path):
    """Depth as `binpick eval --depth-noise` feeds it (eval's generator, seeded by the frame
    index, through the appliance's preprocessing) when the model was trained with noise; the
    dataset's exact depth when it was not or when --no-depth-noise says so."""
    import numpy as np

    from bicameral.data import DepthNoise, degrade_depth, focal_length_px, list_scenes, read_scene
    from bicameral.quantize import calibration_frames, model_depth_noise
    from binpick_core.model_file import preprocess_padded

    data = write_rgbd_scenes(tmp_path / "data")
    noisy_info = read_model_info(tiny_rgbd_model(tmp_path))
    exact_info = read_model_info(tiny_rgbd_model(tmp_path, depth_noise=False))
    assert model_depth_noise(noisy_info) == DepthNoise() and model_depth_noise(exact_info) is None
    noisy = calibration_frames(data, noisy_info, 3, (64, 64), model_depth_noise(noisy_info))
    exact = calibration_frames(data, exact_info, 3, (64, 64), None)
    for index, path in enumerate(list_scenes(data)):
        scene = read_scene(path, ("rgb", "depth"))
        degraded = degrade_depth(
            scene.depth_m, focal_length_px(scene.meta), DepthNoise(), np.random.default_rng(index)
        )
        assert noisy[index].shape == (1, 4, 64, 64)
        np.testing.assert_array_equal(noisy[index], preprocess_padded(noisy_info, scene.rgb, degraded))
        np.testing.assert_array_equal(exact[index], preprocess_padded(exact_info, scene.rgb, scene.depth_m))
        assert not np.array_equal(noisy[index][0, 3], exact[index][0, 3])  # the noise is there
        np.testing.assert_array_equal(noisy[index][0, :3], exact[index][0, :3])


def test_a_dataset_without_depth_is_refused_in_one_line_for_an_rgbd_model(tmp_path, capsys):
    pytest.importorskip("nncf")
    from edge.cli import main as cli_main

    data = write_rgbd_scenes(tmp_path / "data", depth=False)
    model, out = tiny_rgbd_model(tmp_path), tmp_path / "int8.onnx"
    code = cli_main(["quantize", "--model", str(model), "--calibration", str(data), "--out", str(out)])
    err = capsys.readouterr().err.strip()
    assert code == 2 and not out.exists()
    assert "\n" not in err and "depth.png missing" in err and "'rgbd' input" in err, err


def test_a_depth_only_model_calibrates_on_depth_alone(tmp_path):
    import numpy as np

    from bicameral.data import DepthNoise, degrade_depth, focal_length_px, list_scenes, read_scene
    from bicameral.quantize import calibration_frames, model_depth_noise
    from binpick_core.model_file import preprocess_padded

    data = write_rgbd_scenes(tmp_path / "data", count=2)
    for rgb in (data / "scenes").glob("*/rgb.png"):
        rgb.unlink()  # a depth model needs no colour picture
    info = read_model_info(tiny_rgbd_model(tmp_path, input_kind="depth"))
    tensors = calibration_frames(data, info, 2, (64, 64), model_depth_noise(info))
    for index, path in enumerate(list_scenes(data)):
        scene = read_scene(path, ("depth",))
        noise = degrade_depth(
            scene.depth_m, focal_length_px(scene.meta), DepthNoise(), np.random.default_rng(index)
        )
        np.testing.assert_array_equal(tensors[index], preprocess_padded(info, None, noise))


def test_quantize_refuses_to_replace_its_input_or_a_path_it_cannot_write(tmp_path, capsys):
    """`--out` equal to `--model` replaced the fp32 export with its int8 file; `--out /sys/q.onnx`
    ran the whole calibration before "Permission denied" on a temporary file. Both are refused
    before any work, naming --out."""
    pytest.importorskip("nncf")
    from edge.cli import main as cli_main

    data = write_rgbd_scenes(tmp_path / "data", count=1)
    model = tiny_model(tmp_path, 64, 64)
    before = model.read_bytes()
    base = ["quantize", "--model", str(model), "--calibration", str(data), "--frames", "1"]
    spelled = model.parent / "." / model.name
    assert cli_main([*base, "--out", str(spelled)]) == 2
    assert capsys.readouterr().err == (
        f"binpick quantize: error: --out {spelled}: the same file as --model {model}, which it would "
        "replace; expected another --out\n"
    )
    assert model.read_bytes() == before
    afile = tmp_path / "afile"
    afile.write_text("")
    assert cli_main([*base, "--out", str(afile / "q.onnx")]) == 2
    assert f"--out {afile / 'q.onnx'}: {afile} is a file, expected a folder" in capsys.readouterr().err


def test_frames_smaller_than_the_calibration_size_are_refused(tmp_path):
    """96x96 frames calibrated a dynamic model at 512x512: 96 % of each input was edge padding."""
    pytest.importorskip("onnx")
    from bicameral.quantize import calibration_frames

    info = read_model_info(tiny_model(tmp_path, 64, 64))
    data = write_rgbd_scenes(tmp_path / "data", count=1)
    with pytest.raises(
        ValueError, match=r"^--size 128x64: larger than the calibration frame .*rgb.png \(64x64; 50%"
    ):
        calibration_frames(data, info, 1, (128, 64))
    assert calibration_frames(data, info, 1, (64, 64))[0].shape == (1, 3, 64, 64)


@pytest.mark.parametrize(
    ("content", "problem"),
    [
        (b"{not json", "not valid JSON"),
        (b"[1, 2]", "expected a JSON object, got list"),
        (b"\xff\xfe", "not valid JSON"),
    ],
)
def test_a_damaged_dataset_json_is_named_before_the_quantisation_runs(
    tmp_path, capsys, monkeypatch, content, problem
):
    """The calibration set's dataset.json was read after NNCF's minutes of work, by a reader of
    its own: invalid JSON ended in json's message without the file's name, a list in an
    AttributeError. It is now read first, by the datasets' one reader."""
    nncf = pytest.importorskip("nncf")
    from edge.cli import main as cli_main

    def not_reached(*_args: object, **_kwargs: object) -> None:
        raise AssertionError("quantised before the dataset was read")

    monkeypatch.setattr(nncf, "quantize", not_reached)
    data = write_rgbd_scenes(tmp_path / "data", count=1)
    (data / "dataset.json").write_bytes(content)
    out = tmp_path / "int8.onnx"
    code = cli_main(["quantize", "--model", str(tiny_model(tmp_path, 64, 64)), "--calibration", str(data),
                     "--frames", "1", "--out", str(out)])  # fmt: skip
    err = capsys.readouterr().err.strip()
    assert code == 2 and not out.exists()
    assert "\n" not in err and f"{data / 'dataset.json'}: {problem}" in err, err
