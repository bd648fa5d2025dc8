"""The bin model in the appliance's own cycle (`Supervisor.cycle_once` on replayed frames with
depth): grasps never on the floor, fill level and bin_empty in the registers, bin_missing when
the bin is gone."""

from __future__ import annotations

import copy

import cv2
import numpy as np
import pytest
from appliance_helpers import ROOT
from bin_scenes import INTERIOR, bin_scene

from edge.bin_model import BinModel, fit_floor_plane, save_bin_model
from edge.config import Config
from edge.supervisor import Supervisor

pytestmark = pytest.mark.timeout(180)
PRODUCTS = (6, 4, 2, 0, 0, 0)  # frames 0-5; then a frame without the bin


def write_frames(folder) -> list:
    folder.mkdir()
    scenes = [bin_scene(products=n, seed=i) for i, n in enumerate(PRODUCTS)] + [bin_scene(with_bin=False)]
    for i, scene in enumerate(scenes):
        cv2.imwrite(str(folder / f"frame_{i:03d}.png"), scene.rgb)
        np.save(folder / f"frame_{i:03d}_depth.npy", scene.depth_m)
    return scenes


@pytest.fixture(scope="module")
def run(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("bin_cell")
    scenes = write_frames(tmp / "frames")
    empty = bin_scene(products=0)
    inside = np.zeros(empty.depth_m.shape, bool)
    inside[60:180, 80:240] = True
    save_bin_model(
        BinModel(INTERIOR, empty.rgb[..., 0], fit_floor_plane(empty.depth_m, inside), 60.0), tmp / "bin.json"
    )
    c = Config()
    c.camera.source, c.camera.folder, c.camera.loop = "folder", str(tmp / "frames"), False
    c.camera.width, c.camera.height = 320, 240
    c.inference.model, c.inference.threads = str(ROOT / "models" / "bicameral_f25_rgb.onnx"), 1
    c.ranking.max_area = 0.2
    c.plc.registers = str(ROOT / "firmware_config" / "registers.toml")
    c.health.snapshot_dir = str(tmp / "snapshots")
    c.bin.enabled, c.bin.model = True, str(tmp / "bin.json")
    sup = Supervisor(c)
    sup.open_parts()
    rows = []
    for _ in scenes:
        outcome = sup.cycle_once()
        words = sup.bank.read(0, sup.register_map.size)
        fill = sup.register_map.words_to_float(*words[32:34])
        height = sup.register_map.words_to_float(*words[34:36])
        rows.append((outcome, fill, height, sup.bank.flag("bin_empty"), sup.status()["bin"]))
    yield scenes, rows, sup
    sup.camera.close()


def on_product(scene, outcome) -> bool:
    u, v = (int(round(outcome.detail["pick"][k])) for k in ("u", "v"))
    return bool(cv2.dilate(scene.products.astype(np.uint8), np.ones((5, 5), np.uint8))[v, u])


def test_grasps_never_land_on_the_floor(run, tmp_path):
    """The bundled model finds no product in these drawn scenes (not its training domain), so
    its candidates are floor and table: without the bin model the cell gets a floor grasp, with it
    the cycle reports no grasp instead."""
    scenes, rows, sup = run
    for scene, (outcome, *_rest) in zip(scenes[:6], rows[:6], strict=True):
        assert outcome.error in ("ok", "no_candidate", "empty_roi"), outcome.message
        if outcome.error == "ok":
            assert on_product(scene, outcome)
    config = copy.deepcopy(sup.config)  # the same appliance without its bin model, first frame
    config.bin.enabled = False
    bare = Supervisor(config)
    bare.open_parts()
    try:
        outcome = bare.cycle_once()
    finally:
        bare.camera.close()
    assert outcome.error == "ok" and not on_product(scenes[0], outcome)


def test_fill_level_and_empty_bin_in_the_registers(run):
    scenes, rows, _ = run
    for scene, (_, fill, height, empty, status) in zip(scenes[:6], rows[:6], strict=True):
        inside = np.zeros(scene.products.shape, np.uint8)
        cv2.fillPoly(inside, [np.round(scene.interior).astype(np.int32)], 1)
        truth = 100.0 * scene.products[inside.astype(bool)].mean()
        assert abs(fill - truth) <= 10.0
        assert status["fill_percent"] == pytest.approx(fill, abs=0.06)
        if truth > 0:
            assert 15.0 < height < 35.0 and not empty  # never empty while a product remains
    assert [r[3] for r in rows[:6]] == [
        False,
        False,
        False,
        False,
        True,
        True,
    ]  # 2 cycles after the last product


def test_a_missing_bin_fails_the_cycle_with_its_error(run):
    _, rows, sup = run
    outcome = rows[-1][0]
    assert outcome.error == "bin_missing" and "no bin rim" in outcome.message
    assert outcome.result.error == sup.register_map.error_code("bin_missing")
    metrics = sup.metrics()
    assert 'binpick_cycle_errors_total{error="bin_missing"} 1' in metrics
    assert "binpick_bin_fill_percent" in metrics and 'binpick_bin_shift_px{axis="u"}' in metrics
