"""The geometric occlusion cue from depth (edge/depth_cue.py): synthetic depth maps with known
steps, stereo holes and noise, a Mikado scene against its occlusion ground truth, and the
supervisor's step with a folder camera that replays RGB-D frames."""

from __future__ import annotations

import importlib.util
import sys
import types
from pathlib import Path

import cv2
import numpy as np
import pytest

from edge.depth_cue import DepthCueParams, DepthCueStage, apply_to_maps, boundary_cue, fuse, occlusion_cue

pytestmark = pytest.mark.timeout(120)

RGB_MODEL = Path(__file__).resolve().parents[1] / "models" / "bicameral_f25_rgb.onnx"


def stacked(step_mm: float = 10.0, size: int = 64) -> np.ndarray:
    """A floor at 0.5 m with a square 30 mm nearer, and on it a smaller square `step_mm` nearer."""
    depth = np.full((size, size), 0.5, np.float32)
    depth[10:50, 10:50] = 0.47
    depth[20:40, 20:40] = 0.47 - step_mm / 1000.0
    return depth


def test_the_cue_is_on_the_nearer_side_of_every_step():
    cue = occlusion_cue(stacked())
    # Inside the top square, one pixel in from its rim (where Mikado's ground truth puts it).
    assert cue[21, 30] > 0.5 and cue[30, 21] > 0.5 and cue[38, 30] > 0.5
    # Never on the farther side of a step, nor inside a flat region, nor on the floor.
    assert cue[18, 30] == 0 and cue[19, 30] == 0 and cue[30, 30] == 0 and cue[5, 5] == 0
    assert cue[11, 30] > 0.5 and cue[8, 30] == 0  # the lower square over the floor too


def test_a_step_below_the_threshold_is_no_occlusion():
    params = DepthCueParams(step_mm=3.0)
    assert occlusion_cue(stacked(step_mm=1.0), params)[15:45, 15:45].max() == 0.0
    assert occlusion_cue(stacked(step_mm=6.0), params)[21, 30] > 0.2  # graded: larger steps score higher
    assert occlusion_cue(stacked(step_mm=20.0), params)[21, 30] == 1.0


def test_holes_never_make_a_step():
    depth = np.full((64, 64), 0.5, np.float32)
    depth[20:30, 20:30] = np.nan  # a dropout blob in a flat surface
    depth[40, 40] = 0.0  # a speckle (0 = no return)
    depth[:, 50:53] = np.nan  # a shadow stripe
    assert occlusion_cue(depth).max() == 0.0
    assert boundary_cue(depth).max() == 0.0
    assert occlusion_cue(np.full((16, 16), np.nan, np.float32)).max() == 0.0  # no depth at all


def test_a_stereo_shadow_beside_the_edge_does_not_hide_the_step():
    """The shadow of a stereo camera is the occluded background beside an edge; the step must
    still be found on the occluder's side."""
    depth = stacked()
    depth[20:40, 40:43] = np.nan  # the shadow right of the top square's right edge
    cue = occlusion_cue(depth)
    assert cue[30, 38] > 0.5


def test_noise_of_a_stereo_camera_makes_no_step_on_a_flat_tilted_surface():
    from mikado.depth_noise import DepthNoise, degrade_depth

    yy, xx = np.mgrid[0:128, 0:128].astype(np.float32)
    tilted = 0.45 + 0.0003 * xx + 0.0001 * yy  # a 0.3 mm per pixel slope
    noisy = degrade_depth(tilted, 500.0, DepthNoise(blobs_max=2), np.random.default_rng(3))
    assert np.isnan(noisy).any()
    assert (occlusion_cue(noisy) > 0.5).mean() < 0.002


def test_fusion_modes():
    z = np.full((4, 4), 0.4, np.float32)
    cue = np.zeros((4, 4), np.float32)
    cue[0, 0] = 1.0
    assert fuse(z, cue, DepthCueParams(mode="only")) is cue
    assert fuse(z, cue, DepthCueParams(mode="fuse", fusion="max"))[0, 0] == 1.0
    mean = fuse(z, cue, DepthCueParams(mode="fuse", fusion="mean", weight=0.25))
    assert mean[0, 0] == pytest.approx(0.55) and mean[1, 1] == pytest.approx(0.3)


