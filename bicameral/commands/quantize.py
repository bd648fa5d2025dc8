"""`binpick quantize`: an fp32 model file -> an int8 model file for the openvino backend (NNCF)."""

from __future__ import annotations

import argparse
import sys

from binpick_core.errors import CommandError
from edge.atomic_file import check_output


def configure(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--model", required=True, help="fp32 model file written by binpick export")
    parser.add_argument(
        "--calibration", required=True, help="Mikado dataset folder (binpick mikado generate) to calibrate on"
    )
    parser.add_argument("--out", required=True, help="int8 model file to write (atomically)")
    parser.add_argument("--frames", type=int, default=32, help="calibration frames (default 32)")
    parser.add_argument(
        "--size",
        default=None,
        help="HEIGHTxWIDTH the appliance will run a dynamic model at (default 512x512)",
    )
    parser.add_argument(
        "--depth-noise",
        action=argparse.BooleanOptionalAction,
        default=None,
        help="depth models: stereo-like depth noise on the calibration frames, as train/eval "
        "--depth-noise (default: as the model was trained, its provenance's depth_noise)",
    )


def parse_size(text: str | None) -> tuple[int, int] | None:
    if text is None:
        return None
    try:
        height, width = (int(v) for v in text.lower().split("x"))
    except ValueError:
        raise CommandError(f"--size {text!r}: expected HEIGHTxWIDTH, e.g. 512x512") from None
    if height < 16 or width < 16:
        raise CommandError(f"--size {text!r}: at least 16x16")
    return height, width


def main(args: argparse.Namespace) -> int:
    try:
        import nncf  # noqa: F401
    except ImportError:
        raise CommandError("binpick quantize needs NNCF: pip install '.[x86]'") from None
    from bicameral.quantize import quantize_int8
    from binpick_core.model_file import ModelFileError

    if args.frames < 1:
        raise CommandError(f"--frames {args.frames}: expected at least 1")
    check_output("--out", args.out, inputs={"--model": args.model})
    try:
        report = quantize_int8(
            args.model, args.calibration, args.out, args.frames, parse_size(args.size), args.depth_noise
        )
    except (ModelFileError, ValueError) as exc:
        raise CommandError(str(exc)) from None
    h, w = report.size
    if report.frames < args.frames:
        print(
            f"--frames {args.frames}: {args.calibration} holds {report.frames} scene(s); calibrated on those",
            file=sys.stderr,
        )
    print(
        f"wrote {report.path} (int8, {report.quantized_nodes} quantised tensors, "
        f"{report.bytes / 1e6:.1f} MB; "
        f"calibrated on {report.frames} frames at {h}x{w}"
        + (f", {report.depth} depth" if report.depth else "")
        + f"; int8 vs fp32 max |diff| {report.max_abs_diff:.3f} "
        "on the first frame)"
    )
    return 0
