"""Sample a pile (every parameter, from one seed), build its MuJoCo model and let it settle.

The bin is an open box whose floor and walls carry a background image. Instances start in a
compact, non-overlapping stack above the floor (a height map of their rotated bounding boxes),
so the fall is short and few physics steps are needed; the simulation stops as soon as every
body is nearly still. Each instance body carries one textured visual mesh (group 0, no
collisions) and a compound of convex collision pieces (group 3, never drawn).
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field

import cv2
import mujoco
import numpy as np

from mikado import (
    gl,  # noqa: F401  (must precede mujoco)
    textures,
)
from mikado.camera import CameraParams, LightParams, sample_camera, sample_lights
from mikado.collision import collision_pieces
from mikado.deform import Deformation, apply_deformation, sample_deformation
from mikado.families import Template, build_template, sample_family_params, thickened
from mikado.presets import Preset
from mikado.render import COLLISION_GROUP

GENERATOR_VERSION = "1"
WALL_HEIGHT_M = 0.12
WALL_THICKNESS_M = 0.02
TIMESTEP_S = 0.004
MAX_STEPS = 450
SETTLE_CHECK_EVERY = 25
SETTLE_SPEED_M_S = 0.02
SETTLE_SPIN_RAD_S = 0.5
MAX_MEAN_PILE_HEIGHT_M = 0.04
ALIGNED_FRACTION = 0.5
DROP_GAP_M = 0.003
MIN_COLLISION_THICKNESS_MM = 4.5
FREE_DAMPING = 0.002  # N m s/rad (and N s/m): air drag and a soft product's internal damping
PRODUCT_DENSITY = 400.0  # kg/m^3: a half-full sachet; only ratios matter for a settling pile


@dataclass
class InstancePlan:
    id: int
    family: str
    size_mm: dict[str, float]
    deformation: Deformation
    texture: str  # "proc:<id>" or a user image path
    initial_position_m: tuple[float, float, float]
    initial_quaternion_wxyz: tuple[float, float, float, float]
    vertices_m: np.ndarray = field(repr=False)  # deformed mesh, instance frame
    collision_vertices_m: np.ndarray = field(repr=False)  # deformed thickened mesh, for the pieces
    template: Template = field(repr=False)

    def to_dict(self) -> dict:
        return {
            "id": self.id,
            "family": self.family,
            "size_mm": self.size_mm,
            "deformation": self.deformation.to_dict(),
            "texture": self.texture,
            "initial_position_m": list(self.initial_position_m),
            "initial_quaternion_wxyz": list(self.initial_quaternion_wxyz),
        }


@dataclass
class PilePlan:
    seed: int
    preset: str
    width: int
    height: int
    heterogeneous: bool
    bin_size_m: tuple[float, float]
    rim_height_m: float  # the visible bin wall; collisions use taller invisible walls
    background: str
    luminance: tuple[float, float] | None  # (gain, gamma) applied to the prints
    camera: CameraParams
    lights: list[LightParams]
    instances: list[InstancePlan]

    def to_dict(self) -> dict:
        return {
            "generator_version": GENERATOR_VERSION,
            "seed": self.seed,
            "preset": self.preset,
            "width": self.width,
            "height": self.height,
            "heterogeneous": self.heterogeneous,
            "bin_size_m": list(self.bin_size_m),
            "bin_collision_wall_height_m": 2 * WALL_HEIGHT_M,
            "bin_rim_height_m": self.rim_height_m,
            "background": self.background,
            "luminance": None if self.luminance is None else list(self.luminance),
            "camera": self.camera.to_dict(),
            "lights": [light.to_dict() for light in self.lights],
            "instances": [i.to_dict() for i in self.instances],
            "physics": {
                "timestep_s": TIMESTEP_S,
                "max_steps": MAX_STEPS,
                "settle_speed_m_s": SETTLE_SPEED_M_S,
            },
        }


def _random_rotation(rng: np.random.Generator) -> np.ndarray:
    """Mostly flat drops, moderate pitch/roll, upside down half the time. Half the instances
    lie roughly along the bin's long side, as products poured into a bin tend to."""
    q = np.zeros(4)
    if rng.random() < ALIGNED_FRACTION:
        yaw = rng.normal(0.0, 0.35) + (np.pi if rng.random() < 0.5 else 0.0)
    else:
        yaw = rng.uniform(-np.pi, np.pi)
    pitch = rng.uniform(-0.45, 0.45)
    roll = rng.uniform(-0.6, 0.6) + (np.pi if rng.random() < 0.5 else 0.0)
    mujoco.mju_euler2Quat(q, np.array([roll, pitch, yaw]), "XYZ")
    return q


