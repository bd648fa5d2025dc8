"""The bin model (edge/bin_model): commissioning, locating a moved bin, floor rejection with and
without depth, fill level, the empty-bin signal, and `binpick bin` on real files."""

from __future__ import annotations

import dataclasses
import json
import re
import subprocess
import sys

import cv2
import numpy as np
import pytest
from appliance_helpers import ROOT, looking_down
from bin_scenes import INTERIOR, PRODUCT_MM, RIM_MM, BinScene, bin_scene

from edge.bin_model import (
    BinMissing,
    BinModel,
    BinModelError,
    BinStage,
    EmptyBinTracker,
    FillLevel,
    commission_bin,
    detect_interior,
    fill_level,
    floor_from_reference,
    height_above_floor_mm,
    interior_mask,
    load_bin_model,
    locate_bin,
    save_bin_model,
)
from edge.bin_model.stage import BinSettings


def gray(scene) -> np.ndarray:
    return scene.rgb[..., 0]


def commissioned(with_depth: bool = True) -> BinModel:
    """What `binpick bin` records from the empty bin (its depth too, or not)."""
    empty = bin_scene(products=0)
    return commission_bin(empty.rgb, empty.depth_m if with_depth else None, INTERIOR.copy())


def test_the_floor_plane_and_heights_come_back_from_a_tilted_floor():
    scene = bin_scene(products=4)
    model = commissioned()
    assert model.floor.rms_mm < 0.5
    height = height_above_floor_mm(scene.depth_m, model.floor)
    assert np.nanmedian(np.abs(height[scene.products] - PRODUCT_MM)) < 1.0
    inside = np.zeros(height.shape, bool)
    inside[60:180, 80:240] = True
    assert np.nanmax(np.abs(height[inside & ~scene.products])) < 0.5
    assert np.nanmedian(height[~inside & (height < 0)]) == pytest.approx(-40.0, abs=1.0)  # the table


@pytest.mark.parametrize(("shift", "angle"), [((0.0, 0.0), 0.0), ((14.0, -9.0), 0.0), ((-6.0, 5.0), 2.0)])
def test_a_moved_bin_is_found_and_its_interior_moves_with_it(shift, angle):
    model = commissioned()
    scene = bin_scene(products=5, shift=shift, angle_deg=angle)
    pose = locate_bin(model.reference, model.interior, gray(scene))
    assert pose is not None and pose.correlation > 0.5
    assert np.abs(pose.apply(model.interior) - scene.interior).max() < 1.5
    assert abs(pose.angle_deg - angle) < 0.3


def test_no_bin_is_bin_missing():
    stage = BinStage(commissioned(), BinSettings())
    with pytest.raises(BinMissing, match="no bin rim"):
        stage.observe(bin_scene(with_bin=False).rgb, None)
    far = bin_scene(shift=(120.0, 0.0))
    assert locate_bin(stage.model.reference, stage.model.interior, gray(far), max_shift_px=80.0) is None


def test_floor_by_reference_survives_a_change_of_light():
    model = commissioned(with_depth=False)
    scene = bin_scene(products=5, gain=0.7, offset=25)
    floor = floor_from_reference(gray(scene), model.reference)
    inside = np.zeros(floor.shape, bool)
    inside[55:185, 75:245] = True
    free = inside & ~scene.products
    assert floor[free].mean() > 0.85
    assert floor[scene.products].mean() < 0.15


def heaped(products: int, boxes: int, seed: int) -> BinScene:
    """`bin_scene` with `boxes` flat boxes (PRODUCT_MM high, each of one grey) strewn over its
    floor, 15 px or more from the walls. bin_scene keeps its products near the middle, where more
    of them only overlap (about a third of the interior at most): a fill level off by a factor
    shows only on a fuller bin."""
    scene = bin_scene(products=products, seed=seed)
    rng = np.random.default_rng(seed)
    (u0, v0), (u1, v1) = INTERIOR.min(axis=0).astype(int) + 15, INTERIOR.max(axis=0).astype(int) - 15
    rgb, depth, covered = scene.rgb.copy(), scene.depth_m.copy(), scene.products.copy()
    for _ in range(boxes):
        w, h = (int(n) for n in rng.integers(24, 48, 2))
        u, v = int(rng.integers(u0, u1 - w)), int(rng.integers(v0, v1 - h))
        box = np.zeros_like(covered)
        box[v : v + h, u : u + w] = True
        rgb[box] = rng.uniform(170, 250)
        depth[box & ~covered] -= PRODUCT_MM / 1000.0  # a box over a product lies at the same height
        covered |= box
    return dataclasses.replace(scene, rgb=rgb, depth_m=depth, products=covered)


@pytest.mark.parametrize("with_depth", [True, False])
def test_fill_level_follows_the_truth_from_an_empty_to_a_nearly_half_full_bin(with_depth):
    """Fill levels from 0 to 43 % of the interior. With depth the floor is the fitted plane, so
    the fill level is the drawn truth (this depth has no noise): within a point. Without depth the
    patch comparison marks a product's edge as product too (the non-floor region comes out grown,
    docs/bin.md), so it reads high, by up to 8 points here, never low. A loose tolerance on nearly
    empty bins alone let a fill level of half or one and a half times the truth pass."""
    low, high = (-1.0, 1.0) if with_depth else (-1.0, 10.0)
    stage = BinStage(commissioned(with_depth), BinSettings())
    scenes = [bin_scene(products=n, seed=n) for n in (0, 3, 8)] + [heaped(8, n, seed=8) for n in (8, 24)]
    truths = []
    for scene in scenes:
        view = stage.observe(scene.rgb, scene.depth_m if with_depth else None)
        inside = np.zeros(scene.products.shape, np.uint8)
        cv2.fillPoly(inside, [np.round(scene.interior).astype(np.int32)], 1)
        truth = 100.0 * scene.products[inside.astype(bool)].mean()
        truths.append(truth)
        assert low <= view.fill.percent - truth <= high, (view.fill.percent, truth)
        if with_depth and truth > 0:
            assert abs(view.fill.mean_height_mm - PRODUCT_MM) < 5.0
    assert truths[0] == 0.0 and max(truths) > 40.0  # from an empty bin to a nearly half full one (43 %)


