"""The simulated cell's physics and geometry on small real piles: seal, lift, calibration, determinism."""

from __future__ import annotations

import numpy as np
import pytest

pytest.importorskip("mujoco")

from edge.calibration_file import load_calibration  # noqa: E402
from simcell.calibration import robot_to_world, world_to_robot, write_calibration  # noqa: E402
from simcell.cell import HELD_OUT_TEXTURE_BASE, Cell  # noqa: E402
from simcell.gripper import SuctionCup, feel, line_of_sight_xy, pick  # noqa: E402
from simcell.loop import LoopSettings, run_sequence  # noqa: E402
from simcell.pickers import BaselinePicker  # noqa: E402

SIZE = 96


def lone_box() -> Cell:
    return Cell(11, "mikado+", SIZE, SIZE, families=("rigid_box",), heterogeneous=0.0, instances=(1, 1))


def test_held_out_piles_wear_textures_outside_the_training_pools():
    cell = Cell(5, "mikado+", SIZE, SIZE, families=("square_sachet",), heterogeneous=0.0, instances=(3, 3))
    ids = [int(i.texture[5:]) for i in cell.plan.instances] + [int(cell.plan.background[5:])]
    assert all(i >= HELD_OUT_TEXTURE_BASE for i in ids)


def test_a_centred_pick_on_a_lone_box_seals_and_extracts_it():
    cell = lone_box()
    body = cell.body_of[1]
    xy = tuple(cell.data.xipos[body, :2])
    touch = feel(cell, xy, SuctionCup())
    assert touch.seal and touch.instance == 1 and touch.tilt_deg < 10, touch.reason
    result = pick(cell, xy, SuctionCup())
    assert result.extracted == [1] and not result.seal_lost
    assert cell.in_bin == set()
    obs = cell.observe()
    assert not (obs.labels == 1).any()  # carried out of view


def test_the_cup_on_the_bin_floor_finds_no_product_and_nothing_moves():
    cell = lone_box()
    bx, by = cell.bin_size_m
    before = cell.data.xpos[cell.body_of[1]].copy()
    corner = (-bx / 2 + 0.012, -by / 2 + 0.012)
    touch = feel(cell, corner, SuctionCup())
    if touch.instance != 0:
        pytest.skip("the box covers the bin corner in this pile")
    result = pick(cell, corner, SuctionCup())
    assert not result.lifted and result.extracted == []
    assert np.allclose(cell.data.xpos[cell.body_of[1]], before, atol=1e-3)


def test_a_cup_straddling_the_box_edge_leaks():
    cell = lone_box()
    body = cell.body_of[1]
    # Walk from the box centre outwards along x until the cup overhangs the box's edge.
    xy = np.array(cell.data.xipos[body, :2])
    for _ in range(200):
        xy[0] += 0.001
        touch = feel(cell, tuple(xy), SuctionCup())
        if not touch.seal:
            break
    assert not touch.seal and "leak" in touch.reason


def test_calibration_file_maps_pixels_to_the_simulated_world(tmp_path):
    cell = Cell(3, "mikado+", SIZE, SIZE, families=("round_cookie",), heterogeneous=0.0, instances=(2, 2))
    cal = load_calibration(write_calibration(cell, tmp_path / "cal.json"))
    from mikado.camera import project

    floor_point = np.array([0.02, -0.015, 0.0])
    u, v = project(floor_point[None], cell.camera.k, cell.camera.t_world_camera)[0]
    back = robot_to_world(cal.pixel_to_robot(u, v, height_mm=0.0))
    assert np.allclose(back, floor_point, atol=5e-4)
    raised = robot_to_world(cal.pixel_to_robot(u, v, height_mm=20.0))
    assert raised[2] == pytest.approx(0.02, abs=5e-4)
    # The line of sight through the raised point lands where the pixel looks.
    assert np.allclose(robot_to_world(world_to_robot(floor_point)), floor_point)
    hit = np.array(line_of_sight_xy(cell, raised))
    eye = cell.camera.t_world_camera[:3, 3]
    a, b = hit - eye[:2], floor_point[:2] - eye[:2]
    assert abs(a[0] * b[1] - a[1] * b[0]) < 1e-6 * max(1.0, float(np.dot(b, b)))  # on the camera's ray


