"""`binpick simcell`: the simulated picking cell (run, report, sweep, gif).

binpick simcell run --family all --sequences 3 --method all [--plc] [--model PATH]
binpick simcell report            # Markdown tables (Table C.3 style) + plot from the records
binpick simcell sweep --model-mikado A.onnx --model-mikado-plus B.onnx
binpick simcell gif --cycles 6
"""

from __future__ import annotations

import argparse
import json
import math
import os
import platform
import sys
import time
from pathlib import Path
from typing import TYPE_CHECKING

from binpick_core.errors import CommandError
from edge.atomic_file import output_problem, write_atomically
from edge.machine import cpu_model_name

if TYPE_CHECKING:
    from simcell.loop import FrameSink, LoopSettings
    from simcell.pickers import Picker

DEFAULT_OUT = "out/simcell"
MIN_SIZE = 64  # px: the smallest camera image a pile is drawn in


def _add_common(p: argparse.ArgumentParser) -> None:
    p.add_argument("--out", default=DEFAULT_OUT, help=f"output folder [{DEFAULT_OUT}]")
    p.add_argument("--family", default="all", help="product family, comma-separated list or 'all' [all]")
    p.add_argument("--sequences", type=int, default=3, help="piles (sequences) per family [3]")
    p.add_argument("--seed", type=int, default=0, help="base seed of the piles [0]")
    p.add_argument("--size", type=int, default=512, help="camera image width and height, px [512]")
    p.add_argument("--instances", default="12-20", help="instances per pile, 'N' or 'MIN-MAX' [12-20]")
    p.add_argument("--preset", default="mikado+", help="Mikado preset the piles are drawn from [mikado+]")
    p.add_argument(
        "--training-textures",
        action="store_true",
        help="use the training texture pools (default: held-out prints and backgrounds)",
    )
    p.add_argument(
        "--stop-below",
        type=float,
        default=0.0,
        help="end a sequence when fewer than this share of its instances remain (0 = until empty) [0]",
    )
    p.add_argument("--cup-radius-mm", type=float, default=7.5, help="suction cup radius [7.5]")
    p.add_argument("--pick-height-mm", type=float, default=20.0, help="pick plane above the bin floor [20]")
    p.add_argument(
        "--calibration-error-mm",
        type=float,
        default=0.0,
        help="the cell's calibration off by this much at the pick plane, in one direction per pile "
        "(what a hand-eye error costs the picks; records named *_cal<D>mm) [0: exact]",
    )
    p.add_argument("--model", default=None, help="ONNX model (default: the embedded configuration's)")
    p.add_argument(
        "--config",
        default=None,
        help="appliance configuration whose [ranking]/[inference] are used [firmware_config/embedded.toml]",
    )
    p.add_argument(
        "--max-area",
        default="auto",
        help="ranking.max_area per pile: 'auto' = 1.5 x the largest product's flat image footprint "
        "(the product's area bound an integrator sets), a number (image fraction if < 1, else px), "
        "or 'config' to keep the appliance configuration's [auto]",
    )
    p.add_argument("--threads", type=int, default=0, help="ONNX Runtime threads, 0 = physical cores [0]")
    p.add_argument(
        "--depth",
        "--baseline-depth",
        dest="depth",
        choices=("stereo", "exact"),
        default="stereo",
        help="the cell's depth camera, for every method that uses depth (the depth cue, the depth "
        "baselines): a stereo camera's (noise, shadow holes, dropouts; mikado.depth_noise) or the "
        "simulator's exact map [stereo]",
    )
    p.add_argument(
        "--tta-views",
        type=int,
        choices=(1, 2, 4),
        default=None,
        help="ours: average the maps over 1, 2 or 4 flipped views [the configuration's inference.tta_views]",
    )
    p.add_argument("--plc", action="store_true", help="ask for each grasp over Modbus TCP (127.0.0.1)")
    p.add_argument(
        "--bin",
        action="store_true",
        help="ours: the appliance models the bin ([bin], edge.bin_model): commissioned on each pile's "
        "empty bin, no floor picks, clear of the walls, fill level and bin_empty recorded",
    )
    p.add_argument(
        "--bin-floor-tolerance-mm",
        type=float,
        default=None,
        help="with --bin: [bin] floor_tolerance_mm (sachets are a few mm thick) [the configuration's]",
    )
    p.add_argument(
        "--suction",
        choices=("config", "on", "off"),
        default="config",
        help="ours and oracle: the seal check ([suction], edge.ranking.suction: the grasp where the "
        "cup's disc lies flat on one product, from the depth camera) on, off, or as the "
        "configuration says; records of 'off' are named *_nofit [config]",
    )
    p.add_argument(
        "--no-pick-feedback",
        action="store_true",
        help="the robot does not report pick outcomes (every method repeats a failed grasp on an "
        "unchanged pile; the thesis's loop) [reports, as the configuration's [pick_feedback] sets]",
    )


