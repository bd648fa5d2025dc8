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
    from bicameral.checkpoint import CheckpointError, read_checkpoint
    from bicameral.train import network_settings

    if args.resume:  # the network and the frozen blocks are the resumed run's (resume_config)
        config = config_from_args(args, init_checkpoint=args.checkpoint, freeze_blocks=args.freeze_blocks)
        return run(config)
    try:
        data = read_checkpoint(args.checkpoint)
    except CheckpointError as exc:
        raise CommandError(str(exc)) from None
    network = network_settings(data)
    if args.input_kind:  # an RGB network widened for depth (bicameral.train.widen_to_depth)
        network["input_kind"] = args.input_kind
    config = config_from_args(
        args,
        **network,
        init_checkpoint=args.checkpoint,
        freeze_blocks=FREEZE_BLOCKS if args.freeze_blocks is None else args.freeze_blocks,
    )
    return run(config)
