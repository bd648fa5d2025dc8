"""`binpick train`: train a bicameral network on Mikado scenes (thesis defaults).

Run it directly for one CPU or GPU, or through torchrun for several GPUs or machines:
`torchrun --nproc_per_node 8 -m edge train ...` (the same arguments; rank 0 logs and saves).
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
import sys
from typing import TYPE_CHECKING

from binpick_core.errors import CommandError

if TYPE_CHECKING:
    from bicameral.train import TrainConfig


def default(name: str) -> object:
    """TrainConfig's default for `name`: the one place the defaults are defined. The parser's own
    defaults are None ("not given"), so a resumed run can tell a flag given from one left out."""
    from bicameral.train import TrainConfig

    return next(f.default for f in dataclasses.fields(TrainConfig) if f.name == name)


def add_common_arguments(parser: argparse.ArgumentParser) -> None:
    """Arguments shared by `train` and `finetune`. Run settings left out take TrainConfig's defaults,
    or with --resume the checkpoint's (bicameral.train.resume_config)."""
    d = default
    parser.add_argument("--data", required=True, help="Mikado dataset folder (binpick mikado generate)")
    parser.add_argument("--out", required=True, help="run folder: checkpoints, log.csv, tensorboard/")
    parser.add_argument("--val-data", help="validation dataset (default: hold out --val-fraction of --data)")
    parser.add_argument("--val-fraction", type=float, help=f"held-out share of --data ({d('val_fraction')})")
    parser.add_argument("--val-count", type=int, help="held-out scenes of --data (overrides --val-fraction)")
    parser.add_argument("--input", dest="input_kind", choices=["rgb", "depth", "rgbd"],
                        help=f"input modality (train default {d('input_kind')}; finetune: the "
                        "checkpoint's)")  # fmt: skip
    parser.add_argument("--depth-noise", action="store_true", default=None,
                        help="stereo-like depth noise and holes (thesis appendix C.1.2)")  # fmt: skip
    parser.add_argument("--depth-reference", choices=["frame_median", "camera"],
                        help="depth inputs: metres behind the frame's median depth (frame_median, any camera "
                        f"height) or metres from the camera (camera); default "
                        f"{d('depth_reference')}")  # fmt: skip
    parser.add_argument("--no-augment", dest="augment", action="store_false", default=None,
                        help="no geometric or dynamic augmentation")  # fmt: skip
    parser.add_argument("--crop", type=int, help=f"random crop size ({d('crop')}, thesis)")
    parser.add_argument("--batch-size", type=int,
                        help=f"crops per batch and process ({d('batch_size')}, thesis)")  # fmt: skip
    parser.add_argument("--crops-per-scene", type=int,
                        help=f"crops per decoded scene ({d('crops_per_scene')}; raise it if loading "
                        "limits it/s)")  # fmt: skip
    parser.add_argument("--lr", type=float, help=f"fixed Adam learning rate ({d('lr')}, thesis)")
    parser.add_argument("--weight-decay", type=float, help=f"L2 weight decay ({d('weight_decay')}, thesis)")
    parser.add_argument("--epochs", type=int, help="stop after this many epochs (a resumed run: in all)")
    parser.add_argument("--iterations", type=int,
                        help="stop after this many optimizer steps (a resumed run: in all)")  # fmt: skip
    parser.add_argument("--time-budget", dest="time_budget_s", type=float, metavar="SECONDS",
                        help="stop cleanly after this many seconds of wall clock, "
                        "counted from the trainer's start (after the imports), this command")  # fmt: skip
    parser.add_argument("--val-every", type=int, help="validate every K iterations (default: each epoch)")
    parser.add_argument("--workers", type=int,
                        help="DataLoader worker processes per GPU (4, or the CPU cores this process "
                        "may use where fewer)")  # fmt: skip
    parser.add_argument("--seed", type=int, help=f"random seed ({d('seed')})")
    parser.add_argument("--amp", choices=["auto", "bf16", "fp16", "off"],
                        help="mixed precision on GPU (auto: bf16 where supported, else fp16; "
                        f"default {d('amp')})")  # fmt: skip
    parser.add_argument("--device", help=f"auto, cpu, cuda or cuda:N ({d('device')})")
    parser.add_argument("--resume",
                        help="continue from a run's last.pt (optimizer state, counters and the run's "
                        "settings; a flag given overrides a run setting, not the network)")  # fmt: skip
    parser.add_argument("--no-progress", dest="progress", action="store_false", default=None,
                        help="no progress bar")  # fmt: skip


