"""The closed loop: settle, see, decide, pick, score, resettle; one record per attempt.

A sequence is one pile of one product family (as in the thesis: a scene is many instances of
the same product) on a fixed seed; it ends when the bin is empty, when `cycles_per_instance`
x N attempts are spent, after `max_consecutive_failures` failed attempts in a row (the
thesis's operators restarted a stuck sequence too), or, with `stop_below_fraction` > 0, when
the pile is no longer "in bulk" (the thesis extracted "some" instances from piles in bulk).
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from typing import TYPE_CHECKING

import numpy as np

from mikado.camera import project
from simcell.calibration import robot_to_world
from simcell.cell import Cell
from simcell.gripper import SuctionCup, feel, line_of_sight_xy, pick
from simcell.report import method_name
from simcell.scoring import Thresholds, extraction_answer, grasp_answers

if TYPE_CHECKING:
    from simcell.pickers import Picker


@dataclass(frozen=True)
class LoopSettings:
    preset: str = "mikado+"
    width: int = 512
    height: int = 512
    instances: tuple[int, int] = (12, 20)
    cycles_per_instance: float = 1.5
    max_consecutive_failures: int = 4
    stop_below_fraction: float = 0.0  # > 0: end when fewer than this share of the pile remains (bulk only)
    pick_feedback: bool = True  # the robot reports each pick's outcome (edge.ranking.pick_feedback)
    pick_height_mm: float = 20.0
    calibration_error_mm: float = 0.0  # the commissioned calibration's error at the pick plane
    held_out_textures: bool = True
    light_gain: float = 1.0
    cup: SuctionCup = field(default_factory=SuctionCup)
    thresholds: Thresholds = field(default_factory=Thresholds)

    def to_dict(self) -> dict:
        return asdict(self)


def sequence_seed(base_seed: int, family: str, index: int) -> int:
    """Fixed, family-specific pile seeds: every method sees the same piles."""
    tag = sum((i + 1) * ord(c) for i, c in enumerate(family))
    return int(base_seed) * 1_000_003 + tag * 1_009 + index


def cup_radius_px(cell: Cell, point_m: np.ndarray, radius_mm: float) -> float:
    edge = np.asarray(point_m, float) + np.array([radius_mm / 1000.0, 0.0, 0.0])
    uv = project(np.stack([point_m, edge]), cell.camera.k, cell.camera.t_world_camera)
    return float(np.linalg.norm(uv[1] - uv[0]))


EMPTY_WATCH_CYCLES = 4  # cycles observed after the last product left (bin_empty timing)


def _bin_state(picker: Picker) -> dict | None:
    """The picker's bin model state (`AppliancePicker.bin_state`), None for a picker without."""
    state = getattr(picker, "bin_state", None)
    return None if state is None else state()


def _bin_record(state: dict, labels: np.ndarray) -> dict:
    """The appliance's fill level and bin_empty beside the simulator's truth: the share of the
    bin's interior (the appliance's own, moved) that product covers in the label image."""
    inside = state["inside"]
    truth = None
    if inside is not None and inside.any():
        truth = 100.0 * float((labels[inside] != 0).mean())
    return {"fill_percent": state["fill_percent"], "fill_truth": truth, "bin_empty": state["empty"]}


FrameSink = Callable[[dict, np.ndarray | None, np.ndarray | None], None]


