"""`binpick eval`: ODS/OIS/AP/AP60 of boundaries and occlusions, and instance-level picking
scores, of an exported model (.onnx, ONNX Runtime) or a training checkpoint (PyTorch)."""

from __future__ import annotations

import argparse
import math
from pathlib import Path

from binpick_core.errors import CommandError
from edge.atomic_file import check_output, output_problem


def configure(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--model", required=True, help="model.onnx (binpick export) or a checkpoint .pt")
    parser.add_argument("--data", required=True, help="Mikado dataset folder to score on")
    parser.add_argument("--tolerance", default="pixel",
                        help="pixel (0 px, synthetic ground truth), bsds (0.0075 x diagonal, hand labels) "
                        "or a radius in pixels")  # fmt: skip
    parser.add_argument("--instances", choices=["auto", "on", "off"], default="auto",
                        help="instance scores via edge.ranking (auto: skip if not built)")  # fmt: skip
    parser.add_argument("--out", default="eval", help="output folder for eval.json and pr.png (eval/)")
    parser.add_argument("--limit", type=int, help="score only the first N frames")
    parser.add_argument("--depth-noise", action="store_true",
                        help="stereo-like depth noise, as train --depth-noise")  # fmt: skip
    parser.add_argument("--device", default="auto", help="checkpoints: auto, cpu, cuda")
    parser.add_argument("--backend", choices=["onnxruntime", "openvino"], default="onnxruntime",
                        help=".onnx runtime (onnxruntime runs the file as written)")  # fmt: skip
    parser.add_argument("--precision", choices=["fp32", "bf16", "auto"], default="fp32",
                        help="openvino: precision of what is not int8 (as inference.precision)")  # fmt: skip
    parser.add_argument("--no-progress", dest="progress", action="store_false")


def parse_tolerance(text: str) -> str | float:
    if text in ("pixel", "bsds"):
        return text
    try:
        value = float(text)
    except ValueError:
        raise CommandError(f"--tolerance {text!r}: expected pixel, bsds or a radius in pixels") from None
    if not math.isfinite(value):
        raise CommandError(f"--tolerance {text!r}: expected pixel, bsds or a finite radius in pixels")
    if value < 0:
        raise CommandError(f"--tolerance {value}: a radius cannot be negative")
    return value


def check_out(out: Path) -> None:
    """Refuse an --out that cannot take eval.json and pr.png before the evaluation runs: it may
    take many minutes, and a crash on writing would throw the scores away."""
    check_output("--out", out, folder=True)
    for name in ("eval.json", "pr.png"):
        if (out / name).is_dir():
            raise CommandError(f"--out {out}: {out / name} {output_problem(out / name)}")


def check_backend_flags(model: Path, backend: str, precision: str) -> None:
    """Refuse flags that would be ignored: eval.json records what ran, but a user who asked for
    OpenVINO bf16 and got a checkpoint on PyTorch would compare the wrong figures."""
    if model.suffix.lower() != ".onnx" and backend != "onnxruntime":
        raise CommandError(f"--backend {backend}: runs .onnx models only; {model} is read as a checkpoint")
    if backend != "openvino" and precision != "fp32":
        raise CommandError(
            f"--precision {precision}: only with --backend openvino (ONNX Runtime and checkpoints run fp32)"
        )


def main(args: argparse.Namespace) -> int:
    from bicameral.checkpoint import CheckpointError
    from bicameral.data import DatasetError
    from bicameral.evaluation.evaluate import evaluate, plot_pr, summary_table, write_json
    from bicameral.evaluation.predictors import load_predictor
    from binpick_core.model_file import ModelFileError
    from edge.inference.base import InferenceError

    tolerance = parse_tolerance(args.tolerance)
    if args.limit is not None and args.limit < 1:  # 0 meant every frame and -1 dropped one
        raise CommandError(f"--limit {args.limit}: expected at least 1 frame")
    if Path(args.model).is_dir():  # "no such file" misled: the folder exists
        raise CommandError(
            f"--model {args.model}: is a folder, expected a model file (.onnx or a checkpoint)"
        )
    if not Path(args.model).is_file():
        raise CommandError(f"--model {args.model}: no such file")
    check_backend_flags(Path(args.model), args.backend, args.precision)
    out = Path(args.out)
    check_out(out)
    try:
        predictor = load_predictor(args.model, args.device, args.backend, args.precision)
        result = evaluate(
            predictor, args.data, tolerance, args.instances, args.limit, args.progress, args.depth_noise
        )
    except (DatasetError, CheckpointError, ModelFileError, ImportError, ValueError, InferenceError) as exc:
        raise CommandError(str(exc)) from None
    write_json(result, out / "eval.json")
    plot_pr(result, out / "pr.png")
    print(summary_table(result))
    print(f"wrote {out / 'eval.json'} and {out / 'pr.png'}")
    return 0