def test_a_calibration_off_by_d_mm_moves_every_pick_plane_point_by_d_mm_along_the_floor(tmp_path):
    """`--calibration-error-mm`: the file the appliance reads is off by the asked error at the
    pick plane, one direction per pile, while the image side stays exact."""
    cell = Cell(3, "mikado+", SIZE, SIZE, families=("round_cookie",), heterogeneous=0.0, instances=(2, 2))
    exact = load_calibration(write_calibration(cell, tmp_path / "exact.json"))
    cell.calibration_error_mm = 4.0
    off = load_calibration(write_calibration(cell, tmp_path / "off.json"))
    shifts = []
    for u, v in [(10.0, 20.0), (SIZE / 2, SIZE / 2), (SIZE - 5.0, SIZE - 30.0)]:
        for height in (0.0, 20.0):
            a, b = (c.pixel_to_robot(u, v, height_mm=height) for c in (exact, off))
            shifts.append(b - a)
    shifts = np.array(shifts)
    assert np.allclose(shifts, shifts[0], atol=1e-6)  # the same shift everywhere on the plane
    assert np.linalg.norm(shifts[0]) == pytest.approx(4.0, abs=1e-6)
    assert abs(shifts[0] @ exact.plane_normal) < 1e-6  # along the floor, not up or down
    assert np.allclose(off.camera_matrix, exact.camera_matrix)
    assert np.allclose(off.roi_polygon, exact.roi_polygon)
    other = Cell(5, "mikado+", SIZE, SIZE, families=("round_cookie",), heterogeneous=0.0, instances=(2, 2))
    other.calibration_error_mm = 4.0
    from simcell.calibration import calibration_offset_mm

    assert not np.allclose(calibration_offset_mm(other.seed, 4.0), calibration_offset_mm(cell.seed, 4.0))


def test_a_sequence_with_an_off_calibration_lands_off_by_that_much(tmp_path):
    """The robot goes where the off calibration sends it: the cup lands about D mm from where
    the exact calibration put it, for the same decision, and the records are named for it."""
    runs = {}
    for error in (0.0, 6.0):
        settings = LoopSettings(width=SIZE, height=SIZE, instances=(3, 3), calibration_error_mm=error)
        picker = BaselinePicker("highest", tmp_path / str(error), settings.pick_height_mm, depth="exact")
        runs[error] = run_sequence(picker, "pillow_sachet", 7, settings, "s0", max_attempts=1)
    first, moved = runs[0.0][0], runs[6.0][0]
    assert first["method"] == "highest" and moved["method"] == "highest_cal6mm"
    assert first["grasp_px"] == moved["grasp_px"]  # the same pixel chosen on the same frame
    shift = np.subtract(moved["robot_mm"], first["robot_mm"])
    assert np.linalg.norm(shift) == pytest.approx(6.0, abs=1e-6)
    landed = np.subtract(moved["touch_px"], first["touch_px"])
    assert np.linalg.norm(landed) > 2.0  # the cup came down elsewhere


def strip_timings(records):
    return [{k: v for k, v in r.items() if k not in ("sim_s", "sequence_s", "vision_ms")} for r in records]


@pytest.mark.parametrize("method", ["planar", "random"])
def test_a_short_sequence_is_deterministic(tmp_path, method):
    settings = LoopSettings(width=SIZE, height=SIZE, instances=(4, 4), cycles_per_instance=1.0)
    runs = []
    for k in range(2):
        picker = BaselinePicker(method, tmp_path / str(k), settings.pick_height_mm)
        runs.append(strip_timings(run_sequence(picker, "pillow_sachet", 7, settings, "s0")))
    assert runs[0] == runs[1]
    assert 1 <= len(runs[0]) <= 4
    for r in runs[0]:
        assert r["q1"] in ("yes", "no", "more") and r["q2"] in ("yes", "no", "between")
        assert r["q3"] in ("none", "weak", "high", "-")


def test_the_ranking_on_exact_maps_picks_centred_unoccluded_products(tmp_path):
    """The whole chain with a perfect network on piles in bulk: ground-truth maps -> the
    appliance's ranking -> calibration file -> line of sight -> suction -> scoring. A frame
    mix-up anywhere shows here."""
    from simcell.pickers import OraclePicker
    from simcell.scoring import metrics

    settings = LoopSettings(width=128, height=128, instances=(12, 12), cycles_per_instance=0.25)
    picker = OraclePicker(tmp_path, settings.pick_height_mm)
    records = []
    for seed in (1, 2):
        records += run_sequence(picker, "square_sachet", seed, settings, f"s{seed}")
    m = metrics(records)
    assert m["NO"] == 6
    assert m["SR"] >= 0.6 and m["SC"] >= 0.8, records