def _rotate(q: np.ndarray, v: np.ndarray) -> np.ndarray:
    m = np.zeros(9)
    mujoco.mju_quat2Mat(m, q)
    return v @ m.reshape(3, 3).T


def _place(
    rng: np.random.Generator, hull: np.ndarray, bx: float, by: float
) -> tuple[np.ndarray, np.ndarray, np.ndarray, float, float]:
    """Orientation and centre of one instance over the bin floor.

    The centre is drawn uniformly over the floor first and the orientation is redrawn (a few
    times) until the rotated bounding box fits there, so piles spread into corners and long
    products near a wall lie along it; if nothing fits, the best try is shifted inside.
    """
    tx, ty = rng.uniform(-bx / 2, bx / 2), rng.uniform(-by / 2, by / 2)
    best = None
    for _ in range(12):
        q = _random_rotation(rng)
        rv = _rotate(q, hull)
        lo, hi = rv.min(axis=0), rv.max(axis=0)
        mid = (lo + hi) / 2
        over = max(0.0, abs(tx) + (hi[0] - lo[0]) / 2 - bx / 2) + max(
            0.0, abs(ty) + (hi[1] - lo[1]) / 2 - by / 2
        )
        if best is None or over < best[0]:
            best = (over, q, lo, hi, mid)
        if over == 0.0:
            break
    _, q, lo, hi, mid = best
    half = (hi - lo) / 2
    cx = float(np.clip(tx, -bx / 2 + half[0], bx / 2 - half[0])) if half[0] < bx / 2 else 0.0
    cy = float(np.clip(ty, -by / 2 + half[1], by / 2 - half[1])) if half[1] < by / 2 else 0.0
    # (cx, cy) is where the box centre goes; the body origin sits `mid` away from it.
    return q, lo, hi, cx - mid[0], cy - mid[1]


def _surface_points(vertices: np.ndarray, faces: np.ndarray) -> np.ndarray:
    """Vertices, edge midpoints and face centroids: dense enough for a 5 mm height map."""
    tri = vertices[faces]
    mids = (tri + np.roll(tri, 1, axis=1)) / 2
    return np.concatenate([vertices, mids.reshape(-1, 3), tri.mean(axis=1)])


def _texture_pool(preset: Preset) -> tuple[list[str], list[str]]:
    prints = [f"proc:{i}" for i in range(preset.n_textures)]
    backs = [f"proc:{i}" for i in range(preset.n_backgrounds)]
    for d in preset.texture_dirs:
        prints += [str(p) for p in textures.list_images(d)]
    for d in preset.background_dirs:
        backs += [str(p) for p in textures.list_images(d)]
    if not prints or not backs:
        raise ValueError(
            f"preset {preset.name!r} has no {'print' if not prints else 'background'} textures: "
            "n_textures/n_backgrounds is 0 and no image folder was given"
        )
    return prints, backs


