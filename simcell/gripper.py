"""A simulated vacuum-suction gripper: approach, seal test, press, lift, hold.

What decides a real suction pick, and how each is modelled (thresholds are `SuctionCup`'s
fields, written down in docs/simcell.md):
- Approach: the appliance publishes a point on its pick plane (it sees no depth); the robot
  follows the camera's line of sight through that point down to the first surface
  (`line_of_sight_xy`), the usual height compensation of 2-D vision-guided picking, so the cup
  lands on what the chosen pixel showed whatever the pile's height. The cup then comes down
  vertically there until its rim meets the highest surface under it (rays cast on the visual
  meshes, so the seal sees the same surface the camera sees).
- Press: the bellows push on what they touched (`press_force_n` for `press_s`); a product in
  unstable equilibrium moves away from where it was seen, as in the thesis's Figure 5.15.
- Seal: after the press, every ray under the cup must hit the same instance (no leak over an
  edge or between two products), the surface must lie within the bellows' compliance of the
  highest point, its fitted plane must be tilted less than `max_tilt_deg`, and its residual
  must stay below `max_residual_mm` (a crumpled film does not hold vacuum).
- Lift: a force-limited spring drags the sealed point up (`holding_force_n` is the vacuum's
  effective pull; a peel moment above `peel_moment_nm` breaks the seal too). Whatever lies on
  the product comes along, blocks it or slides off as MuJoCo's contacts decide; a seal that
  lags its target by more than `max_lag_m` is lost.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import asdict, dataclass, field

import mujoco
import numpy as np

from simcell.cell import Cell


@dataclass(frozen=True)
class SuctionCup:
    radius_mm: float = 7.5  # a 15 mm bellows cup, the usual size for sachets 20-30 mm wide
    compliance_mm: float = 4.0  # bellows stroke: largest step off the fitted plane the lip can follow
    max_tilt_deg: float = 35.0
    max_residual_mm: float = 1.2
    press_force_n: float = 3.0
    press_s: float = 0.1
    holding_force_n: float = 6.0
    peel_moment_nm: float = 0.05
    lift_speed_m_s: float = 0.5
    lift_to_m: float = 0.25  # absolute height of the cup after the lift (bin rim is at 0.12 m)
    hold_s: float = 0.4
    max_lag_m: float = 0.03
    rings: tuple[int, ...] = (6, 12)  # rays per ring (plus the centre), rings evenly spaced

    def to_dict(self) -> dict:
        return asdict(self)


@dataclass
class Touch:
    """Where the cup met the pile and what it felt there."""

    xy_m: tuple[float, float]
    point_m: np.ndarray  # surface point under the cup's centre (where it seals), world frame
    instance: int  # instance under the cup centre (0: bin floor or nothing)
    hits: list[int]  # instance under each ray
    heights_m: np.ndarray
    tilt_deg: float
    residual_mm: float
    seal: bool
    reason: str  # "sealed" or why not


@dataclass
class PickResult:
    touch: Touch | None
    lifted: bool
    extracted: list[int] = field(default_factory=list)
    seal_lost: str = ""
    lift_frame: np.ndarray | None = field(default=None, repr=False)
    spilled: list[int] = field(default_factory=list)  # fell outside the bin: gone, but not picked


def _ray_offsets(cup: SuctionCup) -> np.ndarray:
    pts = [(0.0, 0.0)]
    for k, n in enumerate(cup.rings, start=1):
        r = cup.radius_mm / 1000.0 * k / len(cup.rings)
        pts += [(r * math.cos(2 * math.pi * j / n), r * math.sin(2 * math.pi * j / n)) for j in range(n)]
    return np.asarray(pts)


_VISUAL = np.array([1, 0, 0, 0, 0, 0], np.uint8)  # group 0: visual meshes, floor, rim


def feel(cell: Cell, xy_m: tuple[float, float], cup: SuctionCup) -> Touch:
    """Cast the cup's rays straight down and judge the seal there."""
    start_z = cell.rim_height_m + 0.5
    down = np.array([0.0, 0.0, -1.0])
    geom = np.zeros(1, np.int32)
    offsets = _ray_offsets(cup)
    hits, heights = [], []
    for dx, dy in offsets:
        origin = np.array([xy_m[0] + dx, xy_m[1] + dy, start_z])
        dist = mujoco.mj_ray(cell.model, cell.data, origin, down, _VISUAL, 1, -1, geom)
        hits.append(cell.instance_at_geom(int(geom[0])) if dist >= 0 else 0)
        heights.append(start_z - dist if dist >= 0 else 0.0)
    heights = np.asarray(heights)
    point = np.array([xy_m[0], xy_m[1], float(heights[0])])  # the surface under the cup's centre
    # Plane z = a x + b y + c through the touched points: tilt and roughness.
    design = np.column_stack([offsets, np.ones(len(offsets))])
    coef, *_ = np.linalg.lstsq(design, heights, rcond=None)
    deviation = design @ coef - heights
    residual_mm = float(np.sqrt(np.mean(deviation**2)) * 1000.0)
    tilt = float(math.degrees(math.atan(math.hypot(coef[0], coef[1]))))
    centre = hits[0]
    if len(set(hits)) > 1:
        reason = (
            "leak: the cup spans several surfaces" if 0 not in hits else "leak: the cup overhangs an edge"
        )
    elif centre == 0:
        reason = "no product under the cup"
    elif float(np.abs(deviation).max()) > cup.compliance_mm / 1000.0:
        reason = "leak: surface steps beyond the bellows' compliance"
    elif tilt > cup.max_tilt_deg:
        reason = f"leak: surface tilted {tilt:.0f} deg"
    elif residual_mm > cup.max_residual_mm:
        reason = f"leak: surface not planar ({residual_mm:.1f} mm rms)"
    else:
        reason = "sealed"
    return Touch(tuple(xy_m), point, centre, hits, heights, tilt, residual_mm, reason == "sealed", reason)


