"""`binpick export`: a training checkpoint -> the appliance's ONNX model file."""

from __future__ import annotations

import argparse
from typing import TYPE_CHECKING

from binpick_core.errors import CommandError
from edge.atomic_file import check_output

if TYPE_CHECKING:
    from bicameral.export import ExportReport


def configure(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--checkpoint",
        required=True,
        help="checkpoint written by binpick train, or an exported .onnx to re-export (denormal "
        "weights flushed, metadata kept; size options do not apply)",
    )
    parser.add_argument("--onnx", required=True, help="output model file (written atomically)")
    size = parser.add_mutually_exclusive_group()
    size.add_argument(
        "--dynamic", action="store_true", help="dynamic H/W (multiples of 16; the appliance pads)"
    )
    parser.add_argument("--height", type=int, help="static input height (default 512)")
    parser.add_argument("--width", type=int, help="static input width (default 512)")
    parser.add_argument(
        "--fp16", action="store_true", help="fp16 weights and compute inside; I/O stays float32"
    )
    parser.add_argument("--model-id", type=int, default=0, help="0..65535, shown in the PLC registers")
    parser.add_argument("--no-verify", action="store_true", help="skip the ONNX Runtime vs PyTorch check")


def main(args: argparse.Namespace) -> int:
    from bicameral.checkpoint import CheckpointError
    from bicameral.export import export_checkpoint, reexport_onnx
    from binpick_core.model_file import ModelFileError

    # Re-exporting an .onnx in place is allowed: the file stays the same model, flushed (a model
    # whose checkpoint is gone); a checkpoint overwritten by its export would be lost.
    reexport = args.checkpoint.lower().endswith(".onnx")
    check_output("--onnx", args.onnx, inputs={} if reexport else {"--checkpoint": args.checkpoint})
    if reexport:
        if args.dynamic or args.height is not None or args.width is not None or args.fp16:
            raise CommandError(
                "re-exporting an .onnx keeps its size and precision: drop --dynamic/--height/--width/--fp16"
            )
        try:
            report = reexport_onnx(args.checkpoint, args.onnx, verify=not args.no_verify)
        except (ModelFileError, RuntimeError) as exc:
            raise CommandError(str(exc)) from None
        check = "not verified"
        if report.max_abs_diff is not None:
            check = f"flushed vs original max |diff| {report.max_abs_diff:.2e}"
        print(f"wrote {report.path} (re-exported {args.checkpoint}, {check})")
        print(denormal_line(report))
        return 0

    if args.dynamic and (args.height is not None or args.width is not None):
        raise CommandError("--dynamic excludes --height/--width")
    height = width = None
    if not args.dynamic:
        height = 512 if args.height is None else args.height
        width = 512 if args.width is None else args.width
    try:
        report = export_checkpoint(
            args.checkpoint,
            args.onnx,
            height=height,
            width=width,
            fp16=args.fp16,
            model_id=args.model_id,
            verify=not args.no_verify,
        )
    except (CheckpointError, ValueError, RuntimeError) as exc:
        raise CommandError(str(exc)) from None
    size = "dynamic HxW" if args.dynamic else f"{height}x{width}"
    check = (
        "not verified"
        if report.max_abs_diff is None
        else f"ORT vs PyTorch max |diff| {report.max_abs_diff:.2e}"
        + (f", {report.near_ties} max-pooling near-tie(s) resolved as ORT did" if report.near_ties else "")
    )
    print(f"wrote {report.path} ({size}, {report.nodes} nodes, {check})")
    print(denormal_line(report))
    return 0


def denormal_line(report: ExportReport) -> str:
    """What export says about denormal weights (recorded as binpick.denormals_flushed)."""
    share = 100 * report.denormals_flushed / max(report.float_weights, 1)
    return (
        f"denormal weights flushed to zero: {report.denormals_flushed} of {report.float_weights} "
        f"float32 weights ({share:.2f} %); the max |diff| above includes their effect"
    )
