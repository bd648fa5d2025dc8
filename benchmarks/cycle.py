"""End-to-end appliance cycle latency on this CPU, every backend side by side.

    python -m benchmarks.cycle [--cycles 30] [--size 512] [--camera simulated|folder]
                                            [--backends onnxruntime openvino-int8 ...]

The same `Supervisor.cycle_once` the appliance runs (capture → preprocess+infer → rank → ROI →
geometry → publish into the register bank), once per backend: ONNX Runtime fp32 (the appliance's
default), OpenVINO fp32, bf16 (where the CPU has it) and int8 (`models/*_int8.onnx`, fp32 around
the int8 layers: OpenVINO's bf16 hint ruins an int8 model's maps), and PyTorch eager on the
checkpoint, all alternating cycle by cycle so they see the same machine load. A backend that
cannot load here (openvino not installed, no bf16) is listed as skipped with its one-line
reason. Reports p50/p95 of the cycle with and without capture, each stage's share of the median
cycle, and each backend's speed-up over ONNX Runtime.

`--config FILE` starts from a shipped configuration (e.g. firmware_config/embedded.toml: its
camera, model, ranking, suction) instead of the defaults; the benchmark turns its Modbus TCP,
status page and snapshots off and sets only the backend, precision and threads per row.

Model: `--model M.onnx --checkpoint M.pt` (without --checkpoint: M.pt beside it if present, else
the torch row is skipped), else the --config's model, else the model that ships: the one
firmware_config/embedded.toml names (the RGB-D `models/bicameral_f25_rgbd.onnx`, no checkpoint:
no PyTorch row) with the simulated camera, which gives depth; with the folder camera (an RGB
frame, no depth) `models/bicameral_f25_rgb.onnx`, the model embedded.toml names for a camera
without depth, with its checkpoint `models/bicameral_f25_rgb.pt`. Where that file is missing, an
untrained F25 exported at the benchmark size (same architecture and FLOPs, so the same network
latency; its maps are meaningless, so ranking then sees few candidates and its share is
understated — said in the output).
"""

from __future__ import annotations

import argparse
import copy
import statistics
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

from benchmarks.arguments import non_negative_int, positive_int, shipped_model
from benchmarks.machine_info import machine_line
from edge.config import Config, ConfigError
from edge.health.stats import STAGES
from edge.supervisor import Supervisor

ROOT = Path(__file__).resolve().parents[1]

# The RGB model: what firmware_config/embedded.toml names for a camera without depth.
RGB_MODEL = ROOT / "models" / "bicameral_f25_rgb.onnx"


def models(
    size: int, work: Path, onnx_path: Path | None, checkpoint: Path | None, bundled: Path = RGB_MODEL
) -> tuple[Path, Path | None, str]:
    """(onnx, checkpoint or None, description) for the benchmark; `bundled` is the default model
    (the shipped one for the camera), an untrained F25 where that file is missing."""
    if onnx_path and checkpoint:
        return onnx_path, checkpoint, f"{onnx_path.name} with checkpoint {checkpoint.name}"
    if onnx_path:
        beside = onnx_path.with_suffix(".pt")
        if beside.is_file():
            return onnx_path, beside, f"{onnx_path.name} with checkpoint {beside.name}"
        return onnx_path, None, f"{onnx_path.name} (no checkpoint: no PyTorch row)"
    if bundled.is_file():
        checkpoint = bundled.with_suffix(".pt")
        if checkpoint.is_file():
            return bundled, checkpoint, f"bundled {bundled.name} with checkpoint {checkpoint.name}"
        return bundled, None, f"bundled {bundled.name} (no checkpoint: no PyTorch row)"

    from bicameral.export import export_untrained_f25

    checkpoint = work / "f25_untrained.pt"
    onnx_path = work / f"f25_untrained_{size}.onnx"
    export_untrained_f25(checkpoint, onnx_path, size, size, 1, "none (benchmark)")
    return onnx_path, checkpoint, f"untrained F25 exported at {size}x{size} (bundled {bundled.name} missing)"


# label -> (inference.backend, inference.precision, the int8 file instead of the fp32 one)
BACKENDS = {
    "onnxruntime": ("onnxruntime", "fp32", False),
    "openvino-fp32": ("openvino", "fp32", False),
    "openvino-bf16": ("openvino", "bf16", False),
    "openvino-int8": ("openvino", "fp32", True),
    "torch": ("torch", "fp32", False),
}


