"""A live Mikado pile in a bin: render it, touch it, lift from it, let it resettle.

Mikado's `render_pile` returns images of a pile that no longer exists; a picking cell needs the
pile itself between frames. This module keeps mikado's compiled model and data alive (built by
mikado's own `sample_plan` / `simulate`) and adds what a cell does to it: remove what the
gripper carried away, resettle, render again.

Held-out appearance: `HELD_OUT_TEXTURE_BASE` shifts every procedural print and background id
far beyond the training pools (mikado+ draws prints 0..2399 and backgrounds 0..599), so a
benchmark pile never wears a texture the bundled model saw.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, replace

import mujoco
import numpy as np

from mikado.pile import _amodal_mask, _renderer, label_lut, simulate, top_camera
from mikado.presets import get_preset
from mikado.scene import WALL_HEIGHT_M, PilePlan, sample_plan, settle

HELD_OUT_TEXTURE_BASE = 1_000_000
PARKING_X_M = 3.0  # carried-away instances rest on the floor plane here, far outside the camera view
RESETTLE_STEPS = 1000


@dataclass
class Observation:
    """One camera frame with the simulator's ground truth of that moment."""

    rgb: np.ndarray  # HxWx3 uint8
    depth_m: np.ndarray  # HxW float32, metres along the optical axis
    labels: np.ndarray  # HxW uint16, 0 = bin/floor, k = instance id
    in_bin: tuple[int, ...]  # instance ids still in the bin


def held_out(plan: PilePlan) -> PilePlan:
    """The same pile wearing prints and a background no training preset draws."""
    for inst in plan.instances:
        if inst.texture.startswith("proc:"):
            inst.texture = f"proc:{HELD_OUT_TEXTURE_BASE + int(inst.texture[5:])}"
    if plan.background.startswith("proc:"):
        plan.background = f"proc:{HELD_OUT_TEXTURE_BASE + int(plan.background[5:])}"
    return plan


