"""`binpick export`: a training checkpoint -> the appliance's ONNX model file."""

from __future__ import annotations

import argparse

from binpick_core.errors import CommandError


def configure(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--checkpoint", required=True, help="checkpoint written by binpick train")
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
    from bicameral.export import export_checkpoint

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
    )
    print(f"wrote {report.path} ({size}, {report.nodes} nodes, {check})")
    return 0