def int8_model(onnx_path: Path) -> Path:
    """Where `binpick quantize` output for `onnx_path` is bundled (models/X_int8.onnx)."""
    return onnx_path.with_name(onnx_path.stem + "_int8.onnx")


def make_config(
    backend: str,
    onnx_path: Path,
    checkpoint: Path | None,
    camera: str,
    size: int,
    threads: int,
    precision: str = "fp32",
    base: Config | None = None,
) -> Config:
    """A benchmark row's configuration: `base` (a --config file's, camera and all) or the
    defaults with `camera` at `size`; the network listeners and snapshots off."""
    if base is not None:
        c = copy.deepcopy(base)
    else:
        c = Config()
        c.camera.source = camera
        c.camera.width = c.camera.height = size
        if camera == "folder":
            c.camera.folder = str(ROOT / "examples" / "pile")
            c.camera.pattern = "rgb.png"
        c.plc.registers = str(ROOT / "firmware_config" / "registers.toml")
    c.inference.model = str(onnx_path)
    c.inference.backend = backend
    c.inference.precision = precision
    c.inference.torch_checkpoint = str(checkpoint) if checkpoint else ""
    c.inference.threads = threads
    c.plc.tcp_enabled = c.plc.rtu_enabled = False
    c.health.http_enabled = False
    c.health.snapshot_on_failure = False
    return c


def summarise(outcomes: list) -> dict:
    total = [sum(o.stages_ms.values()) for o in outcomes]
    compute = [t - o.stages_ms.get("capture", 0.0) for t, o in zip(total, outcomes, strict=True)]
    stages = {s: statistics.median(o.stages_ms.get(s, 0.0) for o in outcomes) for s in STAGES}
    errors = {}
    for o in outcomes:
        errors[o.error] = errors.get(o.error, 0) + 1
    # A cycle that failed before the network (camera, calibration, bin) did none of the work the
    # backends differ in: the speed-up is taken over the cycles that ran inference only.
    inferred = [c for c, o in zip(compute, outcomes, strict=True) if "inference" in o.stages_ms]
    return {
        "total": np.percentile(total, [50, 95]),
        "compute": np.percentile(compute, [50, 95]),
        "inferred_compute_p50": statistics.median(inferred) if inferred else None,
        "inferred": len(inferred),
        "cycles": len(outcomes),
        "stages": stages,
        "errors": errors,
    }


