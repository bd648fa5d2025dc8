"""Families, deformations and a tiny pile end to end (physics, rendering, ground truth)."""

import mujoco
import numpy as np
import pytest

import mikado
from mikado.deform import Deformation, apply_deformation
from mikado.families import FAMILIES, build_template, sample_family_params
from mikado.ground_truth import ground_truth
from mikado.pile import simulate
from mikado.presets import get_preset
from mikado.scene import WALL_HEIGHT_M, sample_plan

NO_DEFORMATION = Deformation(1.0, (1.0, 1.0, 1.0), 0.0, 0.0, 0.0, 0.0, (0.0,) * 6)


@pytest.mark.parametrize("family", sorted(FAMILIES))
def test_templates_are_closed_meshes_sized_in_mm(family):
    rng = np.random.default_rng(0)
    params = sample_family_params(family, rng)
    t = build_template(family, params)
    assert t.faces.min() >= 0 and t.faces.max() < len(t.vertices)
    assert t.uv.shape == (len(t.vertices), 2) and t.uv.min() >= 0 and t.uv.max() <= 1
    # Closed surface: every edge is shared by exactly two faces (degenerate seams excepted).
    edges = np.sort(np.concatenate([t.faces[:, [0, 1]], t.faces[:, [1, 2]], t.faces[:, [2, 0]]]), axis=1)
    _, counts = np.unique(edges, axis=0, return_counts=True)
    assert (counts == 2).all()
    extent = np.ptp(t.vertices, axis=0)
    first = next(iter(params.values()))
    assert extent.max() == pytest.approx(first, rel=0.05) or family == "rigid_box"