def configure(parser: argparse.ArgumentParser) -> None:
    sub = parser.add_subparsers(dest="action", metavar="ACTION", required=True)
    run = sub.add_parser("run", help="run picking sequences and write attempt records")
    _add_common(run)
    run.add_argument(
        "--method",
        default="all",
        help="ours, ours_cue (+ depth cue), cue (depth cue only), oracle, planar, highest, random, "
        "a list or all [all]",
    )
    report = sub.add_parser("report", help="Markdown tables per family and a plot from the records")
    report.add_argument("--out", default=DEFAULT_OUT, help=f"folder of the records [{DEFAULT_OUT}]")
    report.add_argument(
        "--robot-motion-s", type=float, default=3.0, help="robot motion per cycle, for picks/min [3.0]"
    )
    report.add_argument(
        "--add",
        action="append",
        default=[],
        metavar="DIR",
        help="pool the records of another run folder too (repeatable: other seeds, other machines); "
        "the report is written to --out",
    )
    sweep = sub.add_parser("sweep", help="success rate vs global image luminance for two models")
    _add_common(sweep)
    sweep.add_argument("--model-mikado", default=None, help="model trained on the mikado preset")
    sweep.add_argument(
        "--model-mikado-plus", default=None, help="model trained on the mikado+ preset (give one or both)"
    )
    sweep.add_argument("--gains", default="0.3,0.5,0.75,1.0,1.4,2.0", help="light intensity factors")
    gif = sub.add_parser("gif", help="an animated GIF of a few picking cycles")
    _add_common(gif)
    gif.add_argument("--method", default="ours", help="ours, oracle, planar, highest or random [ours]")
    gif.add_argument("--cycles", type=int, default=8, help="attempts to film [8]")


def _families(text: str) -> list[str]:
    from mikado.families import FAMILIES

    if text == "all":
        return list(FAMILIES)
    names = [f.strip() for f in text.split(",") if f.strip()]
    bad = [f for f in names if f not in FAMILIES]
    if bad or not names:
        raise CommandError(f"--family {text!r}: expected 'all' or some of {', '.join(FAMILIES)}")
    return names


def _methods(text: str, allow_all: bool = True) -> list[str]:
    from simcell.pickers import METHODS

    if text == "all" and allow_all:
        return list(METHODS)
    names = [m.strip() for m in text.split(",")]
    bad = [m for m in names if m not in METHODS]
    if bad:
        raise CommandError(
            f"--method {text!r}: expected {'all or ' if allow_all else ''}some of {', '.join(METHODS)}"
        )
    return names


def _instances(text: str) -> tuple[int, int]:
    try:
        lo, _, hi = text.partition("-")
        lo, hi = int(lo), int(hi or lo)
    except ValueError:
        raise CommandError(f"--instances {text!r}: expected N or MIN-MAX") from None
    if not 1 <= lo <= hi:
        raise CommandError(f"--instances {text!r}: expected 1 <= MIN <= MAX")
    return lo, hi