def test_maps_at_another_size_get_the_depth_resized_and_optionally_the_boundaries():
    y = np.zeros((32, 32), np.float32)
    z = np.zeros((32, 32), np.float32)
    params = DepthCueParams(mode="fuse", fusion="max", boundaries=True)
    yy, zz = apply_to_maps(y, z, stacked(size=64), params)
    assert yy.shape == zz.shape == (32, 32)
    assert zz.max() > 0.5 and yy.max() > 0.5 and (yy >= zz).all()


@pytest.mark.skipif(importlib.util.find_spec("mujoco") is None, reason="needs the sim extra (Mikado)")
def test_on_a_mikado_scene_the_cue_agrees_with_the_occlusion_ground_truth():
    """Exact and stereo-noise depth of a rendered pile: the share of the cue's pixels that are
    occlusion ground truth is far above the share of ground-truth pixels (chance), and the cue
    finds a good part of it (pixel-exact matching, 256 px: measured 0.56 / 0.51 exact,
    0.38 / 0.32 stereo, against 0.035 chance)."""
    import mikado
    from mikado.depth_noise import DepthNoise, degrade_depth

    scene = mikado.render_pile(11, "mikado+", width=256, height=256)
    truth = scene.occlusions.astype(bool)
    chance = truth.mean()
    assert chance > 0.003
    for depth in (
        scene.depth_m,
        degrade_depth(scene.depth_m, float(scene.camera.k[0][0]), DepthNoise(), np.random.default_rng(0)),
    ):
        cue = occlusion_cue(depth) > 0.2
        precision = truth[cue].mean()
        recall = cue[truth].mean()
        assert precision > 8 * chance and precision > 0.3, (precision, chance)
        assert recall > 0.25, recall


def test_the_stage_counts_frames_without_depth_and_passes_the_maps_through():
    from edge.inference.predictor import Maps

    stage = DepthCueStage(DepthCueParams(mode="only"))
    maps = Maps(np.zeros((64, 64), np.float32), np.zeros((64, 64), np.float32), 1.0, 1.0, None)
    assert stage.apply(maps, None) is maps
    out = stage.apply(maps, stacked())
    assert out.occlusions.max() > 0.5 and out.boundaries is maps.boundaries
    assert stage.status()["frames"] == 2 and stage.status()["frames_without_depth"] == 1
    off = DepthCueStage(DepthCueParams(mode="off"))
    assert off.apply(maps, stacked()) is maps and off.status()["frames"] == 0


def test_folder_replay_pairs_depth_files_in_every_format(tmp_path):
    from edge.camera import CorruptFrame
    from edge.camera.folder_source import FolderSource

    rgb = np.zeros((32, 48, 3), np.uint8)
    depth = np.full((32, 48), 0.5, np.float32)
    depth[5:10, 5:10] = 0.4
    for name in ("a", "b", "c", "d"):
        cv2.imwrite(str(tmp_path / f"{name}.png"), rgb)
    mm = np.round(depth * 1000).astype(np.uint16)
    mm[0, 0] = 0  # no return
    cv2.imwrite(str(tmp_path / "a_depth.png"), mm)
    np.save(tmp_path / "b_depth.npy", depth)
    cv2.imwrite(str(tmp_path / "d_depth.png"), mm[:16])  # wrong size
    source = FolderSource(str(tmp_path), "*.png", loop=False, depth_suffix="_depth", depth_unit_mm=1.0)
    source.open()
    assert [p.name for p in source.files] == ["a.png", "b.png", "c.png", "d.png"]  # no depth file replayed
    a = source.grab(1.0)
    assert a.depth_m.dtype == np.float32 and np.isnan(a.depth_m[0, 0])
    assert a.depth_m[6, 6] == pytest.approx(0.4) and a.depth_m[20, 20] == pytest.approx(0.5)
    b = source.grab(1.0)
    assert np.array_equal(b.depth_m, depth)
    assert source.grab(1.0).depth_m is None  # c has no depth file
    with pytest.raises(CorruptFrame, match=r"d_depth.png: depth is 48x16 px.*expected the same size"):
        source.grab(1.0)
    assert source.status()["frames_with_depth"] == 2
    (tmp_path / "tenth").mkdir()
    cv2.imwrite(str(tmp_path / "tenth" / "a.png"), rgb)
    cv2.imwrite(str(tmp_path / "tenth" / "a_depth.png"), np.round(depth * 10000).astype(np.uint16))
    tenth = FolderSource(str(tmp_path / "tenth"), "a.png", depth_unit_mm=0.1)  # Mikado's unit
    tenth.open()
    assert tenth.grab(1.0).depth_m[20, 20] == pytest.approx(0.5)