def test_bending_keeps_the_length_and_curves_the_axis():
    t = build_template("stick_sachet", {"length": 150.0, "width": 25.0, "thickness": 7.0})
    bent = apply_deformation(t.vertices, Deformation(1.0, (1, 1, 1), 0.0, 0.0, 60.0, 0.0, (0.0,) * 6))
    straight = apply_deformation(t.vertices, NO_DEFORMATION)
    np.testing.assert_allclose(straight, t.vertices)
    # The arc through the mid-line keeps its length; the chord gets shorter.
    nu, nv = t.grid
    mid = bent[: nu * nv].reshape(nu, nv, 3)[:, nv // 2]
    arc = np.linalg.norm(np.diff(mid, axis=0), axis=1).sum()
    assert arc == pytest.approx(150.0, rel=0.03)
    assert np.ptp(bent[:, 0]) < 0.97 * 150.0
    assert np.ptp(bent[:, 2]) > 10.0


def test_tiny_scene_end_to_end():
    s = mikado.render_pile(3, "mikado", 128, 96, instances=(5, 5))
    assert s.rgb.shape == (96, 128, 3) and s.rgb.dtype == np.uint8
    assert s.labels.dtype == np.uint16 and s.depth_m.dtype == np.float32
    assert set(np.unique(s.labels)) <= {0, 1, 2, 3, 4, 5}
    assert len(s.instances) == 5
    b, occ = ground_truth(s.labels, s.depth_m, s.params["depth_tolerance_m"])
    np.testing.assert_array_equal(b, s.boundaries)
    np.testing.assert_array_equal(occ, s.occlusions)
    assert s.occlusions.any()
    # Back-project every pixel with K, depth and T_world_camera: nothing lies below the floor,
    # the background is floor or rim, instances lie above the floor (checks all three together).
    v, u = np.mgrid[0:96, 0:128]
    k = s.camera.k
    rays = np.stack([(u - k[0, 2]) / k[0, 0], (v - k[1, 2]) / k[1, 1], np.ones((96, 128))], -1)
    t = s.camera.t_world_camera
    z = ((rays * s.depth_m[..., None]) @ t[:3, :3].T + t[:3, 3])[..., 2]
    assert z.min() > -0.002
    background = s.labels == 0
    assert np.median(z[background]) < 0.002  # mostly bin floor
    assert z[background].max() < s.params["bin_rim_height_m"] + 0.002
    assert np.median(z[~background]) > 0.001
    k = s.camera.k
    assert k[0, 0] == k[1, 1] and k[0, 2] == pytest.approx(63.5) and k[1, 2] == pytest.approx(47.5)
    for inst in s.instances:
        assert not (inst.visible & ~inst.amodal).any()
        assert 0.0 <= inst.occlusion_rate <= 1.0
    assert s.params["seed"] == 3 and len(s.params["instances"]) == 5


def test_amodal_silhouette_matches_the_render_of_an_unoccluded_instance():
    """The rasterised silhouette must line up with MuJoCo's own render (camera model check)."""
    s = mikado.render_pile(11, "mikado+", 256, 256, instances=(3, 3), families=("rigid_box",))
    best = max(s.instances, key=lambda i: i.visible_px / max(1, i.amodal_px))
    assert best.visible_px > 500
    iou = (best.visible & best.amodal).sum() / (best.visible | best.amodal).sum()
    assert iou > 0.93, iou


@pytest.mark.parametrize(("preset", "seed"), [("mikado", 5), ("mikado", 7), ("mikado+", 4), ("mikado+", 7)])
def test_settled_pile_neither_interpenetrates_nor_floats(preset, seed):
    plan = sample_plan(seed, get_preset(preset, instances=(30, 30)), 64, 64)
    model, data, _, outcome = simulate(plan)
    assert outcome["settled"]
    floor = mujoco.mj_name2id(model, mujoco.mjtObj.mjOBJ_GEOM, "floor")
    deepest = 0.0
    touching = set()
    for c in data.contact[: data.ncon]:
        deepest = min(deepest, c.dist)
        if c.dist < 0.001:
            touching |= {int(model.geom_bodyid[c.geom[0]]), int(model.geom_bodyid[c.geom[1]])}
    assert deepest > -0.0015, f"penetration {-deepest * 1000:.2f} mm"
    bodies = [mujoco.mj_name2id(model, mujoco.mjtObj.mjOBJ_BODY, f"inst{i.id}") for i in plan.instances]
    assert all(b in touching for b in bodies), "an instance floats"
    bx, by = plan.bin_size_m
    for b in bodies:
        x, y, z = data.xpos[b]
        assert abs(x) < bx / 2 and abs(y) < by / 2 and 0 < z < WALL_HEIGHT_M
    assert floor >= 0


def test_bad_overrides_are_named():
    with pytest.raises(ValueError, match="unknown preset override"):
        mikado.render_pile(0, "mikado", 64, 64, colour="red")
    with pytest.raises(ValueError, match="unknown preset"):
        mikado.render_pile(0, "nope", 64, 64)
    with pytest.raises(ValueError, match="unknown family"):
        mikado.render_pile(0, "mikado", 64, 64, families=("banana",))
    with pytest.raises(ValueError, match="families: none given"):
        mikado.render_pile(0, "mikado", 64, 64, families=())


def test_homogeneous_by_default_and_a_heterogeneous_mode():
    for seed in range(3):
        for plan in (
            sample_plan(seed, get_preset("mikado", instances=(12, 12)), 64, 64),
            sample_plan(seed, get_preset("mikado+", instances=(12, 12), heterogeneous=0.0), 64, 64),
        ):
            assert len({i.texture for i in plan.instances}) == 1
            assert len({i.family for i in plan.instances}) == 1
    mixed = [
        sample_plan(s, get_preset("mikado+", instances=(12, 12), heterogeneous=1.0), 64, 64) for s in range(4)
    ]
    assert any(len({i.texture for i in p.instances}) > 1 for p in mixed)
    assert any(len({i.family for i in p.instances}) > 1 for p in mixed)


def test_same_seed_same_plan_and_different_seed_different_plan():
    a = sample_plan(9, get_preset("mikado+"), 64, 64).to_dict()
    b = sample_plan(9, get_preset("mikado+"), 64, 64).to_dict()
    c = sample_plan(10, get_preset("mikado+"), 64, 64).to_dict()
    assert a == b and a != c
