"""`binpick eval`'s engine: score a model on a Mikado dataset, write JSON and a PR plot.

Each frame is inferred once; its two probability maps feed the boundary and occlusion
accumulators (ODS/OIS/AP/AP60) and, when the native ranking is available, the instance-level
accumulator (`instance_metrics`). Dynamic augmentation is not applied at test time: we score the
model on the frames as rendered.
"""

from __future__ import annotations

import json
import sys
import time
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from bicameral.data import (
    DepthNoise,
    list_scenes,
    read_dataset_info,
    read_scene,
    scored_depth,
)
from bicameral.evaluation.boundary_metrics import BoundaryAccumulator
from edge.atomic_file import write_atomically

if TYPE_CHECKING:
    from bicameral.evaluation.predictors import Predictor

# Thesis Table 5.5: bicameral networks trained and tested on Mikado (cross-validated).
THESIS_TABLE_5_5 = {
    "F100": {"boundaries": {"ods": 0.769, "ap": 0.847}, "occlusions": {"ods": 0.801, "ap": 0.884}},
    "F75": {"boundaries": {"ods": 0.756, "ap": 0.832}, "occlusions": {"ods": 0.791, "ap": 0.876}},
    "F50": {"boundaries": {"ods": 0.730, "ap": 0.802}, "occlusions": {"ods": 0.768, "ap": 0.852}},
    "F25": {"boundaries": {"ods": 0.657, "ap": 0.706}, "occlusions": {"ods": 0.691, "ap": 0.765}},
}


def evaluate(
    predictor: Predictor,
    data: str | Path,
    tolerance: str | float = "pixel",
    instances: str = "auto",
    limit: int | None = None,
    progress: bool = True,
    depth_noise: bool = False,
) -> dict:
    """Score `predictor` on the scenes of `data`; `instances`: "auto" (skip with a note when the
    native ranking is missing), "on" (required) or "off". `depth_noise` degrades each frame's
    depth like a stereo camera (seeded by the frame index, so every model sees the same noise)."""
    scenes = list_scenes(data)[:limit] if limit else list_scenes(data)
    # Before the frames: a damaged dataset.json found after scoring them threw the work away.
    info = read_dataset_info(data)
    boundaries = BoundaryAccumulator(tolerance)
    occlusions = BoundaryAccumulator(tolerance)
    instance_acc, instance_note = None, None
    if instances != "off":
        from bicameral.evaluation.instance_metrics import InstanceAccumulator

        try:
            instance_acc = InstanceAccumulator()
        except ImportError as exc:
            if instances == "on":
                raise
            instance_note = f"skipped: {exc}"
    else:
        instance_note = "skipped: --instances off"
    iterator = scenes
    if progress:
        from tqdm import tqdm

        iterator = tqdm(scenes, unit="frame", file=sys.stderr, dynamic_ncols=True)
    inference_s = 0.0
    start = time.monotonic()
    for index, path in enumerate(iterator):
        scene = read_scene(path)
        depth = scored_depth(scene, index, DepthNoise() if depth_noise else None)
        t0 = time.monotonic()
        b, o = predictor(scene.rgb, depth)
        inference_s += time.monotonic() - t0
        boundaries.add(b, scene.boundaries)
        occlusions.add(o, scene.occlusions)
        if instance_acc is not None:
            instance_acc.add(b, o, scene.labels, scene.meta.get("instances", []))
    result = {
        "model": predictor.description,
        "dataset": {
            "path": str(Path(data).resolve()),
            "preset": info.get("preset"),
            "seed": info.get("seed", info.get("base_seed")),
            "frames": len(scenes),
        },
        "protocol": {
            "thresholds": 99,
            "nms": False,
            "thinning": False,
            "tolerance": tolerance,
            "depth_noise": depth_noise,
        },
        "boundaries": boundaries.scores().to_dict(),
        "occlusions": occlusions.scores().to_dict(),
        "instances": instance_acc.scores().to_dict() if instance_acc is not None else {"note": instance_note},
        "seconds": {"total": round(time.monotonic() - start, 2), "inference": round(inference_s, 2)},
    }
    return result


def summary_table(result: dict) -> str:
    """A short text table of the scores (what `binpick eval` prints)."""
    lines = ["            ODS    OIS    AP     AP60"]
    for key in ("boundaries", "occlusions"):
        s = result[key]
        lines.append(f"{key:<11} {s['ods']:.3f}  {s['ois']:.3f}  {s['ap']:.3f}  {s['ap60']:.3f}")
    inst = result["instances"]
    if "best_candidate_success" in inst:
        lines.append(
            f"instances   best candidate on an unoccluded instance: {inst['best_candidate_success']:.3f}; "
            f"mean candidate IoU: {inst['mean_candidate_iou']:.3f} over {inst['frames']} frames"
        )
    else:
        lines.append(f"instances   {inst.get('note', 'not evaluated')}")
    return "\n".join(lines)


def write_json(result: dict, path: str | Path) -> None:
    """Atomic write, so a half-written file never looks like a result."""
    write_atomically(path, json.dumps(result, indent=2, default=float).encode())


def plot_pr(result: dict, path: str | Path, label: str | None = None) -> None:
    """Precision–recall curves of boundaries and occlusions side by side, with iso-F lines and
    the ODS point, like thesis Figure 4.7."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    model = result["model"]
    label = label or f"{model.get('variant', 'model')} F{100 * float(model.get('width', 1)):g}"
    fig, axes = plt.subplots(1, 2, figsize=(10, 4.8))
    panels = zip(axes, ("boundaries", "occlusions"), ("Instance boundaries", "Occlusions"), strict=True)
    for ax, key, title in panels:
        grid = np.linspace(0.01, 1, 200)
        for f in np.arange(0.1, 1.0, 0.1):
            r = grid[grid > f / 2]
            p = f * r / (2 * r - f)
            keep = (p > 0) & (p <= 1)
            ax.plot(r[keep], p[keep], color="0.85", linewidth=0.8)
            ax.annotate(f"{f:.1f}", (r[keep][-1], p[keep][-1]), color="0.6", fontsize=7)
        s = result[key]
        recall, precision = np.asarray(s["recall"]), np.asarray(s["precision"])
        keep = (recall > 0) | (precision > 0)
        legend = f"[ODS={s['ods']:.3f}, AP={s['ap']:.3f}] {label}"
        ax.plot(recall[keep], precision[keep], linewidth=2, label=legend)
        ax.plot([s["ods_recall"]], [s["ods_precision"]], "o", color="C3", markersize=5)
        ax.set(xlim=(0, 1), ylim=(0, 1), xlabel="Recall", ylabel="Precision", title=title)
        ax.grid(True, alpha=0.3)
        ax.legend(loc="lower left", fontsize=8)
    fig.tight_layout()
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=120)
    plt.close(fig)