def test_a_replayed_npy_depth_in_raw_integer_units_is_refused_naming_the_unit(tmp_path):
    """.npy holds float metres; a map saved as the camera's raw integers (uint16 millimetres, as
    `np.save(depth_frame)` writes it) was read as 850 m per pixel without a word, every grasp's
    seal check and depth input a thousand times off. Now that frame fails naming the file, its
    dtype and the two ways to save it."""
    from edge.camera import CorruptFrame
    from edge.camera.folder_source import FolderSource

    cv2.imwrite(str(tmp_path / "a.png"), np.zeros((32, 48, 3), np.uint8))
    cv2.imwrite(str(tmp_path / "b.png"), np.zeros((32, 48, 3), np.uint8))
    np.save(tmp_path / "a_depth.npy", np.full((32, 48), 850, np.uint16))
    np.save(tmp_path / "b_depth.npy", np.full((32, 48), 0.85, np.float64))  # float metres: fine
    source = FolderSource(str(tmp_path), "*.png", loop=False)
    source.open()
    with pytest.raises(CorruptFrame, match=r"a_depth.npy: .*uint16.*float metres.*16-bit PNG"):
        source.grab(1.0)
    assert source.grab(1.0).depth_m[0, 0] == pytest.approx(0.85)


def test_a_replayed_depth_in_another_unit_is_refused_naming_its_file(tmp_path):
    """Float millimetres in a .npy (or a 16-bit PNG under the wrong depth_unit_mm) read as metres
    put every depth a thousand times too far: the RGB-D model's input, the depth cue, the bin's
    floor and the seal check, cycle after cycle. `binpick bin` refused such a file; the appliance
    replayed it. Now every camera's frame is checked (`edge.camera.base.checked_depth`), and the
    folder's names the depth file."""
    from edge.camera import CorruptFrame
    from edge.camera.base import make_frame
    from edge.camera.folder_source import FolderSource

    for name in ("a", "b", "c"):
        cv2.imwrite(str(tmp_path / f"{name}.png"), np.zeros((32, 48, 3), np.uint8))
    np.save(tmp_path / "a_depth.npy", np.full((32, 48), 850.0, np.float32))  # millimetres
    cv2.imwrite(str(tmp_path / "b_depth.png"), np.full((32, 48), 850, np.uint16))  # mm, unit set to m
    np.save(tmp_path / "c_depth.npy", np.full((32, 48), 0.85, np.float32))
    source = FolderSource(str(tmp_path), "*.png", loop=False, depth_unit_mm=1000.0)
    source.open()
    with pytest.raises(CorruptFrame, match=r"a_depth.npy: median depth 850 m, expected 0.01-50 m.*unit"):
        source.grab(1.0)
    with pytest.raises(CorruptFrame, match=r"b_depth.png: median depth 850 m.*depth_unit_mm"):
        source.grab(1.0)
    assert source.grab(1.0).depth_m[0, 0] == pytest.approx(0.85)
    rgb = np.zeros((32, 48, 3), np.uint8)
    with pytest.raises(CorruptFrame, match=r"realsense: median depth 0.00085 m"):  # metres read as km
        make_frame(rgb, 1, "realsense", np.full((32, 48), 0.00085, np.float32))
    near = make_frame(rgb, 1, "simcell", np.full((32, 48), 0.042, np.float32))  # a tall pile, 42 mm away
    assert near.depth_m[0, 0] == pytest.approx(0.042)
    holes = np.full((32, 48), np.nan, np.float32)
    assert make_frame(rgb, 1, "realsense", holes).depth_m is not None  # no depth at all: not a unit