def test_empty_bin_needs_n_cycles_and_clears_at_once():
    tracker = EmptyBinTracker(cycles=2, empty_below_percent=2.0)
    seen = [tracker.update(FillLevel(p)) for p in (30.0, 5.0, 1.0, 1.5, 0.5, 12.0, 0.0, 0.0)]
    assert seen == [False, False, False, True, True, False, False, True]
    with pytest.raises(ValueError, match="cycles"):
        EmptyBinTracker(cycles=0)
    assert fill_level(np.zeros((4, 4), bool), np.zeros((4, 4), bool)).percent == 0.0


def test_one_small_product_keeps_the_bin_from_empty_where_specks_do_not():
    """A product showing 1.5 % of the interior (a stick sachet at the image's edge in the
    simulated cell) is under the 2 % total that specks may reach, but it is one region: the bin
    is not empty. Scattered specks (1 %) are."""
    interior = np.ones((200, 200), bool)
    product = np.ones_like(interior)  # floor everywhere ...
    product[10:40, 10:30] = False  # ... but one product of 600 px = 1.5 %
    specks = np.ones_like(interior)
    specks.flat[np.arange(0, 40000, 101)] = False  # 397 single pixels, none touching another: 1 %
    one, scattered = fill_level(interior, product), fill_level(interior, specks)
    assert one.percent == pytest.approx(1.5) and one.largest_percent == pytest.approx(1.5)
    assert scattered.percent == pytest.approx(0.9925) and scattered.largest_percent == pytest.approx(0.0025)
    tracker = EmptyBinTracker(cycles=2, empty_below_percent=2.0, empty_max_region_percent=0.1)
    assert [tracker.update(one) for _ in range(3)] == [False, False, False]
    assert [tracker.update(scattered) for _ in range(3)] == [False, True, True]
    assert tracker.update(one) is False  # the product back in view clears it at once


def test_a_product_without_depth_alone_on_the_floor_stays_product():
    """A black or shiny product returns no depth at all: a hole with only floor around it. It
    borders no raised product, so it is no stereo shadow: it stays mostly product, the fill
    level shows it and the bin is not empty."""
    from edge.bin_model import floor_from_height

    height = np.zeros((120, 160), np.float32)
    height[40:65, 60:100] = np.nan
    floor = floor_from_height(height, tolerance_mm=4.0)
    assert (~floor[40:65, 60:100]).mean() > 0.6
    fill = fill_level(np.ones_like(floor), floor)
    assert fill.largest_percent > 0.1
    tracker = EmptyBinTracker(cycles=2, empty_below_percent=5.0)
    assert not any(tracker.update(fill) for _ in range(3))


def test_without_depth_the_picture_tells_a_floor_dropout_from_a_black_product():
    """Two holes in the depth, each alone on the floor: a dropout where the floor still looks
    like the empty bin, and a black product. Depth cannot tell them apart; the stage asks the
    empty-bin reference: the dropout is floor (the empty bin reads empty), the black product is
    not (the fill level shows it, bin_empty stays down)."""
    stage = BinStage(commissioned(), BinSettings(track=False))
    scene = bin_scene(products=0)
    cu, cv = (int(c) for c in scene.interior.mean(axis=0))
    dropout = scene.depth_m.copy()
    dropout[cv - 12 : cv + 12, cu - 20 : cu + 20] = np.nan
    views = [stage.observe(scene.rgb, dropout) for _ in range(2)]
    assert views[-1].floor[cv - 12 : cv + 12, cu - 20 : cu + 20].all() and views[-1].empty
    black = scene.rgb.copy()
    black[cv - 12 : cv + 12, cu - 20 : cu + 20] = 8
    view = stage.observe(black, dropout)
    assert (~view.floor[cv - 10 : cv + 10, cu - 18 : cu + 18]).mean() > 0.9
    assert view.fill.largest_percent > 0.1 and not view.empty


def test_an_interior_drawn_onto_a_wall_still_lets_an_empty_bin_read_empty():
    """The commissioned polygon 1 px to the right, onto the right wall: one covered strip along
    that wall, a region larger than 0.1 % of the interior, but no product. The region rule looks
    a few px inside the outline, so the empty bin still reads empty within 2 cycles."""
    model = commissioned()
    grown = model.interior + np.array([1.0, 0.0])
    stage = BinStage(dataclasses.replace(model, interior=grown), BinSettings(track=False))
    empty = bin_scene(products=0)
    views = [stage.observe(empty.rgb, empty.depth_m) for _ in range(2)]
    assert views[-1].empty
    inside = np.zeros(views[-1].floor.shape, np.uint8)
    cv2.fillPoly(inside, [np.round(grown).astype(np.int32)], 1)
    whole = fill_level(inside.astype(bool), views[-1].floor)  # no margin: the strip is a region
    assert whole.largest_percent >= 0.1 and views[-1].fill.largest_percent < 0.1


def test_a_zero_region_limit_turns_the_region_rule_off():
    tracker = EmptyBinTracker(cycles=2, empty_below_percent=2.0, empty_max_region_percent=0.0)
    one = FillLevel(1.5, None, 1.5)
    assert [tracker.update(one) for _ in range(2)] == [False, True]


def test_keep_drops_the_floor_the_outside_and_grasps_near_a_wall():
    scene = bin_scene(products=1, seed=3)
    stage = BinStage(commissioned(), BinSettings(wall_clearance_px=12.0))
    view = stage.observe(scene.rgb, scene.depth_m)
    labels = np.zeros(scene.products.shape, np.int32)
    labels[scene.products] = 1  # a product
    labels[60:100, 80:110] = np.where(scene.products[60:100, 80:110], 1, 2)  # 2: mostly floor
    keep = view.keep(labels, (1.0, 1.0), stage.settings)
    vs, us = np.nonzero(scene.products)
    u, v = float(us.mean()), float(vs.mean())
    assert keep(u, v, 1)
    assert not keep(u, v, 2)  # a candidate mostly on the floor
    assert not keep(5.0, 5.0, 1)  # outside the bin
    edge_u = float(us.max()) + 2.0  # just off the product's right edge: the cup would land on the floor
    assert view.floor[int(v), int(edge_u)] and not keep(edge_u, v, 1)
    view = dataclasses.replace(view, floor=np.zeros_like(view.floor))  # the walls alone
    keep = view.keep(labels, (1.0, 1.0), stage.settings)
    assert not keep(INTERIOR[0, 0] + 5, 120.0, 1)  # 5 px from the left wall, clearance 12
    assert keep(INTERIOR[0, 0] + 20, 120.0, 1)
    mm = view.keep(labels, (1.0, 1.0), BinSettings(wall_clearance_mm=30.0), mm_per_px=lambda u, v: 2.0)
    assert not mm(INTERIOR[0, 0] + 12, 120.0, 1) and mm(INTERIOR[0, 0] + 18, 120.0, 1)  # 15 px clearance


