"""Mikado throughput and where the time goes, plus side-by-side ratios against what a user
would otherwise write.

1. Throughput: scenes/s writing a real dataset (512x512, 30 instances, preset mikado+ and
   mikado) with all local workers, and the median split per scene between physics (model
   build + settling), rendering, ground truth (labels, boundaries, occlusions, amodal masks)
   and writing the files.
2. Side by side, medians over repeats, same process:
   a. amodal masks by rasterising the posed meshes (ours) vs one MuJoCo segmentation render
      per instance with the others hidden (the obvious way);
   b. rendering RGB+depth+segmentation with one GL context kept per process (ours) vs a new
      `mujoco.Renderer` per scene (the documented API; every pile is a new model);
   c. writing one scene's files (mikado.io.write_scene: PNG filter and zlib strategy per kind
      of image) vs the same files written with one `cv2.imwrite` setting, zlib level 1 and
      libpng's default filters (what io.py did before; the pixels are the same either way).
The thesis's Blender pipeline took about 5 minutes per scene; that figure is quoted, not run.

    python -m benchmarks.mikado_throughput [--scenes 20] [--workers N] [--json out.json]
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import tempfile
import time
from pathlib import Path

from mikado.gl import select_backend

select_backend()  # before mujoco: the baseline below uses mujoco.Renderer's own backend choice

import mujoco  # noqa: E402 (after select_backend)

from benchmarks.arguments import (  # noqa: E402 (after select_backend)
    int_at_least,
    output_file,
    positive_int,
    write_output,
)
from benchmarks.machine_info import machine_info  # noqa: E402 (after select_backend)
from mikado.generate import Job, prepare_dataset, run  # noqa: E402 (after select_backend)
from mikado.io import DEPTH_SCALE_M, PNG_LEVEL, write_scene  # noqa: E402 (after select_backend)
from mikado.pile import _amodal_mask, _renderer, simulate, top_camera  # noqa: E402 (after select_backend)
from mikado.presets import get_preset  # noqa: E402 (after select_backend)
from mikado.render import COLLISION_GROUP  # noqa: E402 (after select_backend)
from mikado.scene import sample_plan  # noqa: E402 (after select_backend)

THESIS_SECONDS_PER_SCENE = 300.0


def machine() -> dict:
    return {**machine_info("mujoco"), "gl": os.environ.get("MUJOCO_GL")}


def throughput(preset: str, scenes: int, workers: int, size: int, instances: int) -> dict:
    with tempfile.TemporaryDirectory() as tmp:
        job = Job(str(Path(tmp) / "ds"), preset, 1234, size, size, {"instances": (instances, instances)})
        prepare_dataset(job, scenes)
        t0 = time.perf_counter()
        timings = [t for _, t in run(job, list(range(scenes)), workers)]
        wall = time.perf_counter() - t0
    split = {
        k: statistics.median(t[k] for t in timings)
        for k in ("physics_s", "render_s", "ground_truth_s", "write_s", "cpu_s")
    }
    cpu_per_scene = statistics.mean(t["cpu_s"] for t in timings)
    return {
        "preset": preset,
        "scenes": scenes,
        "workers": workers,
        "size": size,
        "instances": instances,
        "wall_s": wall,
        "scenes_per_s": scenes / wall,
        "median_split_s": split,
        "thesis_speedup": THESIS_SECONDS_PER_SCENE / (wall / scenes),
        "cpu_s_per_scene": cpu_per_scene,
        # What the machine would give with nobody else on it: every core busy with Mikado.
        "unloaded_estimate_scenes_per_s": (os.cpu_count() or 1) / cpu_per_scene,
    }


def amodal_side_by_side(repeats: int, size: int) -> dict:
    plan = sample_plan(77, get_preset("mikado+", instances=(30, 30)), size, size)
    model, data, visual_geoms, _ = simulate(plan)
    cam_id, cam = top_camera(model, data, plan)
    rend = _renderer(size, size)
    _, _, _ = rend.render(model, data, cam_id, size, size)
    bodies = [mujoco.mj_name2id(model, mujoco.mjtObj.mjOBJ_BODY, f"inst{i.id}") for i in plan.instances]

    def ours():
        return [
            _amodal_mask(i.vertices_m, i.template.faces, data.xpos[b], data.xmat[b].reshape(3, 3), cam)
            for i, b in zip(plan.instances, bodies, strict=True)
        ]

    hidden = 5  # visual geoms of the other instances go to a group the option switches off
    groups = model.geom_group.copy()
    seg = mujoco.Renderer(model, size, size)  # one context for all passes: fair to the baseline
    seg.enable_segmentation_rendering()
    option = mujoco.MjvOption()
    option.geomgroup[:] = 1
    option.geomgroup[COLLISION_GROUP] = 0
    option.geomgroup[hidden] = 0

    def per_instance_render():
        masks = []
        for g in visual_geoms:
            model.geom_group[:] = groups
            model.geom_group[visual_geoms] = hidden
            model.geom_group[g] = 0
            seg.update_scene(data, cam_id, option)
            ids = seg.render()[..., 0]
            masks.append(ids == g)
        model.geom_group[:] = groups
        return masks

    a, b = [], []
    for _ in range(repeats):
        t0 = time.perf_counter()
        m_ours = ours()
        a.append(time.perf_counter() - t0)
        t0 = time.perf_counter()
        m_ref = per_instance_render()
        b.append(time.perf_counter() - t0)
    seg.close()
    ious = [
        float((x & y).sum() / max(1, (x | y).sum())) for x, y in zip(m_ours, m_ref, strict=True) if y.any()
    ]
    return {
        "instances": len(visual_geoms),
        "ours_s": statistics.median(a),
        "per_instance_render_s": statistics.median(b),
        "speedup": statistics.median(b) / statistics.median(a),
        "median_iou_vs_render": statistics.median(ious),
    }


def renderer_side_by_side(repeats: int, size: int) -> dict:
    plan = sample_plan(78, get_preset("mikado+", instances=(30, 30)), size, size)
    model, data, _, _ = simulate(plan)
    cam_id = mujoco.mj_name2id(model, mujoco.mjtObj.mjOBJ_CAMERA, "top")
    rend = _renderer(size, size)
    rend.render(model, data, cam_id, size, size)

    def naive():
        r = mujoco.Renderer(model, size, size)
        r.update_scene(data, cam_id)
        rgb = r.render()
        r.enable_depth_rendering()
        depth = r.render()
        r.disable_depth_rendering()
        r.enable_segmentation_rendering()
        seg = r.render()
        r.close()
        return rgb, depth, seg

    a, b = [], []
    for _ in range(repeats):
        t0 = time.perf_counter()
        rend.render(model, data, cam_id, size, size)
        a.append(time.perf_counter() - t0)
        t0 = time.perf_counter()
        naive()
        b.append(time.perf_counter() - t0)
    return {
        "ours_s": statistics.median(a),
        "mujoco_renderer_per_scene_s": statistics.median(b),
        "speedup": statistics.median(b) / statistics.median(a),
    }


def write_uniform(scene, folder: Path) -> None:
    """The scene's image files with one PNG setting for all (zlib level 1, default filters)."""
    import cv2
    import numpy as np

    (folder / "masks").mkdir(parents=True, exist_ok=True)
    depth = np.clip(np.round(scene.depth_m / DEPTH_SCALE_M), 0, 65535).astype(np.uint16)
    images = {
        "rgb.png": cv2.cvtColor(scene.rgb, cv2.COLOR_RGB2BGR),
        "depth.png": depth,
        "labels.png": scene.labels.astype(np.uint16),
        "boundaries.png": scene.boundaries.astype(np.uint8) * 255,
        "occlusions.png": scene.occlusions.astype(np.uint8) * 255,
    }
    for inst in scene.instances:
        images[f"masks/visible_{inst.id}.png"] = inst.visible.astype(np.uint8) * 255
        images[f"masks/amodal_{inst.id}.png"] = inst.amodal.astype(np.uint8) * 255
    for name, img in images.items():
        if not cv2.imwrite(str(folder / name), img, PNG_LEVEL):
            raise OSError(f"cannot write {folder / name}")