def sample_plan(seed: int, preset: Preset, width: int, height: int) -> PilePlan:
    """Every random choice of one scene, from `seed` alone."""
    rng = np.random.default_rng([0x311CAD0, int(seed)])
    prints, backs = _texture_pool(preset)
    hetero = bool(rng.random() < preset.heterogeneous)
    n = int(rng.integers(preset.instances[0], preset.instances[1] + 1))
    scene_family = preset.families[int(rng.integers(len(preset.families)))]
    scene_size = sample_family_params(scene_family, rng)
    scene_textures = [
        prints[int(rng.integers(len(prints)))] for _ in range(int(rng.integers(2, 5)) if hetero else 1)
    ]
    families, sizes, prints_of = [], [], []
    for _ in range(n):
        if hetero and len(preset.families) > 1 and rng.random() < 0.5:
            fam = preset.families[int(rng.integers(len(preset.families)))]
            families.append(fam)
            sizes.append(sample_family_params(fam, rng))
        else:
            families.append(scene_family)
            sizes.append(scene_size)
        prints_of.append(scene_textures[int(rng.integers(len(scene_textures)))])
    templates = {}
    meshes, deformations, hulls = [], [], []
    for fam, size in zip(families, sizes, strict=True):
        key = (fam, tuple(sorted(size.items())))
        if key not in templates:
            templates[key] = build_template(fam, size)
        tpl = templates[key]
        d = sample_deformation(rng, tpl.rigid, preset.deformation)
        meshes.append((tpl, apply_deformation(tpl.vertices, d) / 1000.0))
        deformations.append(d)
        hulls.append(apply_deformation(thickened(tpl, MIN_COLLISION_THICKNESS_MM), d) / 1000.0)
    # Bin floor from the pile's footprint: fill = sum of instance footprints / floor area.
    footprint = sum(float(np.ptp(v[:, 0]) * np.ptp(v[:, 1])) for _, v in meshes)
    fill = rng.uniform(*preset.fill)
    aspect = rng.uniform(1.0, 1.5)
    longest = max(float(np.ptp(v[:, 0])) for _, v in meshes)
    # Thick products (boxes, cookies) need more floor for the same number of layers: cap the
    # mean pile height so the pile stays well below the rim and the camera.
    volume = sum(float(np.ptp(v[:, 0]) * np.ptp(v[:, 1]) * np.ptp(v[:, 2])) for _, v in meshes)
    area = max(footprint / fill, volume / MAX_MEAN_PILE_HEIGHT_M)
    bx = max(np.sqrt(area * aspect), 1.4 * longest)
    by = max(area / bx, 1.15 * longest)
    bin_size = (float(bx), float(by))
    # Initial stack: each instance is lowered onto a 5 mm height map of those before it until
    # one of its surface points would touch (checked against the map's maximum within 10 mm),
    # so instances start close above each other without overlapping and fall only a little.
    cell = 0.005
    gx, gy = int(np.ceil(bx / cell)), int(np.ceil(by / cell))
    hmap = np.zeros((gx, gy), np.float32)
    reach = np.ones((5, 5), np.uint8)
    instances = []
    for k, ((tpl, verts), hull, d, fam, size, tex) in enumerate(
        zip(meshes, hulls, deformations, families, sizes, prints_of, strict=True), start=1
    ):
        q, lo, _hi, cx, cy = _place(rng, hull, bx, by)
        pts = _rotate(q, _surface_points(hull, tpl.faces))
        ix = np.clip(((pts[:, 0] + cx + bx / 2) / cell).astype(int), 0, gx - 1)
        iy = np.clip(((pts[:, 1] + cy + by / 2) / cell).astype(int), 0, gy - 1)
        above = pts[:, 2] - lo[2]  # height of each point above the instance's lowest point
        near = cv2.dilate(hmap, reach)
        base = float(np.max(near[ix, iy] - above)) + DROP_GAP_M
        base = max(base, DROP_GAP_M)
        cz = base - lo[2]
        np.maximum.at(hmap, (ix, iy), (base + above).astype(np.float32))
        instances.append(
            InstancePlan(
                id=k,
                family=fam,
                size_mm=size,
                deformation=d,
                texture=tex,
                initial_position_m=(float(cx), float(cy), float(cz)),
                initial_quaternion_wxyz=tuple(float(v) for v in q),
                vertices_m=verts,
                collision_vertices_m=hull,
                template=tpl,
            )
        )
    background = backs[int(rng.integers(len(backs)))]
    rim_height = float(rng.uniform(0.03, 0.06))
    luminance = (float(rng.uniform(0.6, 1.3)), float(rng.uniform(0.7, 1.4))) if preset.luminance else None
    camera = sample_camera(rng, bin_size, width / height, volume / (bx * by))
    lights = sample_lights(rng, camera.position_m[2])
    return PilePlan(
        seed=int(seed),
        preset=preset.name,
        width=width,
        height=height,
        heterogeneous=hetero,
        bin_size_m=bin_size,
        rim_height_m=rim_height,
        background=background,
        luminance=luminance,
        camera=camera,
        lights=lights,
        instances=instances,
    )