def test_walls_beyond_the_frame_bound_grasps_and_the_frames_edge_does_not():
    """A bin larger than the view, given with its real corners outside the frame: the clearance
    is kept from those walls, so a product at the picture's edge is reachable; a wall just past
    the edge still keeps the cup away, for the planner's rule and the seal check's area alike."""
    scene = bin_scene(products=0)
    h, w = scene.rgb.shape[:2]
    labels = np.ones((h, w), np.int32)
    settings = BinSettings(wall_clearance_px=12.0, track=False)  # no rim in view to follow
    far_walls = None
    for beyond, reachable_at_edge in ((60.0, True), (3.0, False)):
        interior = np.array([[-beyond, -beyond], [w - 1 + beyond, -beyond],
                             [w - 1 + beyond, h - 1 + beyond], [-beyond, h - 1 + beyond]])  # fmt: skip
        model = commission_bin(scene.rgb, scene.depth_m, interior)
        far_walls = model if beyond > 50 else far_walls
        view = BinStage(model, settings).observe(scene.rgb, scene.depth_m)
        view = dataclasses.replace(view, floor=np.zeros_like(view.floor))  # the walls alone
        keep = view.keep(labels, (1.0, 1.0), settings)
        reachable = view.reachable((h, w), settings)
        assert keep(5.0, 120.0, 1) is reachable_at_edge and bool(reachable[120, 5]) is reachable_at_edge
        assert keep(w / 2, h / 2, 1) and reachable[h // 2, w // 2]
    clipped = np.array([[0, 0], [w - 1, 0], [w - 1, h - 1], [0, h - 1]], float)  # drawn to the edge
    stage = BinStage(commission_bin(scene.rgb, scene.depth_m, clipped), settings)
    view = stage.observe(scene.rgb, scene.depth_m)
    view = dataclasses.replace(view, floor=np.zeros_like(view.floor))
    assert not view.keep(labels, (1.0, 1.0), settings)(5.0, 120.0, 1)
    assert not view.reachable((h, w), settings)[120, 5]  # the polygon's edge is a wall for both
    tracking = dataclasses.replace(settings, track=True)
    with pytest.raises(
        BinModelError, match="track = true, but the commissioned bin's rim is out of the picture"
    ):
        BinStage(far_walls, tracking)
    near = np.array([[-20.0, -20.0], [w + 19.0, -20.0], [w + 19.0, h + 19.0], [-20.0, h + 19.0]])
    with pytest.raises(BinModelError, match="rim is out of the picture"):  # the band's inner half in view
        BinStage(commission_bin(scene.rgb, scene.depth_m, near), tracking)
    BinStage(commissioned(), tracking)  # the whole rim in view

    def scale_in_view_only(u: float, v: float) -> float:  # a ray past the horizon misses the floor
        if not (0 <= u <= w - 1 and 0 <= v <= h - 1):
            raise ValueError(f"pixel ({u}, {v}): its ray does not meet the pick plane")
        return 2.0

    view = BinStage(far_walls, settings).observe(scene.rgb, scene.depth_m)
    assert view.reachable((h, w), BinSettings(wall_clearance_mm=30.0), scale_in_view_only).mask().all()


def test_a_product_across_the_pictures_edge_keeps_the_bin_from_empty():
    """The empty-bin region rule looks a few px inside the interior's outline; where the interior
    goes on past the picture its edge is no outline, so a product lying across it still counts."""
    scene = bin_scene(products=0)
    h, w = scene.rgb.shape[:2]
    beyond = np.array([[-60.0, -60.0], [w + 59.0, -60.0], [w + 59.0, h + 59.0], [-60.0, h + 59.0]])
    stage = BinStage(commission_bin(scene.rgb, scene.depth_m, beyond), BinSettings(track=False))
    rgb, depth = scene.rgb.copy(), scene.depth_m.copy()
    rgb[100:140, :4] = 250  # a product of 4 x 40 px at the left edge, the rest of it out of view
    depth[100:140, :4] -= PRODUCT_MM / 1000.0
    fill = stage.observe(rgb, depth).fill
    assert fill.largest_percent > BinSettings().empty_max_region_percent


@pytest.mark.parametrize(
    ("shift", "angle", "noise_mm", "dropouts"),
    [
        ((0.0, 0.0), 0.0, 0.0, 0.0),
        ((14.0, -9.0), 0.0, 1.5, 0.02),
        ((-6.0, 5.0), 2.0, 3.0, 0.15),
        ((3.5, 2.2), -8.0, 0.0, 0.0),
    ],
)
def test_the_detected_interior_is_the_floor_not_the_rim(shift, angle, noise_mm, dropouts):
    """Without a polygon `binpick bin` took the largest quadrilateral outline in the picture: on
    the rim, 8 px outside the floor (IoU 0.86 with the floor, 14 % of it rim, corners 10 px off),
    so the empty bin read 14 % full. With depth the floor is found inside that outline: within a
    pixel of the true floor's corners and never outside it, on a moved and turned bin, with
    products on the floor, noisy depth (3 mm) and dropouts (15 % of the pixels)."""
    scene = bin_scene(products=3, shift=shift, angle_deg=angle)
    rng = np.random.default_rng(5)
    depth = scene.depth_m + rng.normal(0.0, noise_mm / 1000.0, scene.depth_m.shape).astype(np.float32)
    depth[rng.random(depth.shape) < dropouts] = np.nan
    found = detect_interior(gray(scene), depth)
    assert found is not None and found.on_floor
    corner_error = np.linalg.norm(found.polygon[:, None, :] - scene.interior[None], axis=2).min(axis=1)
    assert corner_error.max() <= 1.5
    truth = interior_mask(scene.interior, depth.shape)
    assert not (interior_mask(found.polygon, truth.shape) & ~truth).any()
    rim_only = detect_interior(gray(scene))  # without depth: the rim's outline, said to be that
    assert rim_only is not None and not rim_only.on_floor
    assert (interior_mask(rim_only.polygon, truth.shape) & ~truth).any()


def test_model_file_round_trip_and_clear_errors(tmp_path):
    model = commissioned()
    path = save_bin_model(model, tmp_path / "bin.json")
    again = load_bin_model(path)
    assert np.allclose(again.interior, model.interior) and np.array_equal(again.reference, model.reference)
    assert (again.floor.a, again.floor.b, again.floor.c) == (model.floor.a, model.floor.b, model.floor.c)
    assert again.rim_height_mm == pytest.approx(model.rim_height_mm, abs=1e-3)
    document = json.loads(path.read_text())
    document["interior"] = [[1, 2]]
    path.write_text(json.dumps(document))
    with pytest.raises(BinModelError, match="interior: expected at least 3"):
        load_bin_model(path)
    with pytest.raises(BinModelError, match="cannot read"):
        load_bin_model(tmp_path / "missing.json")
    (tmp_path / "bad.json").write_text("{")
    with pytest.raises(BinModelError, match="not valid JSON"):
        load_bin_model(tmp_path / "bad.json")


def test_binpick_bin_commissions_from_files(tmp_path):
    empty = bin_scene(products=0)
    cv2.imwrite(str(tmp_path / "empty.png"), empty.rgb)
    np.save(tmp_path / "empty_depth.npy", empty.depth_m)
    config = tmp_path / "cell.toml"
    config.write_text('[bin]\nmodel = "bin.json"\n')
    polygon = " ".join(f"{u:g},{v:g}" for u, v in INTERIOR)
    image, depth = str(tmp_path / "empty.png"), str(tmp_path / "empty_depth.npy")
    cmd = [sys.executable, "-m", "edge", "bin", "--config", str(config), "--image", image,
           "--depth", depth, "--polygon", polygon]  # fmt: skip
    done = subprocess.run(cmd, capture_output=True, text=True, timeout=60, cwd=ROOT)
    assert done.returncode == 0, done.stderr
    assert "rim 60 mm above it" in done.stdout
    model = load_bin_model(tmp_path / "bin.json")
    reference = json.loads((tmp_path / "bin.json").read_text())["reference"]
    assert model.floor.rms_mm < 0.5 and (tmp_path / reference).is_file()
    # without a polygon: the rim is found as the largest quadrilateral in the picture, the floor
    # inside it from the depth (the rim's outline itself lies 8 px outside the floor: the empty
    # bin read 14 % full, and was refused)
    done = subprocess.run(cmd[:-2] + ["--out", str(tmp_path / "found.json")],
                          capture_output=True, text=True, timeout=60, cwd=ROOT)  # fmt: skip
    assert done.returncode == 0, done.stderr
    assert "detected: the floor, from depth, inside the rim's outline" in done.stdout
    assert "warning" not in done.stderr
    found = load_bin_model(tmp_path / "found.json")
    assert len(found.interior) == 4
    assert np.abs(found.interior[:, None, :] - INTERIOR[None]).max(axis=2).min(axis=1).max() <= 1.0
    truth = interior_mask(INTERIOR, empty.depth_m.shape)
    assert not (interior_mask(found.interior, truth.shape) & ~truth).any()  # no rim, wall or table
    fill = BinStage(found, BinSettings(track=False)).observe(empty.rgb, empty.depth_m).fill
    assert fill.percent < BinSettings().empty_below_percent
    # without depth the picture's outline is kept, and the command says that it may hold the rim
    flat = subprocess.run(cmd[:6] + ["--image", image, "--out", str(tmp_path / "flat.json")],
                          capture_output=True, text=True, timeout=60, cwd=ROOT)  # fmt: skip
    assert flat.returncode == 0, flat.stderr
    assert "without depth it may hold the rim and walls" in flat.stderr and "--polygon" in flat.stderr
    bad = subprocess.run(cmd[:-1] + ["1,2 3"], capture_output=True, text=True, timeout=60, cwd=ROOT)
    assert bad.returncode == 2 and "--polygon: point '3': expected u,v" in bad.stderr
    assert "frame's border" not in done.stderr  # the whole bin in view
    h, w = empty.rgb.shape[:2]
    cut = f"0,{INTERIOR[0, 1]:g} {INTERIOR[1, 0]:g},{INTERIOR[1, 1]:g} {INTERIOR[2, 0]:g},{h - 1} 0,{h - 1}"
    # (cut at the picture's edge, it takes in the left wall and the table: it reads 80 % full, so it
    # is written with --accept-failed here)
    cropped = subprocess.run(cmd[:-1] + [cut, "--out", str(tmp_path / "cut.json"), "--accept-failed"],
                             capture_output=True, text=True, timeout=60, cwd=ROOT)  # fmt: skip
    assert cropped.returncode == 0, cropped.stderr
    assert "interior reaches the frame's border" in cropped.stderr
    larger = f"-40,-30 {w + 40},-30 {w + 40},{h + 30} -40,{h + 30}"  # a bin larger than the view
    # (the whole picture, rim and table too, in this scene: written with --accept-failed as well)
    beyond = subprocess.run(cmd[:-1] + [larger, "--out", str(tmp_path / "larger.json"), "--accept-failed"],
                            capture_output=True, text=True, timeout=60, cwd=ROOT)  # fmt: skip
    assert beyond.returncode == 0, beyond.stderr
    assert "real corners" in beyond.stderr
    assert load_bin_model(tmp_path / "larger.json").interior.min() == -40
    elsewhere = f"{w + 10},0 {w + 90},0 {w + 90},50"  # no part of it in this frame
    bad = subprocess.run(cmd[:-1] + [elsewhere], capture_output=True, text=True, timeout=60, cwd=ROOT)
    assert bad.returncode == 2 and "0.00 % of the 320x240 frame lies inside it" in bad.stderr


def test_binpick_bin_takes_the_bins_corners_in_the_robots_frame(tmp_path):
    """A bin larger than the view, its inner corners touched with the tool (robot mm): `binpick
    bin --corners-mm` projects them through the calibration, two of them outside the frame."""
    from edge.calibration_file import save_calibration

    empty = bin_scene(products=0)
    h, w = empty.rgb.shape[:2]
    cal = looking_down((w, h), 300.0)
    save_calibration(cal, tmp_path / "cal.json")
    pixels = np.array([[-30.0, 40.0], [250.0, 40.0], [250.0, 190.0], [-30.0, 190.0]])  # left wall out of view
    corners = np.array([cal.pixel_to_robot(u, v) for u, v in pixels])
    cv2.imwrite(str(tmp_path / "empty.png"), empty.rgb)
    config = tmp_path / "cell.toml"
    config.write_text(f'[calibration]\nfile = "{tmp_path / "cal.json"}"\n[bin]\nmodel = "bin.json"\n')
    image = str(tmp_path / "empty.png")
    cmd = [sys.executable, "-m", "edge", "bin", "--config", str(config), "--image", image,
           "--out", str(tmp_path / "bin.json"), "--corners-mm"]  # fmt: skip
    text = " ".join(",".join(f"{c:.4f}" for c in corner) for corner in corners)
    done = subprocess.run(cmd + [text], capture_output=True, text=True, timeout=60, cwd=ROOT)
    assert done.returncode == 0, done.stderr
    assert "--corners-mm" in done.stdout and "real corners" in done.stderr
    interior = load_bin_model(tmp_path / "bin.json").interior  # each wall sampled every 10 mm
    assert len(interior) > 4 and all(np.abs(interior - p).sum(axis=1).min() < 0.01 for p in pixels)
    outline = pixels.astype(np.float32)
    assert all(abs(cv2.pointPolygonTest(outline, (float(u), float(v)), True)) < 0.01 for u, v in interior)
    above = text.split()
    above[2] = f"{corners[2][0]:.1f},{corners[2][1]:.1f},900"  # above the camera, behind it
    bad = subprocess.run(cmd + [" ".join(above)], capture_output=True, text=True, timeout=60, cwd=ROOT)
    assert bad.returncode == 2 and "corner 3" in bad.stderr and "behind the camera" in bad.stderr
    bad = subprocess.run(cmd + ["1,2,3 4,5"], capture_output=True, text=True, timeout=60, cwd=ROOT)
    assert bad.returncode == 2 and "--corners-mm: point '4,5': expected x,y,z (3 numbers)" in bad.stderr
    bad = subprocess.run(cmd + ["1,2,3 4,,5,6"], capture_output=True, text=True, timeout=60, cwd=ROOT)
    assert bad.returncode == 2 and "--corners-mm: point '4,,5,6': expected x,y,z (3 numbers)" in bad.stderr
    bow_tie = " ".join(text.split()[i] for i in (0, 2, 1, 3))
    bad = subprocess.run(cmd + [bow_tie], capture_output=True, text=True, timeout=60, cwd=ROOT)
    assert bad.returncode == 2 and "crosses itself" in bad.stderr
    other = tmp_path / "other.toml"  # this calibration is cell "test"'s: the appliance would refuse it
    other.write_text(config.read_text().replace("[bin]", 'cell = "cell-b"\n[bin]'))
    bad = subprocess.run(
        [*cmd[:4], "--config", str(other), *cmd[6:], text],
        capture_output=True,
        text=True,
        timeout=60,
        cwd=ROOT,
    )
    assert (
        bad.returncode == 2
        and "calibration is for cell 'test', but this appliance is cell 'cell-b'" in bad.stderr
    )
    # a barrel lens: a bin 3.2 m wide seen from 0.8 m reaches where the distortion model folds back
    save_calibration(dataclasses.replace(cal, dist_coeffs=np.array([-0.3, 0.08, 0.0, 0.0, -0.01])),
                     tmp_path / "cal.json")  # fmt: skip
    far = "-1200,-1600,20 2000,-1600,20 2000,1600,20 -1200,1600,20"
    bad = subprocess.run(cmd + [far], capture_output=True, text=True, timeout=60, cwd=ROOT)
    assert bad.returncode == 2 and "where the lens model does not hold" in bad.stderr
    done = subprocess.run(cmd + [text], capture_output=True, text=True, timeout=60, cwd=ROOT)
    assert done.returncode == 0, done.stderr  # the same lens, the bin nearer the view: fine
    save_calibration(dataclasses.replace(cal, image_size=(640, 480)), tmp_path / "cal.json")
    bad = subprocess.run(cmd + [text], capture_output=True, text=True, timeout=60, cwd=ROOT)
    assert bad.returncode == 2 and "is for 640x480 frames, this frame is 320x240" in bad.stderr


def test_a_stereo_shadow_beside_a_product_is_floor():
    from edge.bin_model import floor_from_height

    height = np.zeros((20, 30), np.float32)  # the floor
    height[5:15, 5:15] = 20.0  # a product 20 mm high
    height[5:15, 15:18] = np.nan  # its stereo shadow, on the floor beside it
    height[9:11, 9:11] = np.nan  # a dropout on the product itself
    floor = floor_from_height(height, tolerance_mm=4.0)
    assert floor[5:15, 15:18].all()  # the whole shadow lies on the farther surface: floor
    assert not floor[9:11, 9:11].any()  # the product's dropout stays product
    assert not floor[5:15, 5:15].any()
    plain = floor_from_height(height, tolerance_mm=4.0, fill_holes=False)
    assert not plain[5:15, 15:18].any()  # without the rule no hole is floor


def test_a_wide_stereo_shadow_is_floor_in_its_middle_too():
    """A shadow 12 px wide beside a tall product (the simulated cell's stick sachet floor pick):
    its middle has no measured pixel within 3 px, yet all of it is floor; a dropout as wide on
    the product, and a crack on the product whose tip reaches the floor, stay
    product."""
    from edge.bin_model import floor_from_height

    height = np.zeros((60, 80), np.float32)
    height[10:50, 10:40] = 30.0  # a product
    height[10:50, 40:52] = np.nan  # its shadow on the floor
    height[20:32, 15:27] = np.nan  # a dropout on the product
    height[9:20, 24:27] = np.nan  # a crack on the product whose tip reaches the floor
    floor = floor_from_height(height, tolerance_mm=4.0)
    assert floor[10:50, 40:52].all()
    assert not floor[20:32, 15:27].any()
    assert not floor[11:20, 24:27].any()  # (its tip, one row on the floor, is floor)
    assert not floor[11:50, 10:36].any()


def test_a_hole_between_products_is_split_by_the_nearer_measured_surface():
    """A hole between two tall products that meets the floor at one end only (a valley of
    shadows between boxes): too little floor around it to be floor as a whole, so each of its
    pixels follows the nearer measured surface; its end by the floor is floor, its sides product."""
    from edge.bin_model import floor_from_height

    height = np.zeros((60, 80), np.float32)
    height[:, :30] = 80.0
    height[:, 50:] = 80.0
    height[:50, 30:50] = np.nan
    floor = floor_from_height(height, tolerance_mm=4.0)
    assert floor[46:50, 36:44].all()
    assert not floor[:20, 30:50].any()
    assert floor[50:, 30:50].all() and not floor[:, :30].any()


def test_with_depth_the_bin_is_found_by_its_rims_height_in_the_dark():
    """The rim's height, not its look: a moved bin in a frame too dark for the image's edges is
    found from the depth (source "depth"); without depth the same frame is bin_missing; no bin
    in the depth is bin_missing too."""
    from edge.bin_model.locate import rim_view

    model = commissioned()
    assert model.rim_reference is not None and model.rim_height_mm == pytest.approx(RIM_MM, abs=1.0)
    stage = BinStage(model, BinSettings())
    dark = bin_scene(products=5, shift=(11.0, -7.0), angle_deg=1.5, gain=0.0, offset=3.0)  # lights off
    view = stage.observe(dark.rgb, dark.depth_m)
    assert view.pose.source == "depth" and view.pose.to_dict()["source"] == "depth"
    assert np.abs(view.interior - dark.interior).max() < 1.5
    with pytest.raises(BinMissing):
        stage.observe(dark.rgb, None)
    lit = bin_scene(products=5, shift=(14.0, -9.0))
    assert stage.observe(lit.rgb, None).pose.source == "image"
    gone = bin_scene(with_bin=False, gain=0.0, offset=3.0)
    with pytest.raises(BinMissing):
        stage.observe(gone.rgb, gone.depth_m)
    assert rim_view(np.array([[RIM_MM, 0.0, np.nan, 2 * RIM_MM]]), RIM_MM).tolist() == [[255, 0, 0, 0]]


def test_a_moved_bin_is_found_every_time_whatever_the_last_bits_of_its_edge_image():
    """OpenCV's vector code leaves the last bits of the edge image to memory alignment, so the
    same frame can differ by a rounding from one call to the next; the 4x coarse level of the
    registration once walked a good start off the rim on such a difference (7 of 30 fresh stages
    lost this bin). A level now keeps only a result that agrees better than its start."""
    lit, model = bin_scene(products=5, shift=(14.0, -9.0)), commissioned()
    for _ in range(20):
        stage = BinStage(model, BinSettings())
        view = stage.observe(lit.rgb.copy(), None)
        assert view.pose.source == "image" and np.abs(view.interior - lit.interior).max() < 1.5


def test_the_rim_reference_round_trips_through_the_model_file(tmp_path):
    model = commissioned()
    path = save_bin_model(model, tmp_path / "bin.json")
    back = load_bin_model(path)
    assert back.rim_reference is not None and np.array_equal(back.rim_reference, model.rim_reference)
    (tmp_path / json.loads(path.read_text())["rim_reference"]).write_bytes(b"not a png")
    with pytest.raises(BinModelError, match="rim_reference"):
        load_bin_model(path)
    flat = commissioned(with_depth=False)
    assert flat.rim_reference is None
    assert load_bin_model(save_bin_model(flat, tmp_path / "flat.json")).rim_reference is None


def binpick_bin(tmp_path, *args: str) -> subprocess.CompletedProcess:
    """`binpick bin` on the empty bin's photo (written once to tmp_path), with `args`."""
    image = tmp_path / "empty.png"
    if not image.is_file():
        cv2.imwrite(str(image), bin_scene(products=0).rgb)
    config = tmp_path / "cell.toml"
    if not config.is_file():
        config.write_text("[bin]\nenabled = false\n")
    cmd = [sys.executable, "-m", "edge", "bin", "--config", str(config), "--image", str(image), *args]
    return subprocess.run(cmd, capture_output=True, text=True, timeout=60, cwd=ROOT)


def test_binpick_bin_refuses_a_folder_as_out_and_leaves_the_model_in_place(tmp_path):
    polygon = " ".join(f"{u:g},{v:g}" for u, v in INTERIOR)
    folder = tmp_path / "bm"
    done = binpick_bin(tmp_path, "--polygon", polygon, "--out", str(folder / "bin.json"))
    assert done.returncode == 0, done.stderr
    (folder / "bin").mkdir()
    before = {f.name: f.read_bytes() for f in folder.iterdir() if f.is_file()}
    other = "20,20 300,20 300,220 20,220"  # another interior, the same photo: the same reference
    bad = binpick_bin(tmp_path, "--polygon", other, "--out", str(folder / "bin"))
    assert bad.returncode == 2 and "Traceback" not in bad.stderr
    assert f"--out {folder / 'bin'}: is a folder" in bad.stderr
    assert {f.name: f.read_bytes() for f in folder.iterdir() if f.is_file()} == before
    (tmp_path / "note.txt").write_text("a file")
    bad = binpick_bin(tmp_path, "--polygon", other, "--out", str(tmp_path / "note.txt" / "bin.json"))
    assert bad.returncode == 2 and f"{tmp_path / 'note.txt'} is a file, expected a folder" in bad.stderr


def test_binpick_bin_refuses_corners_out_of_order_naming_the_crossing_edges(tmp_path):
    """A bow tie (two corners swapped) used to be written as the bin: two triangles meeting in the
    middle of the floor. Refused like --corners-mm, by the one check (edge.geometry), from --polygon,
    from `[bin] polygon` and from a calibration's ROI; a concave outline stays fine."""
    from edge.calibration_file import save_calibration

    (x0, y0), (x1, y1) = INTERIOR[0], INTERIOR[2]
    bow_tie = f"{x0:g},{y0:g} {x1:g},{y1:g} {x1:g},{y0:g} {x0:g},{y1:g}"
    out = tmp_path / "bin.json"
    bad = binpick_bin(tmp_path, "--polygon", bow_tie, "--out", str(out))
    assert bad.returncode == 2 and "Traceback" not in bad.stderr and bad.stderr.count("\n") == 1
    assert (
        "interior (--polygon): the outline crosses itself: the edge from corner 1 (70, 50) to corner 2 "
        "(250, 190) crosses the edge from corner 3 (250, 50) to corner 4 (70, 190); expected the corners "
        "in order around the bin"
    ) in bad.stderr
    assert not out.exists()
    lopsided = f"{x0:g},{y0:g} {x1:g},{y1:g} {x1:g},110 {x0:g},{y1:g}"  # unequal triangles: area 5400 px
    bad = binpick_bin(tmp_path, "--polygon", lopsided, "--out", str(out))
    assert bad.returncode == 2 and "corner 3 (250, 110)" in bad.stderr and not out.exists()
    notched = f"{x0:g},{y0:g} {x1:g},{y0:g} {x1:g},{y1:g} 160,{y1:g} 160,120 {x0:g},120"  # concave: fine
    done = binpick_bin(tmp_path, "--polygon", notched, "--out", str(out))
    assert done.returncode == 0, done.stderr

    corners = np.array([[x0, y0], [x1, y1], [x1, y0], [x0, y1]]).tolist()
    (tmp_path / "cell.toml").write_text(f"[bin]\npolygon = {corners}\n")
    bad = binpick_bin(tmp_path, "--out", str(tmp_path / "other.json"))
    assert bad.returncode == 2 and "cell.toml: bin.polygon: the outline crosses itself" in bad.stderr
    roi = np.array(corners, float)
    roi[2, 1] = 110  # the lopsided one: a calibration file refuses a ROI of no area
    save_calibration(looking_down((320, 240), 300.0, roi=roi), tmp_path / "cal.json")
    (tmp_path / "cell.toml").write_text(f'[calibration]\nfile = "{tmp_path / "cal.json"}"\n[bin]\n')
    bad = binpick_bin(tmp_path, "--out", str(tmp_path / "other.json"))
    assert bad.returncode == 2, bad.stderr
    assert "interior (the calibration's ROI): the outline crosses itself" in bad.stderr
    assert not (tmp_path / "other.json").exists()


def test_binpick_bin_refuses_a_frame_that_would_not_read_empty_unless_accept_failed(tmp_path):
    """Products on the commissioning frame's floor: the plane misses the floor, and the appliance
    read this very frame as most of the way full, so bin_empty could never rise. `binpick bin` said
    nothing; now it refuses, naming the fill, the RMS and the tolerance, and --accept-failed
    writes the model with a warning (as `binpick calibrate --accept-failed` does)."""
    cluttered = bin_scene(products=8)
    cv2.imwrite(str(tmp_path / "empty.png"), cluttered.rgb)
    np.save(tmp_path / "depth.npy", cluttered.depth_m)
    polygon = " ".join(f"{u:g},{v:g}" for u, v in INTERIOR)
    out = tmp_path / "bin.json"
    args = ("--depth", str(tmp_path / "depth.npy"), "--polygon", polygon, "--out", str(out))
    bad = binpick_bin(tmp_path, *args)
    assert bad.returncode == 2 and "Traceback" not in bad.stderr and bad.stderr.count("\n") == 1
    found = re.search(r"this frame would read ([0-9.]+) % full, not empty \(empty below \[bin\] "
                      r"empty_below_percent = 2\), so bin_empty could never rise: floor plane RMS "
                      r"([0-9.]+) mm against \[bin\] floor_tolerance_mm = 4; ", bad.stderr)  # fmt: skip
    assert found, bad.stderr
    assert "the interior must hold the empty bin's bare floor only" in bad.stderr
    assert not out.exists()
    done = binpick_bin(tmp_path, *args, "--accept-failed")
    assert done.returncode == 0, done.stderr
    assert f"warning: written with --accept-failed: this frame would read {found[1]} % full" in done.stderr
    stage = BinStage(load_bin_model(out), BinSettings(track=False))
    assert f"{stage.observe(cluttered.rgb[..., ::-1].copy(), cluttered.depth_m).fill.percent:.1f}" == found[1]


def test_saving_again_keeps_the_previous_model_and_its_images(tmp_path, monkeypatch):
    """The images are named for their content, the JSON replaced last with the previous one kept
    as bin.json.bak<N>: a save that fails before the JSON leaves the old model whole, and every
    backup loads with its own images."""
    import edge.bin_model.model as model_file

    first, second = commissioned(), commissioned()
    second.reference = 255 - second.reference
    second.rim_reference = 255 - second.rim_reference
    path = save_bin_model(first, tmp_path / "bin.json")
    write = model_file.write_atomically

    def crash_on_the_json(target, data):
        if target == path:
            raise OSError("disk full")
        write(target, data)

    monkeypatch.setattr(model_file, "write_atomically", crash_on_the_json)
    with pytest.raises(OSError):
        save_bin_model(second, path)
    monkeypatch.undo()
    kept = load_bin_model(path)  # the old JSON with the old images, not the new ones
    assert np.array_equal(kept.reference, first.reference)
    assert np.array_equal(kept.rim_reference, first.rim_reference)
    save_bin_model(second, path)
    now, before = load_bin_model(path), load_bin_model(tmp_path / "bin.json.bak2")
    assert np.array_equal(now.reference, second.reference) and np.array_equal(
        now.rim_reference, second.rim_reference
    )
    assert np.array_equal(before.reference, first.reference)
    assert np.array_equal(before.rim_reference, first.rim_reference)


def test_a_model_file_of_the_earlier_naming_loads_and_its_image_survives_a_new_save(tmp_path):
    """Files written before the images were named for their content (bin_reference.png) load,
    and a new save leaves them to the backup that refers to them."""
    model = commissioned(with_depth=False)
    h, w = model.reference.shape
    cv2.imwrite(str(tmp_path / "bin_reference.png"), model.reference)
    old = {"format": 1, "image_size": [w, h], "interior": INTERIOR.tolist(), "reference": "bin_reference.png",
           "floor": None, "rim_height_mm": 0.0}  # fmt: skip
    (tmp_path / "bin.json").write_text(json.dumps(old))
    assert np.array_equal(load_bin_model(tmp_path / "bin.json").reference, model.reference)
    save_bin_model(dataclasses.replace(model, reference=255 - model.reference), tmp_path / "bin.json")
    assert np.array_equal(load_bin_model(tmp_path / "bin.json.bak1").reference, model.reference)


def test_a_floor_without_its_informative_rms_loads(tmp_path):
    path = save_bin_model(commissioned(), tmp_path / "bin.json")
    document = json.loads(path.read_text())
    del document["floor"]["rms_mm"]
    path.write_text(json.dumps(document))
    assert load_bin_model(path).floor.rms_mm == 0.0


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (lambda d: [], "expected a JSON object (a bin model), got list"),
        (lambda d: {"garbage": 1}, "format: missing (expected 1; is this a bin model?)"),  # was "got None"
        (lambda d: {**d, "format": 2}, "format: expected 1, got 2"),
        (
            lambda d: {**d, "interior": [[70, 50], [float("nan"), 50], [250, 190]]},
            "interior: expected finite",
        ),
        (lambda d: {**d, "interior": [["a", 50], [250, 50], [250, 190]]}, "interior: expected at least 3"),
        (lambda d: {**d, "floor": {**d["floor"], "a": "x"}}, "floor.a: expected a finite number, got 'x'"),
        # A missing key says so and what it holds (a floor without "a" said "got None"):
        (lambda d: {**d, "floor": {"b": 0.0, "c": 1.0}}, "floor.a: missing (expected a finite number)"),
        (lambda d: {**d, "floor": {"a": 0.0, "c": 1.0}}, "floor.b: missing (expected a finite number)"),
        (lambda d: {**d, "floor": {**d["floor"], "a": None}}, "floor.a: expected a finite number, got None"),
        (
            lambda d: {k: v for k, v in d.items() if k != "interior"},
            "interior: missing (expected at least 3 [u, v]",
        ),
        (
            lambda d: {k: v for k, v in d.items() if k != "image_size"},
            "image_size: missing (expected [width, height]",
        ),
        (
            lambda d: {k: v for k, v in d.items() if k != "reference"},
            "reference: missing (expected the name of a PNG",
        ),
        (lambda d: {**d, "floor": [1, 2, 3]}, "floor: expected an object with a, b, c, got list"),
        (lambda d: {**d, "image_size": [1e400, 240]}, "image_size: expected [width, height]"),
        (lambda d: {**d, "rim_height_mm": float("nan")}, "rim_height_mm: expected a finite number"),
        (lambda d: {**d, "reference": ""}, "reference: expected the name of a PNG file beside it"),
    ],
)
def test_a_broken_model_file_is_one_error_naming_the_key(tmp_path, change, message):
    path = save_bin_model(commissioned(), tmp_path / "bin.json")
    path.write_text(json.dumps(change(json.loads(path.read_text()))))
    with pytest.raises(BinModelError, match=re.escape(f"{path}: {message}")):
        load_bin_model(path)