def line_of_sight_xy(cell: Cell, point_world_m: np.ndarray) -> tuple[float, float]:
    """(x, y) of the first surface on the camera's ray through a published point."""
    origin = cell.camera.t_world_camera[:3, 3].astype(float)
    direction = np.asarray(point_world_m, float) - origin
    direction /= np.linalg.norm(direction)
    geom = np.zeros(1, np.int32)
    dist = mujoco.mj_ray(cell.model, cell.data, origin, direction, _VISUAL, 1, -1, geom)
    hit = origin + dist * direction if dist >= 0 else np.asarray(point_world_m, float)
    return float(hit[0]), float(hit[1])


def _push_at(cell: Cell, body: int, point: np.ndarray, force: np.ndarray, torque: np.ndarray) -> None:
    """Force applied at `point` (world) on `body`: MuJoCo applies xfrc at the centre of mass."""
    cell.data.xfrc_applied[body, :3] = force
    cell.data.xfrc_applied[body, 3:] = torque + np.cross(point - cell.data.xipos[body], force)


def pick(
    cell: Cell,
    xy_m: tuple[float, float],
    cup: SuctionCup,
    frame_at_top: Callable[[], np.ndarray] | None = None,
) -> PickResult:
    """One suction attempt at world (x, y); returns what left the bin.

    `frame_at_top`, when given, is called at the top of the lift (for the GIF's picture of the
    product in the air) and its return value is kept in `lift_frame`.
    """
    first = feel(cell, xy_m, cup)
    if first.instance == 0:
        return PickResult(first, False)
    dt = cell.model.opt.timestep
    body = cell.body_of[first.instance]
    for _ in range(max(1, round(cup.press_s / dt))):
        _push_at(cell, body, first.point_m, np.array([0.0, 0.0, -cup.press_force_n]), np.zeros(3))
        cell.step()
    cell.data.xfrc_applied[:] = 0.0
    touch = feel(cell, xy_m, cup)
    if not touch.seal:
        cell.resettle(300)
        return PickResult(touch, False)
    body = cell.body_of[touch.instance]
    # Attach: remember the sealed point and the body's orientation in the cup's frame.
    rot0 = cell.data.xmat[body].reshape(3, 3).copy()
    local = rot0.T @ (touch.point_m - cell.data.xpos[body])
    mass = float(cell.model.body_subtreemass[body])
    target = touch.point_m.copy()
    omega = 40.0  # rad/s: a stiff arm, critically damped
    kp, kd = omega**2 * max(mass, 0.01), 2.0 * omega * max(mass, 0.01)
    # A bellows cup is rotationally soft: the product sags until the spring carries its moment.
    inertia = float(cell.model.body_inertia[body].max())
    kr, kw = inertia * 25.0**2, 2.0 * inertia * 25.0
    lost = ""
    rise_steps = max(1, math.ceil((cup.lift_to_m - target[2]) / (cup.lift_speed_m_s * dt)))
    hold_steps = max(1, round(cup.hold_s / dt))
    frame = None
    for i in range(rise_steps + hold_steps):
        target_vel = np.zeros(3)
        if i < rise_steps:
            target[2] = min(cup.lift_to_m, target[2] + cup.lift_speed_m_s * dt)
            target_vel[2] = cup.lift_speed_m_s
        rot = cell.data.xmat[body].reshape(3, 3)
        point = cell.data.xpos[body] + rot @ local
        if np.linalg.norm(point - target) > cup.max_lag_m:
            lost = "seal lost: the product lagged behind the cup (blocked or too heavy)"
            break
        vel = np.zeros(6)
        mujoco.mj_objectVelocity(cell.model, cell.data, mujoco.mjtObj.mjOBJ_BODY, body, vel, 0)
        force = kp * (target - point) + kd * (target_vel - vel[3:]) + np.array([0.0, 0.0, 9.81 * mass])
        # Orientation spring towards the attach-time orientation (a stiff cup), axis-angle error.
        err = rot @ rot0.T
        quat = np.zeros(4)
        mujoco.mju_mat2Quat(quat, err.ravel())
        axis_angle = np.zeros(3)
        mujoco.mju_quat2Vel(axis_angle, quat, 1.0)
        torque = -kr * axis_angle - kw * vel[:3]
        pull = float(np.linalg.norm(force))
        moment = float(np.linalg.norm(torque))  # the force acts at the cup: only the torque peels
        if pull > cup.holding_force_n:
            lost = f"seal lost: pull {pull:.1f} N above the holding force"
            break
        if moment > cup.peel_moment_nm:
            lost = f"seal lost: peel moment {moment:.3f} N m"
            break
        _push_at(cell, body, point, force, torque)
        cell.step()
        if i == rise_steps - 1 and frame_at_top is not None:
            frame = frame_at_top()
    cell.data.xfrc_applied[:] = 0.0
    if lost:
        # The product fell back; whatever landed outside the bin is spilled, not extracted.
        cell.resettle(600)
        spilled = cell.outside_bin()
        cell.park(spilled)
        cell.resettle()
        return PickResult(touch, True, [], lost, frame, spilled)
    # Carried: above the rim and moving with the (now still) cup, not falling past it.
    extracted = [
        i
        for i in sorted(cell.in_bin)
        if cell.height_of(i) > cell.rim_height_m and abs(cell.velocity_of(i)[2]) < 0.3
    ]
    cell.park(extracted)
    cell.resettle()
    spilled = cell.outside_bin()
    cell.park(spilled)
    return PickResult(touch, True, extracted, "", frame, spilled)
