"""`binpick train`: train a bicameral network on Mikado scenes (thesis defaults).

Run it directly for one CPU or GPU, or through torchrun for several GPUs or machines:
`torchrun --nproc_per_node 8 -m edge train ...` (the same arguments; rank 0 logs and saves).
"""

from __future__ import annotations

import argparse
import json
import os
from typing import TYPE_CHECKING

from binpick_core.errors import CommandError

if TYPE_CHECKING:
    from bicameral.train import TrainConfig


def add_common_arguments(parser: argparse.ArgumentParser) -> None:
    """Arguments shared by `train` and `finetune`."""
    parser.add_argument("--data", required=True, help="Mikado dataset folder (binpick mikado generate)")
    parser.add_argument("--out", required=True, help="run folder: checkpoints, log.csv, tensorboard/")
    parser.add_argument("--val-data", help="validation dataset (default: hold out --val-fraction of --data)")
    parser.add_argument("--val-fraction", type=float, default=0.05, help="held-out share of --data (0.05)")
    parser.add_argument("--val-count", type=int, help="held-out scenes of --data (overrides --val-fraction)")
    parser.add_argument("--input", dest="input_kind", choices=["rgb", "depth", "rgbd"], default=None,
                        help="input modality (train default rgb; finetune: the checkpoint's)")  # fmt: skip
    parser.add_argument("--depth-noise", action="store_true",
                        help="stereo-like depth noise and holes (thesis appendix C.1.2)")  # fmt: skip
    parser.add_argument("--depth-reference", choices=["frame_median", "camera"], default="frame_median",
                        help="depth inputs: metres behind the frame's median depth (frame_median, any camera "
                        "height) or metres from the camera (camera)")  # fmt: skip
    parser.add_argument("--no-augment", dest="augment", action="store_false",
                        help="no geometric or dynamic augmentation")  # fmt: skip
    parser.add_argument("--crop", type=int, default=256, help="random crop size (256, thesis)")
    parser.add_argument("--batch-size", type=int, default=8, help="crops per batch and process (8, thesis)")
    parser.add_argument("--crops-per-scene", type=int, default=1,
                        help="crops per decoded scene (1; raise it if loading limits it/s)")  # fmt: skip
    parser.add_argument("--lr", type=float, default=1e-4, help="fixed Adam learning rate (1e-4, thesis)")
    parser.add_argument("--weight-decay", type=float, default=1e-4, help="L2 weight decay (1e-4, thesis)")
    parser.add_argument("--epochs", type=int, help="stop after this many epochs")
    parser.add_argument("--iterations", type=int, help="stop after this many optimizer steps")
    parser.add_argument("--time-budget", dest="time_budget_s", type=float, metavar="SECONDS",
                        help="stop cleanly after this many seconds of wall clock, "
                        "counted from the trainer's start (after the imports)")  # fmt: skip
    parser.add_argument("--val-every", type=int, help="validate every K iterations (default: each epoch)")
    parser.add_argument("--workers", type=int, default=4, help="DataLoader worker processes per GPU (4)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--amp", choices=["auto", "bf16", "fp16", "off"], default="auto",
                        help="mixed precision on GPU (auto: bf16 where supported, else fp16)")  # fmt: skip
    parser.add_argument("--device", default="auto", help="auto, cpu, cuda or cuda:N")
    parser.add_argument("--resume", help="continue from a run's last.pt (optimizer state and counters)")
    parser.add_argument("--no-progress", dest="progress", action="store_false", help="no progress bar")


def configure(parser: argparse.ArgumentParser) -> None:
    add_common_arguments(parser)
    parser.add_argument("--variant", default="bicameral", help="network variant (bicameral, cascaded, ...)")
    parser.add_argument("--width", default="F25", help="F100, F75, F50, F25 or a fraction (F25)")
    parser.add_argument("--encoder", default="vgg16", help="vgg16 or densenet121")
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
    from bicameral.train import TrainConfig

    fields = {
        "data": args.data,
        "out_dir": args.out,
        "val_data": args.val_data,
        "val_fraction": args.val_fraction,
        "val_count": args.val_count,
        "input_kind": args.input_kind or "rgb",
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
    }
    fields.update(overrides)
    return TrainConfig(**fields)


def run(config: TrainConfig) -> int:
    from bicameral.checkpoint import CheckpointError
    from bicameral.data import DatasetError
    from bicameral.train import TrainingError, train

    try:
        summary = train(config)
    except (TrainingError, DatasetError, CheckpointError) as exc:
        raise CommandError(str(exc)) from None
    if int(os.environ.get("RANK", "0")) == 0:  # one summary per job, not per process
        print(json.dumps(summary, indent=2))
    return 0


def main(args: argparse.Namespace) -> int:
    config = config_from_args(
        args,
        variant=args.variant,
        width=parse_width(args.width),
        encoder=args.encoder,
        encoder_weights=args.encoder_weights,
    )
    return run(config)
