"""Everything the operator's page shows, as one JSON document built from the supervisor's parts.

Kept out of the supervisor so that the page can grow without touching the cycle; it only reads
(stats, register bank, PLC gate, calibration, model metadata, history, configuration).
"""

from __future__ import annotations

import time
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from edge.config import Config
    from edge.supervisor import Supervisor

PROVENANCE_FIELDS = (
    "date", "preset", "dataset_scenes", "validation_scenes", "epochs", "iterations", "image_size",
    "crop", "validation_loss", "hardware", "training_seconds", "git_commit", "amp",
)  # fmt: skip


def cell_state(sup: Supervisor) -> dict:
    """running / idle / error, with the reason a technician needs first."""
    s = sup.stats.summary()
    if s["state"] != "running":
        return {"state": "idle", "reason": f"appliance {s['state']}"}
    if sup.bank.mode != "run":
        return {"state": "idle", "reason": f"the PLC set mode '{sup.bank.mode}'"}
    camera = sup.camera.status() if sup.camera else {}
    if camera.get("state") in ("down", "reopening"):
        return {
            "state": "error",
            "reason": f"camera {camera['state']}: {camera.get('last_error', '')}".strip(),
        }
    last = s["last_result"]
    if last.get("error") not in (None, "ok", "not_running"):
        return {"state": "error", "reason": f"{last['error']}: {last.get('message', '')}"}
    if not s["cycles"]:
        return {"state": "running", "reason": "waiting for the first cycle"}
    if sup.config.appliance.mode == "triggered":
        return {"state": "running", "reason": "triggered by the PLC; last cycle found a grasp"}
    return {"state": "running", "reason": "free-run; last cycle found a grasp"}


def handshake(regs: dict, triggered: bool) -> str:
    """The trigger handshake (docs/registers.md) in one sentence, from the live registers."""
    bits = regs["status_bits"]
    if not triggered and bits.get("busy"):
        return f"free-run: cycle running; last result {regs['sequence_id']}"
    if bits.get("busy"):
        queued = regs["trigger_id"] not in (0, regs["trigger_ack"])  # written while busy: one deep
        then = f"; trigger {regs['trigger_id']} queued, its result comes next" if queued else ""
        return f"busy: cycle for trigger {regs['trigger_ack']} running{then}"
    if bits.get("result_valid"):
        return (
            f"result {regs['sequence_id']} valid (request {regs['request_id']}); waiting for the PLC's "
            "result_ack"
        )
    if not triggered:
        return f"free-run: last result {regs['sequence_id']} acknowledged or expired"
    if regs["trigger_id"] and regs["trigger_id"] != regs["trigger_ack"]:
        return f"trigger {regs['trigger_id']} written, not accepted yet"
    return f"idle: waiting for a new trigger_id (last {regs['trigger_ack']}, result_ack {regs['result_ack']})"


def model_card(sup: Supervisor) -> dict:
    if sup.predictor is None:
        return {}
    info = sup.predictor.info
    card = {
        **sup.predictor.describe(),
        "encoder": info.encoder,
        "input_kind": info.input_kind,
        "fp16": info.fp16,
    }
    card.update({k: info.provenance[k] for k in PROVENANCE_FIELDS if k in info.provenance})
    return card


def calibration_summary(sup: Supervisor) -> dict:
    cal = sup.calibration
    out = {"file": cal.path or "(none)", "pixel_mode": cal.pixel_mode, "error": cal.error}
    current = cal.current
    if current is not None:
        failed = current.failed_checks()
        out.update(
            {
                "cell": current.cell,
                "created": current.created,
                "image_size": list(current.image_size),
                "plane_source": current.plane_source,
                "roi": current.roi_polygon is not None,
                # written with `--accept-failed`: used, but its millimetres were not checked
                "passed": not failed,
                "failed_checks": failed,
                "intrinsics": _scalars(current.intrinsics_report),
                "extrinsics": _scalars(current.extrinsics_report),
            }
        )
    return out


def _scalars(report: dict) -> dict:
    return {k: v for k, v in report.items() if isinstance(v, (int, float, str, bool))}


def public_config(config: Config) -> dict:
    """The configuration as read, with the password and token hashes replaced."""
    data = config.to_dict()
    for key in ("users", "tokens"):
        data["health"][key] = [":".join(e.split(":")[:2]) + ":(hash)" for e in data["health"][key]]
    data["source"] = config.source
    return data


def overview(sup: Supervisor) -> dict:
    s = sup.stats.summary()
    regs = sup.bank.snapshot()
    latest = sup.frames.latest
    return {
        "time": time.time(),
        "name": sup.config.appliance.name,
        "cell": cell_state(sup),
        "mode": sup.config.appliance.mode,
        "uptime_s": s["uptime_s"],
        "cycles": s["cycles"],
        "errors_by_name": s["errors"],
        "cycle_ms": sup.stats.percentiles().get("total", {}),
        "last_result": s["last_result"],
        "live": {"version": latest.version, "sequence": latest.sequence, "time": latest.time},
        **sup.history.view(),
        "plc": {
            "servers": dict(sup.plc.state),
            **sup.plc.gate.state(),
            "handshake": handshake(regs, sup.config.appliance.mode == "triggered"),
            "rejected_writes": sup.bank.rejected_writes,
            "last_rejection": sup.bank.last_rejection,
            "registers": regs,
        },
        "model": model_card(sup),
        "calibration": calibration_summary(sup),
        "camera": sup.camera.status() if sup.camera else {},
        "config": public_config(sup.config),
    }