def test_an_rgbd_stream_whose_depth_is_not_aligned_to_its_image_is_refused():
    """An RGB-D connection (RealSense, Orbbec) hands the streaming source (rgb, depth) pairs; a
    depth map of another size than the image (alignment not applied) was passed on as the frame's
    depth, to be resized into the wrong pixels by the model and the depth cue. Now each such frame
    is unusable, and the source gives up naming both sizes. The connection stands in for the
    camera's SDK (neither is installed here); the source, its threads and checks are the real ones."""
    import time

    from appliance_helpers import wait_until

    from edge.camera.streaming import StreamingSource

    class Unaligned:
        def read(self):
            time.sleep(0.02)
            return np.zeros((48, 64, 3), np.uint8), np.full((24, 32), 0.8, np.float32)

        def release(self):
            pass

    source = StreamingSource("rgbd:test", Unaligned, 2.0, 0.1, 0.3)
    source.open()
    try:
        wait_until(lambda: "failed reads" in source.status()["last_error"], 10, what="a give-up")
        assert "depth is 32x24 px, its image 64x48 px" in source.status()["last_error"]
        assert source.status()["frames"] == 0
    finally:
        source.close()


@pytest.mark.skipif(importlib.util.find_spec("pyrealsense2") is not None, reason="pyrealsense2 is installed")
def test_realsense_without_its_package_says_which_in_one_line():
    from edge.camera import CameraError
    from edge.camera.depth_cameras import RealsenseConnection

    with pytest.raises(CameraError, match=r"^camera.source = 'realsense' needs `pip install pyrealsense2`$"):
        RealsenseConnection("", 640, 480, 30, 1.0)


def _recording_pyrealsense2(modes: set[tuple[str, int, int]]) -> tuple[types.ModuleType, list]:
    """A stand-in for pyrealsense2's config/pipeline API (no camera or package here) that records
    the streams asked for and, like the SDK, refuses to start when a stream with a size asks for
    one the "camera" does not offer (`modes`: (stream, width, height)); a stream without a size is
    left to the SDK. Only the calls RealsenseConnection makes, with pyrealsense2's signatures."""
    asked: list = []
    rs = types.ModuleType("pyrealsense2")
    rs.stream = types.SimpleNamespace(color="color", depth="depth")
    rs.format = types.SimpleNamespace(rgb8="rgb8", z16="z16")

    class Config:
        def enable_device(self, serial):
            asked.append(("device", serial))

        def enable_stream(self, stream, *args):
            asked.append((stream, *args))

    class Pipeline:
        def start(self, _config):
            for stream, *args in asked:
                if stream != "device" and len(args) == 4 and (stream, args[0], args[1]) not in modes:
                    raise RuntimeError("Couldn't resolve requests")
            sensor = types.SimpleNamespace(get_depth_scale=lambda: 0.001)
            device = types.SimpleNamespace(first_depth_sensor=lambda: sensor)
            return types.SimpleNamespace(get_device=lambda: device)

    rs.config, rs.pipeline, rs.align = Config, Pipeline, lambda _stream: None
    return rs, asked


def test_realsense_depth_takes_the_sensors_own_size_and_a_refused_mode_says_what_to_set(monkeypatch):
    """Colour and depth were both asked at camera.width x height: the default 512x512 (no
    RealSense mode) and any colour-only size (1280x720 on a D415's depth at 848x480 ...) failed
    every start with the SDK's bare "Couldn't resolve requests". Depth is aligned to colour
    anyway, so it is asked at the sensor's own size; a refused colour mode says what to set."""
    from edge.camera import CameraError
    from edge.camera.depth_cameras import RealsenseConnection

    rs, asked = _recording_pyrealsense2({("color", 1280, 720), ("depth", 848, 480)})
    monkeypatch.setitem(sys.modules, "pyrealsense2", rs)
    connection = RealsenseConnection("", 1280, 720, 30, 1.0)
    assert asked == [("color", 1280, 720, "rgb8", 30), ("depth", "z16", 30)]
    assert connection.depth_scale == 0.001
    asked.clear()
    with pytest.raises(CameraError) as refused:
        RealsenseConnection("123", 512, 512, 30, 1.0)
    assert str(refused.value) == (
        "RealSense 123: Couldn't resolve requests (asked for colour 512x512 rgb8 at 30 fps and depth "
        "z16 at 30 fps: set camera.width/height to a colour mode the camera offers, e.g. 640x480 or "
        "1280x720; `rs-enumerate-devices` lists them)"
    )