def speedup_cell(reference: dict, row: dict) -> str:
    """The row's speed-up over the reference row (`summarise` of each): the ratio of their p50
    without capture over the cycles that ran the network, and how many those were where not all."""
    if reference["inferred_compute_p50"] is None or row["inferred_compute_p50"] is None:
        return "– (no cycle ran the network)"
    text = f"{reference['inferred_compute_p50'] / row['inferred_compute_p50']:.2f}x"
    short = [r for r in (reference, row) if r["inferred"] < r["cycles"]]
    if short:
        text += (
            " (over the cycles that ran the network: "
            + ", ".join(f"{r['inferred']} of {r['cycles']}" for r in short)
            + ")"
        )
    return text


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--cycles", type=positive_int, default=30)
    parser.add_argument("--warmup", type=non_negative_int, default=3)
    parser.add_argument("--size", type=positive_int, default=512)
    parser.add_argument(
        "--camera", choices=("simulated", "folder"), default=None,
        help="simulated bin (default when Mikado is installed) or the bundled example frame",
    )  # fmt: skip
    parser.add_argument(
        "--threads", type=non_negative_int, default=0, help="inference threads (0 = physical cores)"
    )
    parser.add_argument(
        "--model", type=Path, help="ONNX model (with --checkpoint: the same weights for PyTorch)"
    )
    parser.add_argument("--checkpoint", type=Path, help="training checkpoint of --model")
    parser.add_argument(
        "--config", type=Path,
        help="start from this configuration file (e.g. firmware_config/embedded.toml); "
        "--size and --camera are then the file's",
    )  # fmt: skip
    parser.add_argument(
        "--backends", nargs="+", choices=list(BACKENDS), default=list(BACKENDS),
        help="backends to run side by side (default: all; those that cannot load here are skipped)",
    )  # fmt: skip
    args = parser.parse_args()
    if "onnxruntime" not in args.backends:
        parser.error("--backends: onnxruntime is the reference row, keep it")
    for option, path in (("--model", args.model), ("--checkpoint", args.checkpoint)):
        if path is not None and not path.is_file():
            parser.error(f"{option} {path}: no such file")
    import importlib.util
    import logging

    logging.basicConfig(level=logging.ERROR)  # failed cycles are counted in the table, not logged
    camera = args.camera or ("simulated" if importlib.util.find_spec("mikado") else "folder")
    base = None
    if args.config:
        from edge.config import load_config

        try:
            base = load_config(args.config)
        except ConfigError as exc:
            parser.error(f"--config: {exc}")
        camera, args.size = base.camera.source, base.camera.width
        if args.model is None:
            args.model = Path(base.inference.model)
    with tempfile.TemporaryDirectory() as tmp:
        # The shipped model needs the depth the simulated camera gives; an RGB frame takes the RGB model.
        bundled = shipped_model() if camera == "simulated" else RGB_MODEL
        onnx_path, checkpoint, model_text = models(args.size, Path(tmp), args.model, args.checkpoint, bundled)
        supervisors, skipped = {}, {}
        for label in args.backends:
            backend, precision, int8 = BACKENDS[label]
            model = int8_model(onnx_path) if int8 else onnx_path
            if not model.is_file():
                skipped[label] = f"{model.name} not found (binpick quantize writes it)"
                continue
            if backend == "torch" and checkpoint is None:
                skipped[label] = f"no checkpoint of {onnx_path.name} (--checkpoint)"
                continue
            cfg = make_config(backend, model, checkpoint, camera, args.size, args.threads, precision, base)
            sup = Supervisor(cfg)
            try:
                sup.open_parts()
            except Exception as exc:  # InferenceError (missing package, no bf16) or a camera fault
                skipped[label] = str(exc).splitlines()[0]
                if getattr(sup, "camera", None) is not None:
                    sup.camera.close()
                continue
            supervisors[label] = sup
        if "onnxruntime" not in supervisors:  # the reference row: no ratio without it
            for sup in supervisors.values():
                sup.camera.close()
            print(
                f"cycle: onnxruntime (the reference row) did not load: {skipped['onnxruntime']}",
                file=sys.stderr,
            )
            return 2
        outcomes: dict[str, list] = {b: [] for b in supervisors}
        for i in range(args.warmup + args.cycles):
            for backend, sup in supervisors.items():  # alternate: same load for both
                outcome = sup.cycle_once()
                if i >= args.warmup:
                    outcomes[backend].append(outcome)
        threads = {b: s.predictor.describe().get("threads") for b, s in supervisors.items()}
        precisions = {
            b: s.predictor.describe().get("precision", "fp32")
            + (" int8" if s.predictor.describe().get("int8") else "")
            for b, s in supervisors.items()
        }
        for sup in supervisors.values():
            sup.camera.close()
    results = {b: summarise(o) for b, o in outcomes.items()}
    print(f"# binpick cycle benchmark — {time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}")
    print(machine_line("onnxruntime", "openvino", "torch") + " (at the end)")
    print(f"model: {model_text}; input {args.size}x{args.size}; camera: {camera}; "
          f"configuration: {args.config or 'defaults'}; "
          f"{args.cycles} cycles per backend after {args.warmup} warm-up, alternating; "
          f"threads {threads}")  # fmt: skip
    print()
    print(
        "| backend | precision | cycle p50 (ms) | cycle p95 (ms) | without capture p50 | without capture p95 "
        "| vs onnxruntime (p50 without capture) | outcomes |"
    )
    print("|---|---|---:|---:|---:|---:|---:|---|")
    for backend, r in results.items():
        print(f"| {backend} | {precisions[backend]} | {r['total'][0]:.1f} | {r['total'][1]:.1f} | "
              f"{r['compute'][0]:.1f} | {r['compute'][1]:.1f} | {speedup_cell(results['onnxruntime'], r)} | "
              f"{r['errors']} |")  # fmt: skip
    for label, why in skipped.items():
        print(f"\nskipped {label}: {why}")
    print("\nShare of each stage in the median cycle (capture included):\n")
    print("| stage | " + " | ".join(f"{b} ms | {b} %" for b in results) + " |")
    print("|---|" + "---:|---:|" * len(results))
    for stage in STAGES:
        cells = []
        for r in results.values():
            whole = sum(r["stages"].values()) or 1.0
            cells += [f"{r['stages'][stage]:.2f}", f"{100 * r['stages'][stage] / whole:.1f}"]
        print(f"| {stage} | " + " | ".join(cells) + " |")
    if "untrained" in model_text:
        print("\nnote: untrained model — its maps yield few or no candidates, so `ranking` is understated.")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