@pytest.mark.parametrize(
    ("content", "message"),
    [
        (bytes(range(256)) * 4, "not a bin model (expected a UTF-8 JSON file, got binary data)"),
        (b"[" * 100_000, "not a bin model (JSON nested too deeply)"),
    ],
)
def test_a_model_file_that_is_no_json_text_is_one_error_naming_the_file(tmp_path, content, message):
    path = tmp_path / "bin.json"
    path.write_bytes(content)
    with pytest.raises(BinModelError, match=re.escape(f"{path}: {message}")):
        load_bin_model(path)


def test_binpick_bin_refuses_a_calibration_roi_of_another_frame_size(tmp_path):
    from edge.calibration_file import save_calibration

    save_calibration(looking_down((640, 480), 300.0, roi=INTERIOR.copy()), tmp_path / "cal.json")
    (tmp_path / "cell.toml").write_text(f'[calibration]\nfile = "{tmp_path / "cal.json"}"\n[bin]\n')
    bad = binpick_bin(tmp_path, "--out", str(tmp_path / "bin.json"))
    assert bad.returncode == 2 and "Traceback" not in bad.stderr
    assert "is for 640x480 frames, this frame is 320x240" in bad.stderr, bad.stderr
    assert not (tmp_path / "bin.json").exists()
    save_calibration(looking_down((320, 240), 300.0, roi=INTERIOR.copy()), tmp_path / "cal.json")
    done = binpick_bin(tmp_path, "--out", str(tmp_path / "bin.json"))
    assert done.returncode == 0 and "the calibration's ROI" in done.stdout, done.stderr


