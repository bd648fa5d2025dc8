"""One synthetic pile end to end: plan -> physics -> render -> ground truth, in memory.

`render_pile` is the public entry point (contracts.md §3): the appliance's simulated camera
calls it per frame, the dataset writer (`mikado.io`) stores what it returns.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field

import cv2
import mujoco
import numpy as np

from mikado.camera import intrinsics, project, world_from_camera
from mikado.ground_truth import DEFAULT_DEPTH_TOLERANCE_M, ground_truth, occlusion_rate
from mikado.presets import get_preset
from mikado.render import OffscreenRenderer
from mikado.scene import PilePlan, build_model, sample_plan, settle


@dataclass
class Camera:
    k: np.ndarray  # 3x3 intrinsics, pixels
    t_world_camera: np.ndarray  # 4x4, OpenCV axes (x right, y down, z forward)
    width: int
    height: int

    def to_dict(self) -> dict:
        return {
            "K": self.k.tolist(),
            "width": self.width,
            "height": self.height,
            "T_world_camera": self.t_world_camera.tolist(),
        }


@dataclass
class Instance:
    id: int
    family: str
    position_m: tuple[float, float, float]
    quaternion_wxyz: tuple[float, float, float, float]
    visible: np.ndarray = field(repr=False)  # HxW bool
    amodal: np.ndarray = field(repr=False)  # HxW bool
    occlusion_rate: float = 0.0

    @property
    def visible_px(self) -> int:
        return int(self.visible.sum())

    @property
    def amodal_px(self) -> int:
        return int(self.amodal.sum())

    def to_dict(self) -> dict:
        return {
            "id": self.id,
            "family": self.family,
            "pose": {"position_m": list(self.position_m), "quaternion_wxyz": list(self.quaternion_wxyz)},
            "occlusion_rate": self.occlusion_rate,
            "visible_px": self.visible_px,
            "amodal_px": self.amodal_px,
        }


@dataclass
class Scene:
    rgb: np.ndarray  # HxWx3 uint8
    depth_m: np.ndarray  # HxW float32, metres along the optical axis
    labels: np.ndarray  # HxW uint16, 0 = background (bin, floor), k = instance id
    boundaries: np.ndarray  # HxW bool
    occlusions: np.ndarray  # HxW bool
    camera: Camera
    instances: list[Instance]
    params: dict  # every sampled parameter, the seed, the physics outcome
    timings: dict[str, float] = field(default_factory=dict)


_RENDERERS: dict[tuple[int, int], OffscreenRenderer] = {}


def _renderer(width: int, height: int) -> OffscreenRenderer:
    """One GL context per process and size (a context costs more than a render)."""
    key = (width, height)
    if key not in _RENDERERS:
        _RENDERERS[key] = OffscreenRenderer(width, height)
    return _RENDERERS[key]


def _amodal_mask(
    vertices_body: np.ndarray, faces: np.ndarray, pos: np.ndarray, rot: np.ndarray, cam: Camera
) -> np.ndarray:
    """Silhouette of the posed mesh alone: its projected triangles filled with OpenCV.

    Rendering each instance alone would cost one render pass per instance; rasterising the
    projected triangles costs about a millisecond and gives the same silhouette (checked
    against the visible mask of unoccluded instances in the tests).
    """
    world = vertices_body @ rot.T + pos
    uv = project(world, cam.k, cam.t_world_camera)
    shift = 4  # sub-pixel vertex precision for fillConvexPoly
    pts = np.round(uv * (1 << shift)).astype(np.int32)
    mask = np.zeros((cam.height, cam.width), np.uint8)
    tri = pts[faces]
    for t in tri:
        cv2.fillConvexPoly(mask, t, 1, lineType=cv2.LINE_8, shift=shift)
    return mask.astype(bool)


def label_lut(model: mujoco.MjModel, plan: PilePlan, visual_geoms: list[int]) -> np.ndarray:
    """Geom id + 1 -> instance id (0 for the bin, the floor or no geom) for the renderer's ids."""
    lut = np.zeros(model.ngeom + 1, np.uint16)
    for inst, g in zip(plan.instances, visual_geoms, strict=True):
        lut[g + 1] = inst.id
    return lut


def top_camera(model: mujoco.MjModel, data: mujoco.MjData, plan: PilePlan) -> tuple[int, Camera]:
    """The "top" camera's id and its calibration (K, pose) at the plan's image size."""
    cam_id = mujoco.mj_name2id(model, mujoco.mjtObj.mjOBJ_CAMERA, "top")
    k = intrinsics(plan.camera.fovy_deg, plan.width, plan.height)
    t_wc = world_from_camera(data.cam_xpos[cam_id], data.cam_xmat[cam_id])
    return cam_id, Camera(k, t_wc, plan.width, plan.height)


def simulate(plan: PilePlan) -> tuple[mujoco.MjModel, mujoco.MjData, list[int], dict]:
    """Build the model and let the pile settle; returns the physics outcome too."""
    model, visual_geoms = build_model(plan)
    data = mujoco.MjData(model)
    report = settle(model, data)
    mujoco.mj_forward(model, data)
    outcome = {
        "steps": report.steps,
        "simulated_s": report.steps * model.opt.timestep,
        "settled": report.settled,
    }
    return model, data, visual_geoms, outcome


def render_pile(
    seed: int,
    preset: str = "mikado+",
    width: int = 512,
    height: int = 512,
    depth_tolerance_m: float = DEFAULT_DEPTH_TOLERANCE_M,
    **overrides,
) -> Scene:
    """Generate one pile from `seed` and return images and ground truth without writing files.

    `overrides` replace preset fields (see mikado.presets.Preset), e.g. instances=(5, 5),
    families=("rigid_box",), heterogeneous=1.0, texture_dirs=("my_prints",).
    """
    if width < 16 or height < 16:
        raise ValueError(f"image size {width}x{height} is too small (at least 16x16)")
    t0 = time.perf_counter()
    plan = sample_plan(seed, get_preset(preset, **overrides), width, height)
    model, data, visual_geoms, outcome = simulate(plan)
    t1 = time.perf_counter()
    cam_id, camera = top_camera(model, data, plan)
    rgb, depth, geom_ids = _renderer(width, height).render(model, data, cam_id, width, height)
    t2 = time.perf_counter()
    labels = label_lut(model, plan, visual_geoms)[geom_ids + 1]
    boundaries, occlusions = ground_truth(labels, depth, depth_tolerance_m)
    instances = []
    for inst in plan.instances:
        body = mujoco.mj_name2id(model, mujoco.mjtObj.mjOBJ_BODY, f"inst{inst.id}")
        pos, rot = data.xpos[body].copy(), data.xmat[body].reshape(3, 3).copy()
        visible = labels == inst.id
        amodal = _amodal_mask(inst.vertices_m, inst.template.faces, pos, rot, camera) | visible
        instances.append(
            Instance(
                inst.id,
                inst.family,
                tuple(float(v) for v in pos),
                tuple(float(v) for v in data.xquat[body]),
                visible,
                amodal,
                occlusion_rate(int(visible.sum()), int(amodal.sum())),
            )
        )
    t3 = time.perf_counter()
    params = plan.to_dict()
    params["physics_outcome"] = outcome
    params["depth_tolerance_m"] = depth_tolerance_m
    return Scene(
        rgb,
        depth,
        labels,
        boundaries,
        occlusions,
        camera,
        instances,
        params,
        {"physics_s": t1 - t0, "render_s": t2 - t1, "ground_truth_s": t3 - t2},
    )