def _image_for(ref: str, kind: str) -> np.ndarray:
    if ref.startswith("proc:"):
        i = int(ref[5:])
        return textures.packaging_texture(i) if kind == "print" else textures.background_texture(i)
    from pathlib import Path

    size = textures.TEXTURE_SIZE if kind == "print" else textures.BACKGROUND_SIZE
    return textures.load_image(Path(ref), size)


def _add_texture(spec: mujoco.MjSpec, name: str, img: np.ndarray) -> None:
    h, w = img.shape[:2]
    tex = spec.add_texture(name=name, type=mujoco.mjtTexture.mjTEXTURE_2D, width=w, height=h, nchannel=3)
    tex.data = np.ascontiguousarray(img).tobytes()


def build_model(plan: PilePlan) -> tuple[mujoco.MjModel, list[int]]:
    """Compiled model and, per instance (in plan order), the id of its visual geom."""
    spec = mujoco.MjSpec()
    spec.modelname = f"pile_{plan.seed}"
    spec.option.timestep = TIMESTEP_S
    spec.option.integrator = mujoco.mjtIntegrator.mjINT_IMPLICITFAST
    spec.option.iterations = 20
    spec.option.ls_iterations = 10
    spec.visual.global_.offwidth = plan.width
    spec.visual.global_.offheight = plan.height
    spec.visual.map.znear = 0.01
    spec.visual.map.zfar = 20.0
    spec.visual.quality.shadowsize = 1024
    # No multisampling: RGB, depth and segmentation then agree pixel for pixel, which the
    # pixel-exact ground truth needs (an MSAA edge pixel can take its label and its depth
    # from different surfaces). Training blurs images anyway (thesis 5.1.2).
    spec.visual.quality.offsamples = 0
    spec.visual.headlight.ambient = [0.25, 0.25, 0.25]
    spec.visual.headlight.diffuse = [0.15, 0.15, 0.15]
    spec.visual.headlight.specular = [0.0, 0.0, 0.0]
    spec.stat.extent = 1.0
    spec.stat.center = [0.0, 0.0, 0.1]

    _add_texture(spec, "background", _image_for(plan.background, "background"))
    spec.add_material(name="background", textures=["", "background"], texrepeat=[3, 3], texuniform=True)
    world = spec.worldbody
    bx, by = plan.bin_size_m
    t, hgt, rim = WALL_THICKNESS_M, WALL_HEIGHT_M, plan.rim_height_m
    box = mujoco.mjtGeom.mjGEOM_BOX
    # The floor is a plane (a half-space: nothing tunnels through it); the walls are thick
    # (invisible) boxes, twice the rim height, whose inner faces bound the bin; the rendered
    # rim is a thin box with no collisions.
    world.add_geom(
        name="floor", type=mujoco.mjtGeom.mjGEOM_PLANE, size=[3.0, 3.0, 0.01], material="background"
    )
    thick = 0.1
    for name, size, pos in (
        ("wall_px", [thick / 2, by / 2 + thick, hgt], [bx / 2 + thick / 2, 0, hgt]),
        ("wall_nx", [thick / 2, by / 2 + thick, hgt], [-bx / 2 - thick / 2, 0, hgt]),
        ("wall_py", [bx / 2, thick / 2, hgt], [0, by / 2 + thick / 2, hgt]),
        ("wall_ny", [bx / 2, thick / 2, hgt], [0, -by / 2 - thick / 2, hgt]),
    ):
        world.add_geom(name=name, type=box, size=size, pos=pos, group=COLLISION_GROUP, rgba=[1, 1, 1, 0])
    for name, size, pos in (
        ("rim_px", [t / 2, by / 2 + t, rim / 2], [bx / 2 + t / 2, 0, rim / 2]),
        ("rim_nx", [t / 2, by / 2 + t, rim / 2], [-bx / 2 - t / 2, 0, rim / 2]),
        ("rim_py", [bx / 2, t / 2, rim / 2], [0, by / 2 + t / 2, rim / 2]),
        ("rim_ny", [bx / 2, t / 2, rim / 2], [0, -by / 2 - t / 2, rim / 2]),
    ):
        world.add_geom(
            name=name, type=box, size=size, pos=pos, material="background", contype=0, conaffinity=0
        )

    used = sorted({i.texture for i in plan.instances})
    for k, ref in enumerate(used):
        img = _image_for(ref, "print")
        if plan.luminance is not None:
            img = textures.adjust_luminance(img, *plan.luminance)
        _add_texture(spec, f"print{k}", img)
        spec.add_material(name=f"print{k}", textures=["", f"print{k}"], specular=0.3, shininess=0.4)
    material_of = {ref: f"print{k}" for k, ref in enumerate(used)}

    mesh = mujoco.mjtGeom.mjGEOM_MESH
    visual_names = []
    for inst in plan.instances:
        tpl = inst.template
        vname = f"inst{inst.id}_visual"
        spec.add_mesh(
            name=vname,
            uservert=inst.vertices_m.ravel().tolist(),
            userface=tpl.faces.ravel().tolist(),
            usertexcoord=tpl.uv.ravel().tolist(),
        )
        body = world.add_body(
            name=f"inst{inst.id}", pos=list(inst.initial_position_m), quat=list(inst.initial_quaternion_wxyz)
        )
        body.add_freejoint()
        body.add_geom(
            name=vname,
            type=mesh,
            meshname=vname,
            material=material_of[inst.texture],
            contype=0,
            conaffinity=0,
            group=0,
            density=0,
        )
        for p, pts in enumerate(collision_pieces(inst.collision_vertices_m, tpl.grid, tpl.pieces)):
            pname = f"inst{inst.id}_piece{p}"
            spec.add_mesh(name=pname, uservert=pts.ravel().tolist())
            body.add_geom(
                name=pname,
                type=mesh,
                meshname=pname,
                group=COLLISION_GROUP,
                density=PRODUCT_DENSITY,
                friction=[0.7, 0.01, 0.001],
                rgba=[1, 1, 1, 0],
                solref=[0.008, 1.0],
            )
        visual_names.append(vname)

    cam = plan.camera
    world.add_camera(name="top", pos=list(cam.position_m), quat=list(cam.quaternion_wxyz), fovy=cam.fovy_deg)
    for k, light in enumerate(plan.lights):
        aim = -np.asarray(light.position_m) / np.linalg.norm(light.position_m)
        world.add_light(
            name=f"light{k}",
            pos=list(light.position_m),
            dir=aim.tolist(),
            diffuse=list(light.diffuse),
            specular=[light.specular] * 3,
            castshadow=light.cast_shadow,
            cutoff=70.0,
        )
    model = spec.compile()
    model.dof_damping[:] = FREE_DAMPING
    return model, [mujoco.mj_name2id(model, mujoco.mjtObj.mjOBJ_GEOM, n) for n in visual_names]


@dataclass
class SettleReport:
    steps: int
    seconds: float
    settled: bool


def settle(model: mujoco.MjModel, data: mujoco.MjData, max_steps: int = MAX_STEPS) -> SettleReport:
    """Step until every free body moves slower than SETTLE_SPEED_M_S (or max_steps)."""
    t0 = time.perf_counter()
    steps = 0
    settled = False
    while steps < max_steps:
        mujoco.mj_step(model, data, nstep=SETTLE_CHECK_EVERY)
        steps += SETTLE_CHECK_EVERY
        v = data.qvel.reshape(-1, 6)
        if (
            steps >= 100
            and float(np.abs(v[:, :3]).max()) < SETTLE_SPEED_M_S
            and float(np.abs(v[:, 3:]).max()) < SETTLE_SPIN_RAD_S
        ):
            settled = True
            break
    return SettleReport(steps, time.perf_counter() - t0, settled)
