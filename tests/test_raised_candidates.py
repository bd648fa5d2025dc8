"""Candidates of depth alone (`edge.ranking.raised`), tried when the network's candidates give no
grasp: what stands off the bin floor, highest first, grasped only where the seal check places
the cup; in the appliance's own cycle (`Supervisor.cycle_once` on a replayed, calibrated frame
with depth and a bin model)."""

from __future__ import annotations

import cv2
import numpy as np
import pytest
from appliance_helpers import ROOT, looking_down, tiny_model

from edge.bin_model import BinModel, fit_floor_plane, save_bin_model
from edge.calibration_file import save_calibration
from edge.config import Config
from edge.ranking import RankingParams, plan_raised_grasp
from edge.ranking.raised import raised_ranking
from edge.ranking.suction import SuctionParams, SuctionPlacer, SurfacePoints
from edge.supervisor import Supervisor

pytestmark = pytest.mark.timeout(180)
W, H = 320, 240
F = 400.0
CAMERA_MM = 780.0  # camera to the bin floor, looking straight down
INTERIOR = np.array([[40, 30], [280, 30], [280, 210], [40, 210]], float)
PARAMS = RankingParams(min_area=1, max_area=np.inf, margin=3.0, score="thesis")


def _heights(shape=(H, W)) -> np.ndarray:
    return np.zeros(shape, np.float64)


def test_raised_regions_inside_the_bin_highest_first_without_specks_or_scraps():
    pytest.importorskip("edge._hotpath")  # the regions are the hot path's components
    heights = _heights()
    heights[50:90, 60:120] = 12.0  # a product 12 mm high
    heights[120:180, 150:250] = 30.0  # one 30 mm high: first
    heights[100:103, 200:203] = 50.0  # a 3 x 3 px speck: no region
    heights[60:64, 230:236] = 20.0  # a scrap under the least area
    heights[5:25, 5:25] = 40.0  # outside the interior: the rim, a wall
    heights[70, 70] = np.nan  # an unmeasured pixel inside a product
    inside = np.zeros((H, W), bool)
    inside[30:210, 40:280] = True
    ranking = raised_ranking(np.abs(np.nan_to_num(heights, nan=5.0)) > 4.0, inside, heights, min_area_px=100)
    assert [c.bbox for c in ranking.candidates] == [(150, 120, 100, 60), (60, 50, 60, 40)]
    assert [c.score for c in ranking.candidates] == [0.0, 0.0]  # no network score
    first = ranking.candidates[0]
    assert first.angle_deg == pytest.approx(0.0) and first.major_px == 100 and first.minor_px == 60
    assert (ranking.labels[121:179, 151:249] == first.label).all()  # the opening rounds its corners


def _depth_with(products: list[tuple[int, int, int, int, float]]) -> np.ndarray:
    depth = np.full((H, W), CAMERA_MM / 1000.0, np.float32)
    for u, v, w, h, height in products:
        depth[v : v + h, u : u + w] = (CAMERA_MM - height) / 1000.0
    return depth


def _points(depth: np.ndarray) -> SurfacePoints:
    k = np.array([[F, 0.0, W / 2], [0.0, F, H / 2], [0.0, 0.0, 1.0]])
    return SurfacePoints(depth, k, None, np.array([0.0, 0.0, 1.0]), CAMERA_MM, depth.shape)


def test_a_region_gets_a_grasp_only_where_the_cup_seals_never_its_plain_point():
    """A thin pouch (6 mm) lying alone: grasped at a sealable place, method "raised". A strip
    narrower than the cup (a product on its edge): no grasp at all, though it is a region."""
    inside = np.ones((H, W), bool)
    for products, expected in (([(100, 80, 60, 50, 6.0)], True), ([(100, 80, 60, 6, 30.0)], False)):
        depth = _depth_with(products)
        heights = CAMERA_MM - depth.astype(np.float64) * 1000.0
        ranking = raised_ranking(heights > 4.0, inside, heights, min_area_px=50)
        assert len(ranking.candidates) == 1
        placer = SuctionPlacer(lambda d=depth: _points(d), ranking.labels, SuctionParams())
        grasp = plan_raised_grasp(ranking, placer, PARAMS)
        if expected:
            assert grasp is not None and grasp.method == "raised"
            u, v, w, h, _ = products[0]
            assert u <= grasp.u < u + w and v <= grasp.v < v + h
        else:
            assert grasp is None


@pytest.fixture(scope="module")
def cell(tmp_path_factory):
    """A calibrated cell with a bin model and the seal check on, whose untrained network makes the
    whole picture one candidate (mostly floor: the bin model refuses it). Frames: a thin pouch
    alone on the floor; the bare floor; a product on its edge, narrower than the cup."""
    tmp = tmp_path_factory.mktemp("raised")
    rng = np.random.default_rng(3)
    floor_rgb = rng.integers(90, 110, (H, W, 3)).astype(np.uint8)
    frames = tmp / "frames"
    frames.mkdir()
    scenes = [[(120, 90, 70, 50, 6.0)], [], [(120, 90, 60, 5, 40.0)]]
    for i, products in enumerate(scenes):
        cv2.imwrite(str(frames / f"frame_{i:03d}.png"), floor_rgb)  # the pouch looks like the floor
        np.save(frames / f"frame_{i:03d}_depth.npy", _depth_with(products))
    empty = _depth_with([])
    inside = np.zeros((H, W), bool)
    inside[40:200, 50:270] = True
    model = BinModel(INTERIOR, floor_rgb[..., 0], fit_floor_plane(empty, inside), 0.0)
    save_bin_model(model, tmp / "bin.json")
    save_calibration(looking_down((W, H), F, (W / 2, H / 2)), tmp / "cal.json")  # 780 mm up
    c = Config()
    c.camera.source, c.camera.folder, c.camera.loop = "folder", str(frames), False
    c.camera.width, c.camera.height = W, H
    c.inference.model, c.inference.threads = str(tiny_model(tmp_path_factory.mktemp("model"), 120, 160)), 1
    c.ranking.alpha, c.ranking.min_area, c.ranking.max_area = 0.999, 16, 1e9  # whole image = one candidate
    c.calibration.file = str(tmp / "cal.json")
    c.plc.registers = str(ROOT / "firmware_config" / "registers.toml")
    c.health.snapshot_dir = str(tmp / "snapshots")
    c.bin.enabled, c.bin.model = True, str(tmp / "bin.json")
    c.suction.enabled = True
    c.bin.track = False  # a fixed bin: this floor has no rim to register on
    sup = Supervisor(c)
    sup.open_parts()
    outcomes = [sup.cycle_once() for _ in scenes]
    yield scenes, outcomes
    sup.camera.close()


def test_the_appliance_grasps_a_product_its_network_missed_by_depth_alone(cell):
    scenes, outcomes = cell
    pouch = outcomes[0]
    assert pouch.error == "ok", pouch.message
    assert pouch.detail["method"] == pouch.detail["suction"]["method"] == "raised"
    u, v, w, h, _ = scenes[0][0]
    assert u <= pouch.detail["pick"]["u"] < u + w and v <= pouch.detail["pick"]["v"] < v + h
    assert pouch.detail["pick"]["score"] == 0.0
    assert pouch.detail["candidate_label"] is None  # none of the network's candidates: the overlay fills none
    assert outcomes[1].error == "empty_roi"  # the bare floor: nothing raised, no grasp
    assert outcomes[2].error == "empty_roi"  # a region too narrow for the cup: no plain point