def writing_side_by_side(repeats: int, size: int, instances: int) -> dict:
    from mikado.pile import render_pile

    scene = render_pile(79, "mikado+", size, size, instances=(instances, instances))
    a, b, a_cpu, b_cpu = [], [], [], []  # wall and this thread's CPU (libpng encodes in it)
    with tempfile.TemporaryDirectory() as tmp:
        for i in range(repeats):
            c0, t0 = time.thread_time(), time.perf_counter()
            ours = write_scene(scene, Path(tmp) / "ours", i)
            a.append(time.perf_counter() - t0)
            a_cpu.append(time.thread_time() - c0)
            c0, t0 = time.thread_time(), time.perf_counter()
            write_uniform(scene, Path(tmp) / "uniform" / str(i))
            b.append(time.perf_counter() - t0)
            b_cpu.append(time.thread_time() - c0)
        ours_bytes = sum(f.stat().st_size for f in ours.rglob("*.png"))
        uniform_bytes = sum(f.stat().st_size for f in (Path(tmp) / "uniform" / "0").rglob("*.png"))
    return {
        "files": 5 + 2 * len(scene.instances),
        "ours_s": statistics.median(a),
        "uniform_level1_s": statistics.median(b),
        "speedup": statistics.median(b) / statistics.median(a),
        "ours_cpu_s": statistics.median(a_cpu),
        "uniform_level1_cpu_s": statistics.median(b_cpu),
        "ours_png_bytes": ours_bytes,
        "uniform_png_bytes": uniform_bytes,
    }


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--scenes", type=positive_int, default=20)
    ap.add_argument("--workers", type=positive_int, default=os.cpu_count() or 1)
    ap.add_argument(
        "--size", type=int_at_least(16), default=512, help="image side in px, 16 or more (Mikado's least)"
    )
    ap.add_argument("--instances", type=positive_int, default=30)
    ap.add_argument("--repeats", type=positive_int, default=5)
    ap.add_argument("--json", type=output_file, default=None)
    args = ap.parse_args(argv)
    report = {"machine": machine()}
    report["throughput"] = [
        throughput(p, args.scenes, args.workers, args.size, args.instances) for p in ("mikado+", "mikado")
    ]
    report["amodal"] = amodal_side_by_side(args.repeats, args.size)
    report["renderer"] = renderer_side_by_side(args.repeats, args.size)
    report["writing"] = writing_side_by_side(args.repeats, args.size, args.instances)
    report["machine"]["load_average_end"] = [round(v, 2) for v in os.getloadavg()]
    m = report["machine"]
    print(
        f"machine: {m['cpu']}, {m['logical_cpus']} logical CPUs, MUJOCO_GL={m['gl']}, "
        f"load {m['load_average']} -> {m['load_average_end']}"
    )
    for t in report["throughput"]:
        s = t["median_split_s"]
        print(
            f"{t['preset']:8s} {t['size']}x{t['size']}, {t['instances']} instances, {t['workers']} workers: "
            f"{t['scenes_per_s']:.2f} scenes/s ({t['scenes']} scenes in {t['wall_s']:.1f} s; "
            f"{t['thesis_speedup']:.0f}x the thesis's 5 min/scene); median per scene: "
            f"physics {s['physics_s']:.3f} s, render {s['render_s']:.3f} s, "
            f"ground truth {s['ground_truth_s']:.3f} s, write {s['write_s']:.3f} s; "
            f"CPU {t['cpu_s_per_scene']:.2f} s/scene -> {t['unloaded_estimate_scenes_per_s']:.2f} scenes/s "
            f"on {os.cpu_count()} idle cores"
        )
    a = report["amodal"]
    print(
        f"amodal masks ({a['instances']} instances): rasterised {a['ours_s'] * 1000:.1f} ms "
        f"vs one render per instance {a['per_instance_render_s'] * 1000:.1f} ms -> {a['speedup']:.1f}x "
        f"(median IoU {a['median_iou_vs_render']:.3f})"
    )
    r = report["renderer"]
    print(
        f"render rgb+depth+seg: kept GL context {r['ours_s'] * 1000:.1f} ms vs new mujoco.Renderer per scene "
        f"{r['mujoco_renderer_per_scene_s'] * 1000:.1f} ms -> {r['speedup']:.1f}x"
    )
    w = report["writing"]
    print(
        f"write one scene ({w['files']} PNGs): per-kind filter+strategy {w['ours_s'] * 1000:.1f} ms "
        f"vs one level-1 setting {w['uniform_level1_s'] * 1000:.1f} ms -> {w['speedup']:.1f}x "
        f"(CPU {w['ours_cpu_s'] * 1000:.1f} vs {w['uniform_level1_cpu_s'] * 1000:.1f} ms; "
        f"{w['ours_png_bytes'] / 1e6:.2f} MB vs {w['uniform_png_bytes'] / 1e6:.2f} MB)"
    )
    if args.json:
        write_output(args.json, json.dumps(report, indent=1))


if __name__ == "__main__":
    main()
