"""`binpick finetune`: continue training a checkpoint on (few) real images with the first k
encoder blocks frozen (thesis Table 5.3: three frozen blocks transferred best from Mikado)."""

from __future__ import annotations

import argparse

from bicameral.commands.train import add_common_arguments, config_from_args, run
from binpick_core.errors import CommandError

FREEZE_BLOCKS = 3  # the default of `finetune` (train's own is TrainConfig's: none frozen)


def configure(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--checkpoint",
                        help="pretrained checkpoint (a run's best.pt); required, except with --resume "
                        "(the run's own)")  # fmt: skip
    parser.add_argument("--freeze-blocks", type=int,
                        help=f"freeze VGG16 blocks 1..k ({FREEZE_BLOCKS}, thesis; --resume: the "
                        "run's)")  # fmt: skip
    add_common_arguments(parser)


def main(args: argparse.Namespace) -> int:
    from bicameral.checkpoint import CheckpointError, read_checkpoint
    from bicameral.train import network_settings

    if args.resume:  # the network and the frozen blocks are the resumed run's (resume_config)
        check_resumed_start(args.checkpoint, args.resume)
        config = config_from_args(args, freeze_blocks=args.freeze_blocks)
        return run(config)
    if not args.checkpoint:
        raise CommandError(
            "--checkpoint: required (the pretrained checkpoint to fine-tune), except with --resume"
        )
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


def check_resumed_start(checkpoint: str | None, resume: str) -> None:
    """A resumed fine-tuning continues the weights in --resume, not --checkpoint's: a --checkpoint
    other than the one the run started from was used anyway and failed naming a flag never given
    ("--input rgb has 3 ..."). Leaving it out, or giving the run's own, is accepted."""
    from bicameral.checkpoint import CheckpointError, read_checkpoint
    from edge.atomic_file import same_file

    if not checkpoint:
        return
    try:
        started = read_checkpoint(resume).get("provenance", {}).get("finetuned_from")
    except CheckpointError as exc:
        raise CommandError(str(exc)) from None
    if started is None or not same_file(checkpoint, started):
        raise CommandError(
            f"--checkpoint {checkpoint}: not used with --resume {resume}, which continues a run "
            f"fine-tuned from {started or 'no checkpoint'}; leave --checkpoint out to resume"
        )
