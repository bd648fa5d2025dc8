"""The training data loader over real Mikado scenes: crops, augmentation, depth noise."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from training_scenes import mikado_scenes

from bicameral.data import (
    AugmentConfig,
    DatasetError,
    DepthNoise,
    MikadoScenes,
    _dynamic_rgb,
    _exact_symmetry,
    degrade_depth,
    frame_size,
    list_scenes,
    normalise,
    preprocess_record,
    read_scene,
)
from mikado.ground_truth import ground_truth


@pytest.fixture(scope="module")
def scenes(tmp_path_factory):
    return list_scenes(mikado_scenes(tmp_path_factory.getbasetemp()))


def test_whole_frames_are_the_stored_ground_truth(scenes):
    data = MikadoScenes(scenes, "rgb", crop=None)
    image, boundaries, occlusions = data[0]
    scene = read_scene(scenes[0])
    assert image.shape == (3, 64, 64) and image.dtype == torch.float32
    np.testing.assert_array_equal(boundaries[0].numpy(), scene.boundaries)
    np.testing.assert_array_equal(occlusions[0].numpy(), scene.occlusions)
    # Normalised with the contract's formula: (pixel / 255 - mean) / std.
    prep = preprocess_record("rgb")
    expected = (scene.rgb[..., 1] / 255.0 - prep["mean"][1]) / prep["std"][1]
    np.testing.assert_allclose(image[1].numpy(), expected, atol=1e-5)


def test_identity_warp_reproduces_the_stored_crop(scenes):
    """Rotation 0, scale 1, no flip: the warped crop and its re-derived ground truth equal a
    plain crop of the stored files, so the warp and the ground-truth derivation line up."""
    cfg = AugmentConfig(
        flip=False, max_rotation_deg=0.0, scale_range=(1.0, 1.0), dynamic=False, warp_probability=1
    )
    data = MikadoScenes(scenes, "rgbd", crop=32, augment=cfg)
    scene = read_scene(scenes[1])
    torch.manual_seed(3)
    image, boundaries, occlusions = data[1]
    # Find where the crop came from by matching the depth plane.
    prep = data.preprocess
    depth = image[3].numpy() * prep["std"][3] + prep["mean"][3]
    best = min(
        ((y, x) for y in range(0, 64 - 31) for x in range(0, 64 - 31)),
        key=lambda p: np.abs(scene.depth_m[p[0] : p[0] + 32, p[1] : p[1] + 32] - depth).sum(),
    )
    y, x = best
    assert np.abs(scene.depth_m[y : y + 32, x : x + 32] - depth).max() < 1e-4
    # Away from the crop border (the 9x9 windows see the same pixels) the ground truth is identical.
    inner = (slice(5, 27), slice(5, 27))
    window = (slice(y, y + 32), slice(x, x + 32))
    np.testing.assert_array_equal(boundaries[0].numpy()[inner], scene.boundaries[window][inner])
    np.testing.assert_array_equal(occlusions[0].numpy()[inner], scene.occlusions[window][inner])


def test_rotated_crops_keep_ground_truth_consistent_with_labels(scenes):
    """Any rotation/scale/flip: boundaries are exactly the label changes of the warped crop."""
    data = MikadoScenes(scenes, "rgb", crop=48, augment=AugmentConfig(dynamic=False, warp_probability=1))
    torch.manual_seed(0)
    for index in range(len(scenes)):
        _, boundaries, occlusions = data[index]
        b = boundaries[0].numpy()
        assert b.any() and set(np.unique(b)) <= {0.0, 1.0}
        assert not np.any((b > 0) & (occlusions[0].numpy() > 0))  # DESIGN: boundary pixels are 0


def test_flips_and_quarter_turns_keep_the_stored_ground_truth_exact(scenes):
    scene = read_scene(scenes[3])
    rng = np.random.default_rng(5)
    for _ in range(6):
        labels, depth, b, o = _exact_symmetry(
            [scene.labels, scene.depth_m, scene.boundaries, scene.occlusions], rng, AugmentConfig()
        )
        expected_b, expected_o = ground_truth(labels, depth)
        np.testing.assert_array_equal(b > 0, expected_b)
        np.testing.assert_array_equal(o > 0, expected_o)


def test_ground_truth_derivation_matches_mikado_files(scenes):
    scene = read_scene(scenes[2])
    b, o = ground_truth(scene.labels, scene.depth_m)
    np.testing.assert_array_equal(b, scene.boundaries > 0)
    np.testing.assert_array_equal(o, scene.occlusions > 0)


def test_dynamic_augmentation_blurs_jitters_and_permutes():
    rng = np.random.default_rng(0)
    rgb = np.zeros((32, 32, 3), np.uint8)
    rgb[..., 0] = 200
    rgb[:, 16:, 1] = 120
    plain = AugmentConfig(preset="mikado", blur_probability=0.0, jitter_gain=0.0, jitter_offset=0.0)
    np.testing.assert_array_equal(_dynamic_rgb(rgb, rng, plain), rgb)
    blur_only = AugmentConfig(preset="mikado", blur_probability=1.0, jitter_gain=0, jitter_offset=0)
    blurred = _dynamic_rgb(rgb, rng, blur_only)
    assert blurred[:, 15, 1].mean() not in (0, 120)  # the edge got smoothed
    permuted = {
        tuple(_dynamic_rgb(rgb, rng, AugmentConfig(preset="mikado+", blur_probability=0, jitter_gain=0,
                                                   jitter_offset=0, exposure_probability=0))[0, 20])
        for _ in range(40)
    }  # fmt: skip
    assert len(permuted) > 2  # the red/green pixel moved to other channels
    jittered = _dynamic_rgb(rgb, rng, AugmentConfig(preset="mikado", blur_probability=0))
    assert not np.array_equal(jittered, rgb)


def test_depth_noise_grows_with_distance_and_makes_stereo_shadows():
    rng = np.random.default_rng(0)
    fx = 500.0
    near = np.full((64, 256), 0.5, np.float32)
    far = np.full((64, 256), 2.0, np.float32)
    cfg = DepthNoise(blobs_max=0, speckle_probability=0.0)
    err_near = np.nanstd(degrade_depth(near, fx, cfg, rng) - near)
    err_far = np.nanstd(degrade_depth(far, fx, cfg, rng) - far)
    assert err_far > 8 * err_near  # stereo: error ∝ z² (16× from 0.5 m to 2 m)
    step = np.full((32, 128), 1.0, np.float32)
    step[:, :60] = 0.8  # a box 20 cm above the floor on the left
    exact = DepthNoise(blobs_max=0, speckle_probability=0.0, disparity_sigma_px=0.0)
    out = degrade_depth(step, fx, exact, rng)
    holes = np.isnan(out)
    shadow = fx * 0.06 * (1 / 0.8 - 1 / 1.0)  # disparity jump in pixels: the hidden band's width
    assert holes[:, :60].sum() == 0  # the near surface is seen by both cameras
    assert holes[:, 60 : 60 + int(shadow) - 1].all()  # right of the edge: shadow
    assert not holes[:, 60 + math.ceil(shadow) + 1 :].any()


def test_depth_input_and_rgbd_channels(scenes):
    prep = preprocess_record("depth", 1.0, 0.2)
    data = MikadoScenes(scenes, "depth", prep, crop=32, augment=AugmentConfig(), depth_noise=DepthNoise())
    image, _, _ = data[0]
    assert image.shape == (1, 32, 32) and torch.isfinite(image).all()  # holes become the mean (0)
    scene = read_scene(scenes[0])
    tensor = normalise(scene.rgb, scene.depth_m, "rgbd", preprocess_record("rgbd", 1.0, 0.2))
    assert tensor.shape == (4, 64, 64)
    np.testing.assert_allclose(tensor[3], (scene.depth_m - 1.0) / 0.2, atol=1e-5)


def test_bad_dataset_folders_are_named(tmp_path):
    with pytest.raises(DatasetError, match="no scenes/ folder"):
        list_scenes(tmp_path)
    (tmp_path / "scenes" / "000000").mkdir(parents=True)
    with pytest.raises(DatasetError, match="no finished scene"):
        list_scenes(tmp_path)
    (tmp_path / "scenes" / "000000" / "scene.json").write_text("{}")
    with pytest.raises(DatasetError, match="depth_scale_m"):
        read_scene(tmp_path / "scenes" / "000000")
    with pytest.raises(DatasetError, match="input must be"):
        MikadoScenes([tmp_path], "thermal")


def test_rgb_plain_crops_never_decode_the_depth_plane(scenes, tmp_path):
    """Decoding PNGs is most of a sample's cost: an RGB model's plain crops skip depth.png (a
    copy of one scene without it still samples), while RGB-D needs it and names the file."""
    import shutil

    copy = tmp_path / "scene"
    shutil.copytree(scenes[0], copy)
    (copy / "depth.png").unlink()
    plain = AugmentConfig(dynamic=False, warp_probability=0.0)
    image, boundaries, _ = MikadoScenes([copy], "rgb", crop=32, augment=plain)[0]
    assert image.shape == (3, 32, 32) and boundaries.shape == (1, 32, 32)
    with pytest.raises(DatasetError, match="depth.png"):
        MikadoScenes([copy], "rgbd", crop=32, augment=plain)[0]


def test_a_map_of_another_size_is_the_one_named(scenes, tmp_path):
    """rgb.png shrunk to 32x32 in a 64x64 scene: the error named depth.png (read second)."""
    import shutil

    import cv2

    from bicameral.data import DatasetError, read_scene

    scene = tmp_path / "000001"
    shutil.copytree(scenes[0], scene)
    cv2.imwrite(str(scene / "rgb.png"), cv2.resize(cv2.imread(str(scene / "rgb.png")), (32, 32)))
    with pytest.raises(
        DatasetError, match=r"rgb.png: size 32x32 differs from scene.json's height and width \(64x64\)"
    ):
        read_scene(scene)


def test_the_scenes_folder_given_for_the_dataset_names_the_dataset(tmp_path_factory, tmp_path, capsys):
    """`--data DS/scenes` was refused with "no scenes/ folder" only; the shared list_scenes (train,
    finetune, eval) now adds "did you mean DS?" when the parent folder is a dataset."""
    from edge.cli import main as binpick

    root = mikado_scenes(tmp_path_factory.getbasetemp())
    with pytest.raises(DatasetError, match=f"no scenes/ folder.*; did you mean {root}\\?$"):
        list_scenes(root / "scenes")
    with pytest.raises(DatasetError, match="no scenes/ folder") as refused:  # parent is no dataset
        list_scenes(tmp_path)
    assert "did you mean" not in str(refused.value)
    run = ["--out", str(tmp_path / "run"), "--iterations", "1", "--device", "cpu"]
    assert binpick(["train", "--data", str(root / "scenes"), *run]) == 2
    err = capsys.readouterr().err
    assert f"did you mean {root}?" in err and len(err.strip().splitlines()) == 1, err


def test_a_dataset_folder_that_does_not_exist_is_named_as_such(tmp_path):
    from bicameral.data import DatasetError

    with pytest.raises(DatasetError, match=r"nowhere: no such folder \(expected a Mikado dataset\)"):
        list_scenes(tmp_path / "nowhere")
    (tmp_path / "afile").write_text("x")
    with pytest.raises(DatasetError, match="afile: is a file, expected a Mikado dataset folder"):
        list_scenes(tmp_path / "afile")


def test_frame_size_reads_the_png_header_and_decodes_only_what_is_not_a_png(scenes, tmp_path):
    import shutil

    import cv2

    assert frame_size(scenes[0]) == (64, 64)
    scene = tmp_path / "scene"
    shutil.copytree(scenes[0], scene)
    rgb = scene / "rgb.png"
    rgb.write_bytes(rgb.read_bytes()[:33])  # the header only: the size, without the pixels
    assert frame_size(scene) == (64, 64)
    ok, jpeg = cv2.imencode(".jpg", np.zeros((24, 40, 3), np.uint8))  # OpenCV reads by content
    rgb.write_bytes(jpeg.tobytes())
    assert ok and frame_size(scene) == (40, 24)
    rgb.write_bytes(b"junk")
    with pytest.raises(DatasetError, match=r"scene/rgb.png: missing or unreadable image"):
        frame_size(scene)
    rgb.unlink()
    with pytest.raises(DatasetError, match=r"scene/rgb.png: missing or unreadable image"):
        frame_size(scene)


def test_a_dataset_with_fewer_scenes_than_announced_is_used_and_said(scenes, tmp_path, caplog):
    """A generation stopped at 2 of 5: training and scoring use what is there (generation can be
    resumed), but say so, so that a figure is not read as one of the whole set."""
    import json
    import shutil

    root = tmp_path / "set"
    for scene in scenes[:2]:
        shutil.copytree(scene, root / "scenes" / scene.name)
    (root / "dataset.json").write_text(json.dumps({"count": 5}))
    with caplog.at_level("WARNING", logger="bicameral.data"):
        assert len(list_scenes(root)) == 2
    assert f"{root}: 2 of the 5 scenes its dataset.json announces are finished" in caplog.text
    caplog.clear()
    (root / "dataset.json").write_text(json.dumps({"count": 2}))
    with caplog.at_level("WARNING", logger="bicameral.data"):
        list_scenes(root)
    assert caplog.text == ""
