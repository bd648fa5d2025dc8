"""`binpick finetune`: continue training a checkpoint on (few) real images with the first k
encoder blocks frozen (thesis Table 5.3: three frozen blocks transferred best from Mikado)."""

from __future__ import annotations

import argparse

from bicameral.commands.train import add_common_arguments, config_from_args, run
from binpick_core.errors import CommandError

FREEZE_BLOCKS = 3  # the default of `finetune` (train's own is TrainConfig's: none frozen)


def configure(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--checkpoint", required=True, help="pretrained checkpoint (a run's best.pt)")
    parser.add_argument("--freeze-blocks", type=int,
                        help=f"freeze VGG16 blocks 1..k ({FREEZE_BLOCKS}, thesis; --resume: the "
                        "run's)")  # fmt: skip
    add_common_arguments(parser)


def main(args: argparse.Namespace) -> int:
    from bicameral.checkpoint import INPUT_KIND_BY_CHANNELS, CheckpointError, read_checkpoint

    if args.resume:  # the network and the frozen blocks are the resumed run's (resume_config)
        config = config_from_args(args, init_checkpoint=args.checkpoint, freeze_blocks=args.freeze_blocks)
        return run(config)
    try:
        data = read_checkpoint(args.checkpoint)
    except CheckpointError as exc:
        raise CommandError(str(exc)) from None
    channels = data["config"]["in_channels"]
    input_kind = args.input_kind or INPUT_KIND_BY_CHANNELS[channels]
    config = config_from_args(
        args,
        input_kind=input_kind,
        variant=data["config"]["variant"],
        width=float(data["config"]["width"]),
        encoder=data["config"].get("encoder", "vgg16"),
        init_checkpoint=args.checkpoint,
        freeze_blocks=FREEZE_BLOCKS if args.freeze_blocks is None else args.freeze_blocks,
    )
    return run(config)