class Cell:
    """One bin with one settled pile; instance ids are mikado's (1..N)."""

    def __init__(
        self,
        seed: int,
        preset: str = "mikado+",
        width: int = 512,
        height: int = 512,
        held_out_textures: bool = True,
        light_gain: float = 1.0,
        calibration_error_mm: float = 0.0,
        **overrides,
    ):
        """`calibration_error_mm`: how far off at the pick plane the cell's commissioned
        calibration is (simcell.calibration.calibration_offset_mm); 0 = exact."""
        plan = sample_plan(seed, get_preset(preset, **overrides), width, height)
        if held_out_textures:
            plan = held_out(plan)
        if light_gain != 1.0:
            plan.lights = [
                replace(light, diffuse=tuple(light_gain * c for c in light.diffuse)) for light in plan.lights
            ]
        self.plan = plan
        self.seed = seed
        self.calibration_error_mm = float(calibration_error_mm)
        self.model, self.data, self.visual_geoms, self.settle_outcome = simulate(plan)
        if light_gain != 1.0:
            self.model.vis.headlight.ambient[:] *= light_gain
            self.model.vis.headlight.diffuse[:] *= light_gain
        self.cam_id, self.camera = top_camera(self.model, self.data, plan)
        self.family_of = {inst.id: inst.family for inst in plan.instances}
        self.body_of = {
            inst.id: mujoco.mj_name2id(self.model, mujoco.mjtObj.mjOBJ_BODY, f"inst{inst.id}")
            for inst in plan.instances
        }
        self.instance_of_body = {b: i for i, b in self.body_of.items()}
        self.in_bin: set[int] = set(self.body_of)
        self.parked: list[int] = []
        self._label_lut = label_lut(self.model, plan, self.visual_geoms)
        self.rim_height_m = WALL_HEIGHT_M
        self.bin_size_m = plan.bin_size_m

    # ------------------------------------------------------------------ seeing
    def observe(self) -> Observation:
        cam = self.camera
        rgb, depth, geom_ids = _renderer(cam.width, cam.height).render(
            self.model, self.data, self.cam_id, cam.width, cam.height
        )
        return Observation(rgb, depth, self._label_lut[geom_ids + 1], tuple(sorted(self.in_bin)))

    def empty_view(self) -> Observation:
        """The bin as it looked before the pile was poured (the commissioning frame of
        `edge.bin_model`): every instance parked out of view, rendered, then put back exactly."""
        qpos, qvel = self.data.qpos.copy(), self.data.qvel.copy()
        in_bin, parked = set(self.in_bin), list(self.parked)
        self.park(sorted(self.in_bin))
        try:
            return self.observe()
        finally:
            self.data.qpos[:], self.data.qvel[:] = qpos, qvel
            self.in_bin, self.parked = in_bin, parked
            mujoco.mj_forward(self.model, self.data)

    def wall_hit(self, xy_m: tuple[float, float], radius_m: float) -> bool:
        """Whether a cup of `radius_m` centred at `xy_m` (world) crosses a wall's inner face."""
        bx, by = self.bin_size_m
        return abs(xy_m[0]) + radius_m > bx / 2 or abs(xy_m[1]) + radius_m > by / 2

    def amodal(self, instance_id: int) -> np.ndarray:
        """Silhouette of one instance as if alone in the bin (mikado's rasteriser)."""
        inst = next(i for i in self.plan.instances if i.id == instance_id)
        body = self.body_of[instance_id]
        pos, rot = self.data.xpos[body], self.data.xmat[body].reshape(3, 3)
        return _amodal_mask(inst.vertices_m, inst.template.faces, pos, rot, self.camera)

    def instance_at_geom(self, geom_id: int) -> int:
        """Instance id owning a visual geom, 0 for the bin, the floor or nothing."""
        return int(self._label_lut[geom_id + 1]) if geom_id >= 0 else 0

    def height_of(self, instance_id: int) -> float:
        return float(self.data.xipos[self.body_of[instance_id], 2])

    def largest_product_px(self, pile_top_m: float = 0.04) -> float:
        """Image area (px) of the largest product's bounding footprint lying flat at the pile top.

        An integrator sets the ranking's area bounds from the product's size (thesis appendix B);
        this is the cell's upper bound for one product, so the bin floor is never a candidate.
        """
        f = float(self.camera.k[1, 1])
        distance = float(self.camera.t_world_camera[2, 3]) - pile_top_m
        footprint = max(
            float(np.ptp(i.vertices_m[:, 0]) * np.ptp(i.vertices_m[:, 1])) for i in self.plan.instances
        )
        return footprint * (f / distance) ** 2

    def velocity_of(self, instance_id: int) -> np.ndarray:
        """Linear velocity (m/s, world) of an instance's centre of mass."""
        vel = np.zeros(6)
        body = self.body_of[instance_id]
        mujoco.mj_objectVelocity(self.model, self.data, mujoco.mjtObj.mjOBJ_BODY, body, vel, 0)
        return vel[3:]

    def outside_bin(self) -> list[int]:
        """Instances of the bin whose centre of mass left its footprint or rests above its rim."""
        bx, by = self.bin_size_m
        out = []
        for i in sorted(self.in_bin):
            x, y, z = self.data.xipos[self.body_of[i]]
            if abs(x) > bx / 2 or abs(y) > by / 2 or z > self.rim_height_m:
                out.append(i)
        return out

    # ------------------------------------------------------------------ acting
    def park(self, instance_ids: Iterable[int]) -> None:
        """Carry instances out of the cell: each rests still on the floor plane, out of view."""
        for i in sorted(instance_ids):
            if i not in self.in_bin:
                continue
            self.in_bin.discard(i)
            self.parked.append(i)
            body = self.body_of[i]
            adr = self.model.jnt_qposadr[self.model.body_jntadr[body]]
            dof = self.model.jnt_dofadr[self.model.body_jntadr[body]]
            self.data.qpos[adr : adr + 3] = (PARKING_X_M + 0.4 * len(self.parked), 0.0, 0.1)
            self.data.qpos[adr + 3 : adr + 7] = (1.0, 0.0, 0.0, 0.0)
            self.data.qvel[dof : dof + 6] = 0.0
        mujoco.mj_forward(self.model, self.data)

    def resettle(self, max_steps: int = RESETTLE_STEPS) -> bool:
        """Let the pile come to rest after a pick (mikado's stopping rule)."""
        self.data.xfrc_applied[:] = 0.0
        return settle(self.model, self.data, max_steps).settled

    def step(self, n: int = 1) -> None:
        mujoco.mj_step(self.model, self.data, nstep=n)