def test_binpick_bin_refuses_an_out_that_is_one_of_its_inputs(tmp_path):
    """`--out cell.toml` (or the photo) replaced the configuration with the model's JSON, exit 0."""
    polygon = " ".join(f"{u:g},{v:g}" for u, v in INTERIOR)
    binpick_bin(tmp_path, "--polygon", polygon, "--out", str(tmp_path / "first.json"))  # writes the inputs
    for name, flag in (("cell.toml", "--config"), ("empty.png", "--image")):
        before = (tmp_path / name).read_bytes()
        bad = binpick_bin(tmp_path, "--polygon", polygon, "--out", str(tmp_path / name))
        assert bad.returncode == 2 and "Traceback" not in bad.stderr, bad.stderr
        assert f"--out {tmp_path / name}: the same file as {flag}" in bad.stderr
        assert (tmp_path / name).read_bytes() == before
        assert not list(tmp_path.glob(f"{name}.bak*")) and not list(tmp_path.glob(f"{name.split('.')[0]}_*"))


def test_binpick_bin_names_a_depth_file_without_any_depth(tmp_path):
    """An all-zero depth PNG (a camera that saved before it streamed) was refused by the model's
    commissioning without the file's name."""
    polygon = " ".join(f"{u:g},{v:g}" for u, v in INTERIOR)
    cv2.imwrite(str(tmp_path / "d.png"), np.zeros(bin_scene(products=0).depth_m.shape, np.uint16))
    out = tmp_path / "bin.json"
    bad = binpick_bin(tmp_path, "--depth", str(tmp_path / "d.png"), "--polygon", polygon, "--out", str(out))
    assert bad.returncode == 2 and "Traceback" not in bad.stderr, bad.stderr
    assert f"--depth {tmp_path / 'd.png'}: no pixel has a depth (all zero or NaN)" in bad.stderr
    assert not out.exists()