def _settings(args: argparse.Namespace, light_gain: float = 1.0) -> LoopSettings:
    from mikado.presets import PRESETS
    from simcell.gripper import SuctionCup
    from simcell.loop import LoopSettings

    if args.preset not in PRESETS:
        raise CommandError(f"--preset {args.preset!r}: expected one of {', '.join(PRESETS)}")
    if args.sequences < 1:
        raise CommandError(f"--sequences {args.sequences}: expected at least 1")
    if not 0.0 <= args.stop_below < 1.0:
        raise CommandError(f"--stop-below {args.stop_below}: expected a share in [0, 1)")
    if not 2.0 <= args.cup_radius_mm <= 40.0:
        raise CommandError(f"--cup-radius-mm {args.cup_radius_mm}: expected 2 to 40 mm")
    from mikado.generate import MAX_IMAGE_SIDE

    if not MIN_SIZE <= args.size <= MAX_IMAGE_SIDE:  # the same largest image as mikado generate
        raise CommandError(f"--size {args.size}: expected {MIN_SIZE}..{MAX_IMAGE_SIDE} px")
    if args.seed < 0:  # numpy's seeding refuses it only after run.json / records were touched
        raise CommandError(f"--seed {args.seed}: expected a number >= 0")
    if not (math.isfinite(args.pick_height_mm) and 0.0 <= args.pick_height_mm <= 1000.0):
        raise CommandError(
            f"--pick-height-mm {args.pick_height_mm}: expected 0 to 1000 mm above the bin floor"
        )
    if not (math.isfinite(args.calibration_error_mm) and 0.0 <= args.calibration_error_mm <= 100.0):
        raise CommandError(f"--calibration-error-mm {args.calibration_error_mm}: expected 0 to 100 mm")
    if args.bin_floor_tolerance_mm is not None and not 0.0 <= args.bin_floor_tolerance_mm <= 1000.0:
        raise CommandError(f"--bin-floor-tolerance-mm {args.bin_floor_tolerance_mm}: expected 0 to 1000 mm")
    if not 0 <= args.threads <= 1024:
        raise CommandError(f"--threads {args.threads}: expected 0 (physical cores) to 1024")
    _max_area(args.max_area)  # checked before any output is touched, not when the picker starts
    problem = output_problem(args.out, folder=True)
    if problem:
        raise CommandError(f"--out {args.out}: {problem}")
    return LoopSettings(
        preset=args.preset,
        width=args.size,
        height=args.size,
        instances=_instances(args.instances),
        pick_height_mm=args.pick_height_mm,
        calibration_error_mm=args.calibration_error_mm,
        held_out_textures=not args.training_textures,
        stop_below_fraction=args.stop_below,
        pick_feedback=not args.no_pick_feedback,
        cup=SuctionCup(radius_mm=args.cup_radius_mm),
        light_gain=light_gain,
    )


def _max_area(text: str) -> float | str | None:
    if text in ("auto", "config"):
        return None if text == "config" else "auto"
    try:
        value = float(text)
    except ValueError:
        raise CommandError(f"--max-area {text!r}: expected auto, config or a positive number") from None
    if not (math.isfinite(value) and value > 0):
        raise CommandError(f"--max-area {text!r}: expected auto, config or a positive number")
    return value


def _suction(text: str) -> bool | None:
    return {"config": None, "on": True, "off": False}[text]


def _picker(method: str, args: argparse.Namespace, out: Path, model: str | Path | None = None) -> Picker:
    from simcell.pickers import (
        CUE_METHODS,
        EMBEDDED_CONFIG,
        AppliancePicker,
        BaselinePicker,
        OraclePicker,
        PickerError,
        pick_feedback_memory,
    )

    try:
        config = args.config or EMBEDDED_CONFIG
        if method in ("ours", *CUE_METHODS):
            picker = AppliancePicker(
                model or args.model,
                args.size,
                args.size,
                out / "work",
                args.pick_height_mm,
                plc=args.plc,
                threads=args.threads,
                tta_views=args.tta_views,
                config=config,
                max_area=_max_area(args.max_area),
                depth=args.depth,
                depth_cue=CUE_METHODS.get(method, "off"),
                bin_model=args.bin,
                cup_radius_mm=args.cup_radius_mm,
                bin_floor_tolerance_mm=args.bin_floor_tolerance_mm,
                suction=_suction(args.suction),
            )
        elif method == "oracle":
            picker = OraclePicker(
                out / "work", args.pick_height_mm, config, _max_area(args.max_area),
                memory=pick_feedback_memory(config), depth=args.depth,
                cup_radius_mm=args.cup_radius_mm, suction=_suction(args.suction),
            )  # fmt: skip
        else:
            picker = BaselinePicker(
                method, out / "work", args.pick_height_mm, seed=args.seed,
                cup_radius_mm=args.cup_radius_mm, memory=pick_feedback_memory(config),
                depth=args.depth,
            )  # fmt: skip
    except PickerError as exc:
        raise CommandError(str(exc)) from exc
    return picker


def _machine() -> dict:
    return {
        "cpu": cpu_model_name() or platform.processor(),
        "cores": os.cpu_count(),
        "python": platform.python_version(),
    }