def run_sequence(
    picker: Picker,
    family: str,
    seed: int,
    settings: LoopSettings,
    sequence_id: str,
    on_attempt: FrameSink | None = None,
    max_attempts: int | None = None,
) -> list[dict]:
    """Run one sequence with `picker` (see simcell.pickers) and return its attempt records."""
    t0 = time.perf_counter()
    cell = Cell(
        seed,
        settings.preset,
        settings.width,
        settings.height,
        held_out_textures=settings.held_out_textures,
        light_gain=settings.light_gain,
        calibration_error_mm=settings.calibration_error_mm,
        families=(family,),
        heterogeneous=0.0,
        instances=settings.instances,
    )
    picker.bind(cell)
    n = len(cell.in_bin)
    budget = max(1, round(settings.cycles_per_instance * n))
    if max_attempts is not None:
        budget = min(budget, max_attempts)
    records, failures_in_row = [], 0
    for attempt in range(budget):
        if not cell.in_bin or failures_in_row >= settings.max_consecutive_failures:
            break
        if len(cell.in_bin) < settings.stop_below_fraction * n:
            break
        t_attempt = time.perf_counter()
        obs = cell.observe()
        luminance = float(np.mean(obs.rgb.astype(np.float32) @ np.array([0.299, 0.587, 0.114], np.float32)))
        proposal = picker.propose(cell, obs)
        record = {
            "method": method_name(picker.name, settings.calibration_error_mm),
            "family": family,
            "sequence": sequence_id,
            "seed": seed,
            "attempt": attempt,
            "in_bin_before": len(cell.in_bin),
            "luminance": luminance,
            "vision_ms": proposal.vision_ms,
            "message": proposal.message,
        }
        lift_frame = None
        if proposal.robot_mm is None:
            record.update(
                q1="no",
                q2="no",
                q3="-",
                detected=0,
                occlusion=None,
                seal="no grasp",
                extracted=[],
                lifted=False,
            )
        else:
            xy = line_of_sight_xy(cell, robot_to_world(proposal.robot_mm))
            touch = feel(cell, xy, settings.cup)
            uv = project(touch.point_m[None], cell.camera.k, cell.camera.t_world_camera)[0]
            radius = cup_radius_px(cell, touch.point_m, settings.cup.radius_mm)
            q2, q3, detected, share = grasp_answers(
                obs.labels, tuple(uv), radius, cell.amodal, settings.thresholds
            )
            top = (lambda: cell.observe().rgb) if on_attempt is not None else None
            result = pick(cell, xy, settings.cup, frame_at_top=top)
            lift_frame = result.lift_frame
            record.update(
                q1=extraction_answer(result.extracted),
                q2=q2,
                q3=q3,
                detected=detected,
                occlusion=None if np.isnan(share) else share,
                seal=result.seal_lost or result.touch.reason,
                seal_on_contact=touch.reason,  # where the cup came down, before the press moved anything
                extracted=[int(i) for i in result.extracted],
                lifted=result.lifted,
                on_floor=touch.instance == 0,
                wall_collision=cell.wall_hit(xy, settings.cup.radius_mm / 1000.0),
                spilled=[int(i) for i in result.spilled],
                grasp_px=None
                if proposal.pixel is None
                else [float(proposal.pixel[0]), float(proposal.pixel[1])],
                touch_px=[float(uv[0]), float(uv[1])],
                robot_mm=[float(v) for v in proposal.robot_mm],
                grasp_method=proposal.method,  # ours: which rule placed the grasp; others: ""
            )
        failures_in_row = 0 if record["q1"] == "yes" else failures_in_row + 1
        if settings.pick_feedback and proposal.robot_mm is not None:
            picker.report(bool(record["extracted"]))  # what the vacuum sensor knows: held or not
        state = _bin_state(picker)  # the appliance with [bin] (edge.bin_model)
        if state is not None:
            record.update(_bin_record(state, obs.labels))
        record["sim_s"] = time.perf_counter() - t_attempt
        records.append(record)
        if on_attempt is not None:
            on_attempt(record, proposal.overlay, obs.rgb if lift_frame is None else lift_frame)
    if _bin_state(picker) is not None and not cell.in_bin:
        # the bin is empty: a few more cycles tell when the appliance raises bin_empty
        after = None
        for k in range(1, EMPTY_WATCH_CYCLES + 1):
            picker.propose(cell, cell.observe())
            if _bin_state(picker)["empty"]:
                after = k
                break
        for r in records:
            r["empty_signal_after"] = after
    for r in records:
        r["sequence_s"] = time.perf_counter() - t0
        r["instances"] = n
        r["left_in_bin"] = len(cell.in_bin)
    return records