def test_the_seal_check_puts_the_cup_where_the_cells_own_seal_test_passes(tmp_path):
    """The appliance's seal check ([suction], edge.ranking.suction) on the cell's stereo depth,
    judged by the simulated cup's ray test (which it never sees): on the first frame of eight
    small rigid-box piles, the oracle's grasp seals more often with it than without."""
    from simcell.calibration import robot_to_world
    from simcell.gripper import SuctionCup, feel, line_of_sight_xy
    from simcell.pickers import OraclePicker

    seals = {True: 0, False: 0}
    for seed in range(1, 9):
        cell = Cell(seed, "mikado+", 192, 192, families=("rigid_box",), heterogeneous=0.0, instances=(6, 6))
        frame = cell.observe()
        for on in (True, False):
            picker = OraclePicker(tmp_path, 20.0, suction=on)
            picker.bind(cell)
            proposal = picker.propose(cell, frame)
            assert proposal.robot_mm is not None
            touch = feel(cell, line_of_sight_xy(cell, robot_to_world(proposal.robot_mm)), SuctionCup())
            seals[on] += touch.seal
    assert seals[True] >= 5 and seals[True] >= seals[False] + 3, seals


def test_bulk_only_sequences_stop_when_the_pile_thins(tmp_path):
    settings = LoopSettings(width=SIZE, height=SIZE, instances=(5, 5), stop_below_fraction=0.9)
    records = run_sequence(BaselinePicker("planar", tmp_path, 20.0), "pillow_sachet", 7, settings, "s0")
    assert all(not r["extracted"] for r in records[:-1])  # it ran until the first product left...
    assert records[-1]["extracted"] or len(records) == settings.max_consecutive_failures  # ...then stopped


def test_planar_baseline_on_stereo_depth_is_the_planar_rule_on_the_sensors_map(tmp_path):
    """`--baseline-depth stereo`: the planar rule runs on the degraded map (same sensor draw),
    and no cup window it picks touches a hole of that map."""
    import cv2

    from mikado.depth_noise import DepthNoise, degrade_depth
    from simcell import baselines

    cell = Cell(5, "mikado+", 192, 192, families=("square_sachet",), heterogeneous=0.0, instances=(6, 6))
    picker = BaselinePicker("planar", tmp_path, 20.0, depth="stereo")
    assert picker.name == "planar_stereo"
    picker.bind(cell)
    obs = cell.observe()
    proposal = picker.propose(cell, obs)
    cal = picker.calibration
    sensor = degrade_depth(obs.depth_m, float(cal.camera_matrix[0, 0]), DepthNoise(),
                           np.random.default_rng([0x57E0, cell.seed]))  # fmt: skip
    assert np.isnan(sensor).any()  # the sensor has holes: the case under test
    assert proposal.pixel == baselines.planar_region(sensor, cal)
    u, v = (round(c) for c in proposal.pixel)
    r = max(2, round(baselines.cup_radius_px(cal, 7.5)))
    holes = cv2.dilate(np.isnan(sensor).astype(np.uint8), np.ones((2 * r + 1, 2 * r + 1), np.uint8))
    assert not holes[v, u]


def test_the_empty_view_shows_no_product_and_puts_the_pile_back():
    """The bin model's commissioning frame (Cell.empty_view): no instance in it, and the pile
    exactly as before afterwards."""
    cell = lone_box()
    before = cell.observe()
    empty = cell.empty_view()
    assert not (empty.labels != 0).any() and empty.in_bin == ()
    after = cell.observe()
    assert np.array_equal(before.labels, after.labels) and np.array_equal(before.depth_m, after.depth_m)


def test_a_cup_across_a_walls_inner_face_is_a_wall_hit():
    cell = lone_box()
    bx, _ = cell.bin_size_m
    assert not cell.wall_hit((0.0, 0.0), 0.0075)
    assert cell.wall_hit((bx / 2 - 0.005, 0.0), 0.0075)  # 5 mm from the wall, cup radius 7.5 mm
    assert not cell.wall_hit((bx / 2 - 0.010, 0.0), 0.0075)
