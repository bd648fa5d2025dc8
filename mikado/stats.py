"""Dataset statistics comparable to the thesis (Figures 3.16 and 5.4).

Per image: instances (with at least one visible pixel), inter-instance occlusions and the
background pixel fraction. An occlusion is an unordered pair of instances where one hides
part of the other: the upper one's visible pixels cover at least `min_overlap_px` of the lower
one's amodal mask (the floor of a few pixels ignores rasterisation noise along silhouettes).
"""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np

from mikado.io import SCENE_KEYS, _read_png, list_scenes, read_json

THESIS = {
    "mikado": {"instances": 20.1, "occlusions": 52.9, "background": 0.24},
    "mikado+": {"instances": 31.5, "occlusions": 60.5, "background": 0.24},
}


def scene_stats(path: Path, min_overlap_px: int | None = None) -> dict:
    meta = read_json(path / "scene.json", SCENE_KEYS)
    labels = _read_png(path / "labels.png")
    thr = min_overlap_px if min_overlap_px is not None else max(5, int(1e-4 * labels.size))
    pairs = set()
    visible = [i for i in meta["instances"] if i["visible_px"] > 0]
    for inst in meta["instances"]:
        amodal = _read_png(path / "masks" / f"amodal_{inst['id']}.png", cv2.IMREAD_GRAYSCALE)
        under = labels[amodal > 0]
        ids, counts = np.unique(under[(under != 0) & (under != inst["id"])], return_counts=True)
        for other, c in zip(ids.tolist(), counts.tolist(), strict=True):
            if c >= thr:
                pairs.add((min(other, inst["id"]), max(other, inst["id"])))
    return {
        "instances": len(visible),
        "dropped": len(meta["instances"]),
        "occlusions": len(pairs),
        "background": float((labels == 0).mean()),
        "occlusion_rate": float(np.mean([i["occlusion_rate"] for i in visible])) if visible else 0.0,
        "preset": meta.get("preset"),
    }


def dataset_stats(dataset: Path) -> dict:
    scenes = list_scenes(dataset)
    if not scenes:
        raise ValueError(f"{dataset} holds no complete scenes")
    per = [scene_stats(p) for p in scenes]

    def summary(key: str) -> dict:
        v = np.array([s[key] for s in per], dtype=np.float64)
        return {
            "mean": float(v.mean()),
            "median": float(np.median(v)),
            "min": float(v.min()),
            "max": float(v.max()),
        }

    presets = sorted({s["preset"] for s in per if s["preset"]})
    return {
        "dataset": str(dataset),
        "scenes": len(per),
        "presets": presets,
        "instances_per_image": summary("instances"),
        "dropped_per_image": summary("dropped"),
        "occlusions_per_image": summary("occlusions"),
        "background_fraction": summary("background"),
        "mean_occlusion_rate": summary("occlusion_rate"),
        "thesis": {p: THESIS[p] for p in presets if p in THESIS},
    }


def format_stats(stats: dict) -> str:
    lines = [
        f"{stats['dataset']}: {stats['scenes']} scene(s), preset(s) {', '.join(stats['presets']) or '?'}",
        f"{'per image':28s} {'mean':>8s} {'median':>8s} {'min':>8s} {'max':>8s}   thesis",
    ]
    rows = [
        ("instances (visible)", "instances_per_image", "instances", 1.0),
        ("instances dropped", "dropped_per_image", None, 1.0),
        ("inter-instance occlusions", "occlusions_per_image", "occlusions", 1.0),
        ("background fraction (%)", "background_fraction", "background", 100.0),
        ("mean occlusion rate (%)", "mean_occlusion_rate", None, 100.0),
    ]
    for title, key, thesis_key, scale in rows:
        s = stats[key]
        ref = (
            ", ".join(f"{p}: {v[thesis_key] * scale:.1f}" for p, v in stats["thesis"].items())
            if thesis_key
            else ""
        )
        lines.append(
            f"{title:28s} {s['mean'] * scale:8.1f} {s['median'] * scale:8.1f} {s['min'] * scale:8.1f} "
            f"{s['max'] * scale:8.1f}   {ref}"
        )
    return "\n".join(lines)