@pytest.mark.skipif(importlib.util.find_spec("pyorbbecsdk") is not None, reason="pyorbbecsdk is installed")
def test_orbbec_without_its_package_says_which_in_one_line():
    from edge.camera import CameraError
    from edge.camera.depth_cameras import OrbbecConnection

    with pytest.raises(CameraError, match=r"pip install pyorbbecsdk2"):
        OrbbecConnection("", 1.0)


def _refused_without_depth(tmp_path: Path, inference: str, opencv_message: str) -> tuple[Path, str]:
    """A configuration with this `[inference]` is refused behind an RGB camera and behind the
    simulated camera with its depth off; returns its path and text without a `[camera]`."""
    from edge.config import ConfigError, load_config

    registers = Path(__file__).resolve().parents[1] / "firmware_config" / "registers.toml"
    base = f'[plc]\nregisters = "{registers}"\n[inference]\n{inference}'
    path = tmp_path / "c.toml"
    path.write_text(base + '[camera]\nsource = "opencv"\nuri = "0"\n')
    with pytest.raises(ConfigError, match=opencv_message):
        load_config(path)
    path.write_text(base + '[camera]\nsource = "simulated"\nsimulated_depth = "none"\n')
    with pytest.raises(ConfigError, match="camera.source 'simulated' delivers no depth"):
        load_config(path)
    return path, base


def test_an_rgbd_model_needs_a_camera_with_depth(tmp_path):
    from edge.config import ConfigError, load_config

    model = Path(__file__).resolve().parents[1] / "models" / "bicameral_f25_rgbd.onnx"
    path, base = _refused_without_depth(
        tmp_path, f'model = "{model}"\n', r"takes 'rgbd' input, but camera.source 'opencv' delivers no depth"
    )
    path.write_text(base + '[camera]\nsource = "simulated"\nsimulated_depth = "stereo"\n')
    assert load_config(path).inference.model == str(model)
    (tmp_path / "junk.onnx").write_bytes(b"x")
    path.write_text(base.replace(str(model), "junk.onnx"))
    with pytest.raises(ConfigError, match=r"inference.model: model file .*junk.onnx' is not a readable ONNX"):
        load_config(path)


def test_an_rgbd_model_on_a_replay_folder_without_depth_files_stops_at_start(tmp_path):
    """The folder's depth_suffix says it may have depth; its files say it has none: one startup
    error naming the folder and the file names it looked for, not model_error on every cycle."""
    from edge.config import Config
    from edge.supervisor import StartupError, Supervisor

    folder = tmp_path / "frames"
    folder.mkdir()
    cv2.imwrite(str(folder / "a.png"), np.full((64, 64, 3), 90, np.uint8))
    c = Config()
    c.camera.source, c.camera.folder = "folder", str(folder)
    c.inference.model, c.inference.threads = str(RGB_MODEL.with_name("bicameral_f25_rgbd.onnx")), 1
    c.plc.registers = str(RGB_MODEL.parents[1] / "firmware_config" / "registers.toml")
    with pytest.raises(
        StartupError, match=r"frames: the model takes depth, but no image has a depth file .*NAME_depth"
    ):
        Supervisor(c).open_parts()
    np.save(folder / "a_depth.npy", np.full((64, 64), 0.5, np.float32))
    sup = Supervisor(c)
    sup.open_parts()  # one depth file is enough to start
    sup.camera.close()


