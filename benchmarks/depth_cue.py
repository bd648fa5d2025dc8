"""Occlusion maps from RGB, from depth, and both, on the same held-out Mikado scenes.

Scores (bicameral.evaluation: occlusion ODS/AP at pixel tolerance, and the top candidate of the
appliance's ranking on an unoccluded instance) for:
- `rgb`: the network alone (its Z; an RGB-D or depth model gets the same depth as the cue),
- `cue`: the depth cue alone (`edge.depth_cue`, Z replaced; the network's Y still bounds the
  candidates, the ranking needs a boundary map),
- `max`, `mean`: the network's Z fused with the cue (`[inference] depth_cue = "fuse"`),
on stereo-noise depth (`mikado.depth_noise`, seeded per frame: every variant sees the same noise)
and on the exact depth. One inference per frame, shared by every variant. The default model is
the RGB one on purpose: the cue is what a camera with depth adds to an RGB network (the model
embedded.toml ships, the RGB-D one, through `--model`). Prints the machine and the cue's median
time per frame (no alternative to time it against: an absolute figure of this machine).

    python -m benchmarks.depth_cue --data /path/to/heldout_mikadoplus --model models/bicameral_f25_rgb.onnx
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from dataclasses import replace
from pathlib import Path

import numpy as np

from benchmarks.arguments import non_negative_int, output_file, positive_int, write_output
from benchmarks.machine_info import machine_info, machine_line
from bicameral.data import DatasetError, DepthNoise, degrade_depth, focal_length_px, list_scenes, read_scene
from bicameral.evaluation.boundary_metrics import BoundaryAccumulator
from bicameral.evaluation.instance_metrics import InstanceAccumulator
from bicameral.evaluation.predictors import OnnxPredictor
from edge.depth_cue import DepthCueParams, apply_to_maps

ROOT = Path(__file__).resolve().parents[1]

VARIANTS = {
    "rgb": None,
    "cue": DepthCueParams(mode="only"),
    "max": DepthCueParams(mode="fuse", fusion="max"),
    "mean": DepthCueParams(mode="fuse", fusion="mean", weight=0.5),
    "max+Y": DepthCueParams(mode="fuse", fusion="max", boundaries=True),
    "mean+Y": DepthCueParams(mode="fuse", fusion="mean", weight=0.5, boundaries=True),
    "cue+Y": DepthCueParams(mode="only", boundaries=True),
}


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--data", required=True)
    ap.add_argument("--model", default=str(ROOT / "models" / "bicameral_f25_rgb.onnx"))
    ap.add_argument("--limit", type=non_negative_int, default=0, help="first N scenes only (0 = all)")
    ap.add_argument("--threads", type=positive_int, default=2)
    ap.add_argument("--out", type=output_file, default=None, help="also write the figures to this JSON file")
    ap.add_argument("--variants", default="all", help="comma-separated subset of " + ",".join(VARIANTS))
    args = ap.parse_args(argv)
    unknown = [] if args.variants == "all" else [k for k in args.variants.split(",") if k not in VARIANTS]
    if unknown:
        ap.error(f"--variants: unknown {','.join(unknown)} (known: {','.join(VARIANTS)})")
    if not Path(args.model).is_file():
        ap.error(f"--model {args.model}: no such file")
    try:
        scenes = list_scenes(args.data)
    except DatasetError as exc:
        ap.error(f"--data: {exc}")
    if not scenes:
        ap.error(f"--data {args.data}: no scenes")
    predictor = OnnxPredictor(args.model, threads=args.threads)
    scenes = scenes[: args.limit] if args.limit else scenes
    depths = ("stereo", "exact")
    variants = VARIANTS if args.variants == "all" else {k: VARIANTS[k] for k in args.variants.split(",")}
    accs = {(d, v): (BoundaryAccumulator("pixel"), InstanceAccumulator()) for d in depths for v in variants}
    cue_ms: list[float] = []
    started = time.monotonic()
    for index, path in enumerate(scenes):
        scene = read_scene(path)
        uses_depth = predictor.info.uses_depth  # an RGB-D model sees the same depth as the cue
        if not uses_depth:
            y, z = predictor(scene.rgb, None)
        instances = scene.meta.get("instances", [])
        for depth_kind in depths:
            depth = scene.depth_m
            if depth_kind == "stereo":
                rng = np.random.default_rng(index)  # bicameral.evaluation's seeding
                depth = degrade_depth(depth, focal_length_px(scene.meta), DepthNoise(), rng)
            if uses_depth:
                y, z = predictor(scene.rgb if predictor.info.uses_rgb else None, depth)
            for name, params in variants.items():
                yy, zz = y, z
                if params is not None:
                    t0 = time.perf_counter()
                    yy, zz = apply_to_maps(y, z, depth, params)
                    cue_ms.append((time.perf_counter() - t0) * 1000.0)
                occ, inst = accs[(depth_kind, name)]
                occ.add(zz, scene.occlusions)
                inst.add(yy, zz, scene.labels, instances)
        print(f"{index + 1}/{len(scenes)} frames, {time.monotonic() - started:.0f} s", file=sys.stderr)
    rows = []
    for (depth_kind, name), (occ, inst) in accs.items():
        o, i = occ.scores(), inst.scores().to_dict()
        rows.append(
            {
                "depth": depth_kind,
                "variant": name,
                "params": None if VARIANTS[name] is None else replace(VARIANTS[name]).__dict__,
                "occlusion_ods": round(o.ods, 3),
                "occlusion_ap": round(o.ap, 3),
                "top_unoccluded": round(i["best_candidate_success"], 3),
                "frames": o.images,
            }
        )
    print(machine_line("onnxruntime"))
    print(f"model: {args.model}; data: {args.data}, {len(scenes)} scenes")
    print("| depth | variant | occlusion ODS | occlusion AP | top candidate unoccluded |")
    print("|---|---|---:|---:|---:|")
    for r in rows:
        print(
            f"| {r['depth']} | {r['variant']} | {r['occlusion_ods']:.3f} | {r['occlusion_ap']:.3f} "
            f"| {r['top_unoccluded']:.3f} |"
        )
    cue_median = float(np.median(cue_ms)) if cue_ms else None
    if cue_median is not None:  # no alternative to time it against: an absolute figure of this machine
        print(f"depth cue + fusion: median {cue_median:.1f} ms per frame", file=sys.stderr)
    if args.out:
        summary = {"machine": machine_info("onnxruntime"), "model": str(args.model), "rows": rows,
                   "cue_ms_median": cue_median}  # fmt: skip
        write_output(args.out, json.dumps(summary, indent=1))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