def configure(parser: argparse.ArgumentParser) -> None:
    add_common_arguments(parser)
    parser.add_argument("--variant", help=f"network variant ({default('variant')}, cascaded, ...)")
    from bicameral.networks import WIDTHS

    label = {value: name for name, value in WIDTHS.items()}.get(default("width"), default("width"))
    parser.add_argument("--width", help=f"F100, F75, F50, F25 or a fraction ({label})")
    parser.add_argument("--encoder", help=f"{default('encoder')} or densenet121")
    parser.add_argument("--encoder-weights", help="torchvision VGG16 state dict (.pth)")


def parse_width(text: str) -> float:
    from bicameral.networks import WIDTHS

    if text.upper() in WIDTHS:
        return WIDTHS[text.upper()]
    try:
        return float(text)
    except ValueError:
        raise CommandError(f"--width {text!r}: expected one of {sorted(WIDTHS)} or a fraction") from None


def config_from_args(args: argparse.Namespace, **overrides) -> TrainConfig:
    """The run's TrainConfig from the flags given (None: left out) and `overrides`; with --resume,
    what is left out comes from the checkpoint (bicameral.train.resume_config, which names the
    overridden settings on stderr)."""
    from bicameral.checkpoint import CheckpointError
    from bicameral.train import TrainConfig, TrainingError, resume_config

    fields = {
        "data": args.data,
        "out_dir": args.out,
        "val_data": args.val_data,
        "val_fraction": args.val_fraction,
        "val_count": args.val_count,
        "input_kind": args.input_kind,
        "depth_noise": args.depth_noise,
        "depth_reference": args.depth_reference,
        "augment": args.augment,
        "crop": args.crop,
        "batch_size": args.batch_size,
        "crops_per_scene": args.crops_per_scene,
        "lr": args.lr,
        "weight_decay": args.weight_decay,
        "epochs": args.epochs,
        "iterations": args.iterations,
        "time_budget_s": args.time_budget_s,
        "val_every": args.val_every,
        "workers": args.workers,
        "seed": args.seed,
        "amp": args.amp,
        "device": args.device,
        "resume": args.resume,
        "progress": args.progress,
        **overrides,
    }
    given = {name: value for name, value in fields.items() if value is not None}
    if not given.get("resume"):
        return TrainConfig(**given)
    try:
        config, line = resume_config(given)
    except (TrainingError, CheckpointError) as exc:
        raise CommandError(str(exc)) from None
    if int(os.environ.get("RANK", "0")) == 0:
        print(line, file=sys.stderr)
    return config


def run(config: TrainConfig) -> int:
    from bicameral.checkpoint import CheckpointError
    from bicameral.data import DatasetError
    from bicameral.train import NothingToTrain, TrainingError, train

    try:
        summary = train(config)
    except NothingToTrain as exc:  # a finished run resumed again: harmless, so not an error
        if int(os.environ.get("RANK", "0")) == 0:
            print(exc, file=sys.stderr)
        return 0
    except (TrainingError, DatasetError, CheckpointError) as exc:
        raise CommandError(str(exc)) from None
    if int(os.environ.get("RANK", "0")) == 0:  # one summary per job, not per process
        print(json.dumps(summary, indent=2))
    return 0


def main(args: argparse.Namespace) -> int:
    config = config_from_args(
        args,
        variant=args.variant,
        width=parse_width(args.width) if args.width is not None else None,
        encoder=args.encoder,
        encoder_weights=args.encoder_weights,
    )
    return run(config)