def test_binpick_bin_refuses_depth_in_the_wrong_unit(tmp_path):
    """A float .npy in millimetres was read as metres: refused as a rough floor, and written with
    --accept-failed with the rim 59886 mm above the floor. Now one line naming the file and unit."""
    polygon = " ".join(f"{u:g},{v:g}" for u, v in INTERIOR)
    np.save(tmp_path / "mm.npy", bin_scene(products=0).depth_m * 1000.0)
    out = tmp_path / "bin.json"
    bad = binpick_bin(tmp_path, "--depth", str(tmp_path / "mm.npy"), "--polygon", polygon, "--out", str(out),
                      "--accept-failed")  # fmt: skip
    assert bad.returncode == 2 and "Traceback" not in bad.stderr, bad.stderr
    assert f"--depth {tmp_path / 'mm.npy'}: median depth 8" in bad.stderr and "divide by 1000" in bad.stderr
    assert not out.exists() and not list(tmp_path.glob("bin_*"))
    cv2.imwrite(str(tmp_path / "d.png"), (bin_scene(products=0).depth_m * 1000).astype(np.uint16))
    (tmp_path / "cell.toml").write_text("[camera]\ndepth_unit_mm = 0.001\n[bin]\nenabled = false\n")
    bad = binpick_bin(tmp_path, "--depth", str(tmp_path / "d.png"), "--polygon", polygon, "--out", str(out))
    assert bad.returncode == 2 and "[camera] depth_unit_mm = 0.001" in bad.stderr, bad.stderr
    assert not out.exists()