def _run_sequences(
    picker: Picker,
    families: list[str],
    args: argparse.Namespace,
    settings: LoopSettings,
    out_file: Path,
    extra: dict | None = None,
    sink: FrameSink | None = None,
    max_attempts: int | None = None,
) -> int:
    from simcell.loop import run_sequence, sequence_seed
    from simcell.pickers import PickerError

    count = 0
    with out_file.open("a") as fh:
        for family in families:
            for k in range(args.sequences):
                seed = sequence_seed(args.seed, family, k)
                t0 = time.perf_counter()
                try:
                    records = run_sequence(
                        picker, family, seed, settings, f"{family}-{k}", sink, max_attempts
                    )
                except PickerError as exc:
                    raise CommandError(str(exc)) from exc
                for r in records:
                    r.update(extra or {})
                    fh.write(json.dumps(r) + "\n")
                fh.flush()
                count += len(records)
                wins = sum(r["q1"] == "yes" for r in records)
                print(
                    f"{picker.name:8s} {family:14s} seq {k}: {wins}/{len(records)} picks, "
                    f"{records[0]['left_in_bin'] if records else '?'} left, {time.perf_counter() - t0:.0f} s",
                    file=sys.stderr,
                    flush=True,
                )
    return count


def _write_run_info(
    out: Path, args: argparse.Namespace, settings: LoopSettings, methods: list[str], families: list[str]
) -> None:
    from simcell.cell import HELD_OUT_TEXTURE_BASE

    info = {
        "command": " ".join(sys.argv),
        "date_utc": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "methods": methods,
        "families": families,
        "sequences": args.sequences,
        "seed": args.seed,
        "model": args.model,
        "plc": args.plc,
        "held_out": {
            "textures": not args.training_textures,
            "texture_id_offset": HELD_OUT_TEXTURE_BASE,
        },
        "settings": settings.to_dict(),
        "machine": _machine(),
    }
    write_atomically(out / "run.json", json.dumps(info, indent=2, default=str).encode())


def _run(args: argparse.Namespace) -> int:
    families, methods = _families(args.family), _methods(args.method)
    settings = _settings(args)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    for i, method in enumerate(methods):
        picker = _picker(method, args, out)
        if i == 0:  # after the first picker started: a bad model leaves the last run's run.json
            _write_run_info(out, args, settings, methods, families)
        path = out / f"records_{picker.name}.jsonl"  # e.g. planar_stereo, ours_cue_exact with --depth exact
        path.unlink(missing_ok=True)
        try:
            n = _run_sequences(picker, families, args, settings, path)
        finally:
            picker.close()
        print(f"{picker.name}: {n} attempts -> {path}", file=sys.stderr)
    print(f"records in {out}; tables with: binpick simcell report --out {out}")
    return 0


def _report(args: argparse.Namespace) -> int:
    from simcell.report import (
        bin_table,
        failure_table,
        markdown_table,
        plot_success,
        read_records,
        table_rows,
    )

    out = Path(args.out)
    if not (math.isfinite(args.robot_motion_s) and args.robot_motion_s >= 0):
        raise CommandError(f"--robot-motion-s {args.robot_motion_s}: expected seconds >= 0")
    if out.exists() and not out.is_dir():
        raise CommandError(
            f"--out {out}: not a folder (expected a run's folder, or a new one for a pooled report)"
        )
    try:
        records = read_records(out)  # none in a folder that is not there yet
        seen = {out.resolve()}
        for more in args.add:  # other runs' records pooled in (other seeds, other machines)
            if Path(more).resolve() in seen:  # the same folder twice would count its attempts twice
                continue
            seen.add(Path(more).resolve())
            found = read_records(Path(more))
            if not found:
                raise CommandError(f"--add {more}: no records_*.jsonl found")
            records += found
    except ValueError as exc:
        raise CommandError(str(exc)) from exc
    if not records:
        raise CommandError(f"{out}: no records_*.jsonl found; run `binpick simcell run --out {out}` first")
    rows = table_rows(records, args.robot_motion_s)
    info_path = out / "run.json"
    info = json.loads(info_path.read_text()) if info_path.is_file() else {}
    text = [
        "# Simulated bin-picking cell",
        "",
        f"Run: `{info.get('command', '?')}` on {info.get('machine', {}).get('cpu', '?')} "
        f"({info.get('machine', {}).get('cores', '?')} cores), {info.get('date_utc', '?')}.",
        f"Textures held out from training: {info.get('held_out', {}).get('textures', '?')}. "
        f"PPM = successful picks per minute with {args.robot_motion_s:g} s of robot motion per cycle "
        "plus the measured vision time. FF (not in the thesis) = share of failures whose cup landed on the "
        "bin floor.",
        "",
        markdown_table(rows),
        "",
        "Floor picks and wall collisions (cup disc across a wall's inner face) per attempt; with "
        "`--bin`, the appliance's fill level against the simulator's label image and its bin_empty "
        "timing (docs/bin.md).",
        "",
        bin_table(records),
        "",
        'Failed attempts by the first stage that went wrong (docs/simcell.md "Why attempts fail"): the '
        "appliance gave no grasp; the cup leaked where it came down (the grasp point's fault); it "
        "sealed there and leaked after the press (the product moved); the seal was lost in the lift; "
        "the product was carried but not extracted; more than one product came out.",
        "",
        failure_table(records),
        "",
        "![success](report.png)",
        "",
    ]
    out.mkdir(parents=True, exist_ok=True)  # a pooled report of --add runs may go to a new folder
    plot_success(rows, out / "report.png")
    (out / "report.md").write_text("\n".join(text))
    print("\n".join(text))
    print(f"written {out / 'report.md'} and {out / 'report.png'}", file=sys.stderr)
    return 0