def test_a_depth_cue_needs_a_camera_with_depth(tmp_path, monkeypatch):
    from edge.config import ConfigError, load_config

    # the loader refuses a RealSense source without its package (not installed here)
    monkeypatch.setitem(sys.modules, "pyrealsense2", types.ModuleType("pyrealsense2"))

    (tmp_path / "m.onnx").symlink_to(RGB_MODEL)  # a real model: its input kind is checked
    path, base = _refused_without_depth(
        tmp_path,
        'model = "m.onnx"\ndepth_cue = "fuse"\n',
        r"inference.depth_cue = 'fuse': camera.source 'opencv' delivers no depth",
    )
    path.write_text(base.replace('"fuse"', '"on"'))
    with pytest.raises(
        ConfigError, match=r"inference.depth_cue = 'on': expected one of 'off', 'fuse', 'only'"
    ):
        load_config(path)
    path.write_text(base + '[camera]\nsource = "realsense"\n')
    cfg = load_config(path)
    assert (cfg.inference.depth_cue, cfg.inference.depth_cue_fusion, cfg.camera.source) == (
        "fuse", "mean", "realsense",
    )  # fmt: skip


def test_an_rgbd_model_and_the_depth_cue_run_through_the_appliance_on_rgbd_frames(tmp_path):
    """Plumbing of RGB-D end to end: an untrained RGB-D F25 exported like a trained one, a replay
    folder with a depth file beside each image, the appliance in free-run with the depth cue
    fused. The frame without a depth file fails as the RGB-D model's input error, in one line."""
    pytest.importorskip("torch")
    import torch
    from appliance_helpers import Appliance, appliance_config, write_pile_folder

    from bicameral.checkpoint import save_checkpoint
    from bicameral.export import export_checkpoint
    from bicameral.init import initialise
    from bicameral.networks import build_network
    from binpick_core.model_file import default_preprocess, read_model_info

    torch.manual_seed(0)
    net = initialise(build_network("bicameral", "F25", in_channels=4))
    save_checkpoint(
        tmp_path / "rgbd.pt", net, net.config, default_preprocess("rgbd", 0.5, 0.1), {"dataset": "none"}
    )
    model = tmp_path / "rgbd.onnx"
    export_checkpoint(tmp_path / "rgbd.pt", model, height=64, width=64, model_id=4343)
    assert read_model_info(model).input_kind == "rgbd"
    folder = write_pile_folder(tmp_path / "frames", count=3, size=64)
    for i in (0, 1):
        depth = np.full((64, 64), 500, np.uint16)
        depth[20:40, 20:40] = 480
        cv2.imwrite(str(folder / f"frame_{i:03d}_depth.png"), depth)
    config, _, _ = appliance_config(
        tmp_path, model, mode="free-run", camera=f'source = "folder"\nfolder = "{folder}"\nloop = false'
    )
    config.write_text(config.read_text().replace("threads = 1\n", 'threads = 1\ndepth_cue = "fuse"\n'))
    app = Appliance(config, tmp_path, "--cycles", "3")
    assert app.proc.wait(timeout=120) == 0, app.log()
    lines = app.output().strip().splitlines()
    assert len(lines) == 3, lines
    assert lines[0].startswith("cycle 1 seq 1 grasp") and lines[1].startswith("cycle 2 seq 2 grasp"), lines
    assert "error model_error" in lines[2] and "depth" in lines[2], lines
    app.stop()


@pytest.mark.skipif(importlib.util.find_spec("mujoco") is None, reason="needs the sim extra (Mikado)")
def test_the_simulated_camera_gives_stereo_depth_by_default_exact_when_asked():
    from edge.camera.simulated import SimulatedBin

    frames = {}
    for kind in ("stereo", "exact", "none"):
        source = SimulatedBin("mikado+", 96, 96, seed=4, depth=kind)
        source.open()
        frames[kind] = source.grab(60)
    exact, stereo = frames["exact"].depth_m, frames["stereo"].depth_m
    assert frames["none"].depth_m is None
    assert np.isfinite(exact).all() and np.array_equal(exact, frames["exact"].extras["scene"].depth_m)
    assert np.isnan(stereo).any() and stereo.shape == exact.shape  # holes: a depth camera's map
    valid = np.isfinite(stereo)
    assert 0 < np.abs(stereo[valid] - exact[valid]).mean() < 0.003  # noise of about a millimetre
    assert SimulatedBin("mikado+", 96, 96).depth == "stereo"