def _sweep(args: argparse.Namespace) -> int:
    from simcell.report import plot_sweep, sweep_points, sweep_table

    families = _families(args.family)
    try:
        gains = [float(g) for g in args.gains.split(",")]
    except ValueError:
        raise CommandError(f"--gains {args.gains!r}: expected comma-separated numbers") from None
    if not all(math.isfinite(g) and g > 0 for g in gains):
        raise CommandError(f"--gains {args.gains!r}: expected positive factors")
    models = [(k, m) for k, m in (("mikado", args.model_mikado), ("mikado+", args.model_mikado_plus)) if m]
    if not models:
        raise CommandError("sweep: give --model-mikado, --model-mikado-plus or both")
    _settings(args)  # every argument checked before anything is written
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    # Records go to a partial file that replaces the last sweep's only once this one is complete:
    # a bad model or an interrupted sweep leaves the previous results as they were.
    path = out / "sweep_records.jsonl"
    partial = out / "sweep_records.jsonl.partial"
    partial.unlink(missing_ok=True)
    for label, model in models:
        picker = _picker("ours", args, out, model=model)
        try:
            for gain in gains:
                settings = _settings(args, light_gain=gain)
                _run_sequences(
                    picker, families, args, settings, partial, {"model_label": label, "light_gain": gain}
                )
        finally:
            picker.close()
    os.replace(partial, path)
    from simcell.report import read_records

    points = sweep_points(read_records(out, "sweep_records.jsonl"))
    plot_sweep(points, out / "sweep.png")
    text = "# Lighting sweep (Figure 5.18)\n\n" + sweep_table(points) + "\n\n![sweep](sweep.png)\n"
    write_atomically(out / "sweep.md", text.encode())
    print(text)
    return 0


def _gif(args: argparse.Namespace) -> int:
    from simcell.gif import CycleFilm

    families = _families(args.family)
    (method,) = _methods(args.method, allow_all=False)[:1]
    if args.cycles < 1:
        raise CommandError(f"--cycles {args.cycles}: expected at least 1")
    settings = _settings(args)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    film = CycleFilm((args.size, args.size))
    records = out / f"gif_records_{method}.jsonl"
    picker = _picker(method, args, out)
    records.unlink(missing_ok=True)  # only once the picker started: a bad model keeps the last film's
    args.sequences = 1
    try:
        for family in families:
            left = args.cycles - len(film.frames)
            if left <= 0:
                break
            _run_sequences(picker, [family], args, settings, records, sink=film.add, max_attempts=left)
    finally:
        picker.close()
    path = film.save(out / f"cycles_{method}.gif")
    print(f"written {path} ({len(film.frames)} cycles; records in {records})")
    return 0


def main(args: argparse.Namespace) -> int:
    return {"run": _run, "report": _report, "sweep": _sweep, "gif": _gif}[args.action](args)
