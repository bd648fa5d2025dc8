"""Training loop of thesis Section 4.1.3 / 5.2, for one CPU, one GPU or many (torchrun + DDP).

Defaults are the thesis's: Adam (β1 .9, β2 .999, ε 1e-8), fixed learning rate 1e-4, weight decay
1e-4 (L2, as Caffe applies it), batches of eight 256×256 random crops, a new random permutation
of the training images every epoch. Stopping is by epochs, iterations or a wall-clock budget
(`time_budget_s`), whichever comes first, so a fixed GPU window is used fully and ends with a
clean checkpoint.

Under `torchrun` every process trains on its share of each epoch (DistributedSampler) and
gradients are averaged by DistributedDataParallel; only rank 0 writes logs and checkpoints, and
the stop decision (budget reached on rank 0) is shared by an all-reduce so no rank is left
waiting in a collective.

The job is a `Trainer`: its setup builds data, model and optimizer once; its state is explicit
(`Counters`: iteration, epoch, best loss, checkpointed; the `TrainWindow` of losses since the
last validation); its methods are one step, validation with logging and checkpoints, the stopping
rule and the epoch loop.

Outputs in `out_dir`: `last.pt` (resumable: optimizer state, counters), `best.pt` (lowest
validation loss), `log.csv`, `tensorboard/`, `config.json`.
"""

from __future__ import annotations

import csv
import datetime as dt
import json
import logging
import math
import os
import subprocess
import sys
import time
from collections.abc import Iterator, Sequence
from contextlib import nullcontext
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import TYPE_CHECKING

import torch
import torch.distributed as torch_dist
from torch.utils.data import DataLoader, Dataset, DistributedSampler, RandomSampler, default_collate

from bicameral.checkpoint import read_checkpoint, save_checkpoint
from bicameral.data import (
    INPUT_CHANNELS,
    AugmentConfig,
    DatasetError,
    DepthNoise,
    MikadoScenes,
    depth_statistics,
    frame_size,
    list_scenes,
    preprocess_record,
    read_dataset_info,
)
from bicameral.init import initialise
from bicameral.losses import bicameral_loss
from bicameral.networks import BicameralNet, NetworkConfig, build_network
from binpick_core.model_file import DEPTH_REFERENCES
from edge.machine import cpu_model

if TYPE_CHECKING:
    from tqdm import tqdm


class TrainingError(ValueError):
    """A configuration or data problem reported to the user as one line."""


class NothingToTrain(TrainingError):
    """A resumed run already at its stopping rule: nothing trains and no file is touched (the
    command says so and exits 0, so rerunning a finished resume is harmless)."""


def default_workers() -> int:
    """DataLoader workers per process: 4, or fewer where this process may use fewer CPU cores
    (more workers than cores only compete for them; torch warns about it)."""
    try:
        cores = len(os.sched_getaffinity(0))
    except AttributeError:  # not on Linux
        cores = os.cpu_count() or 1
    return min(4, cores)


@dataclass
class TrainConfig:
    """Every knob of a run; stored as `config.json` and in the checkpoint provenance."""

    data: str
    out_dir: str
    val_data: str | None = None
    val_fraction: float = 0.05
    val_count: int | None = None  # held-out scenes; overrides val_fraction (bounds validation time)
    variant: str = "bicameral"
    width: float = 0.25
    input_kind: str = "rgb"
    encoder: str = "vgg16"
    encoder_weights: str | None = None
    crop: int = 256
    batch_size: int = 8  # crops per process; the global batch is batch_size × world size
    crops_per_scene: int = 1  # >1: several crops from each decoded scene (data-loading throughput)
    lr: float = 1e-4
    weight_decay: float = 1e-4
    betas: tuple[float, float] = (0.9, 0.999)
    eps: float = 1e-8
    epochs: int | None = None
    iterations: int | None = None
    time_budget_s: float | None = None
    val_every: int | None = None  # iterations; None = once per epoch
    workers: int = field(default_factory=default_workers)
    seed: int = 0
    amp: str = "auto"  # auto | bf16 | fp16 | off (GPU only; CPU trains in float32)
    augment: bool = True
    depth_noise: bool = False
    depth_reference: str = "frame_median"  # depth inputs: metres behind the frame's median (model_file)
    resume: str | None = None
    init_checkpoint: str | None = None  # fine-tuning starts from these weights
    freeze_blocks: int = 0
    device: str = "auto"
    progress: bool = True
    log_every: int = 10
    extra_provenance: dict = field(default_factory=dict)

    def validate(self) -> TrainConfig:
        """Reject bad knobs here, as one line naming the option: torch would otherwise fail deep
        inside setup with a traceback (or, for a NaN time budget, never stop)."""
        from bicameral.encoders import ENCODERS
        from bicameral.networks import VARIANTS

        if self.input_kind not in INPUT_CHANNELS:
            raise TrainingError(f"--input must be one of {sorted(INPUT_CHANNELS)}, got {self.input_kind!r}")
        if self.epochs is None and self.iterations is None and self.time_budget_s is None:
            raise TrainingError("give at least one of --epochs, --iterations, --time-budget")
        for name in ("epochs", "iterations", "batch_size", "crop", "val_every", "log_every"):
            value = getattr(self, name)
            if value is not None and value <= 0:
                raise TrainingError(f"--{name.replace('_', '-')} must be positive, got {value}")
        if self.time_budget_s is not None and not (
            math.isfinite(self.time_budget_s) and self.time_budget_s > 0
        ):
            raise TrainingError(f"--time-budget must be positive finite seconds, got {self.time_budget_s}")
        if self.variant not in VARIANTS:
            raise TrainingError(f"--variant must be one of {sorted(VARIANTS)}, got {self.variant!r}")
        if self.encoder not in ENCODERS:
            raise TrainingError(f"--encoder must be one of {sorted(ENCODERS)}, got {self.encoder!r}")
        if not (math.isfinite(self.width) and 0 < self.width <= 4):
            raise TrainingError(f"--width must be a fraction in (0, 4] or F100/F75/F50/F25, got {self.width}")
        if not (math.isfinite(self.lr) and self.lr > 0):
            raise TrainingError(f"--lr must be a positive finite number, got {self.lr}")
        if not (math.isfinite(self.weight_decay) and self.weight_decay >= 0):
            raise TrainingError(f"--weight-decay must be a finite number >= 0, got {self.weight_decay}")
        if self.workers < 0:
            raise TrainingError(f"--workers must be >= 0, got {self.workers}")
        if not 0 < self.val_fraction < 1:  # also false for NaN
            raise TrainingError(
                f"--val-fraction must be between 0 and 1 (exclusive), got {self.val_fraction}"
            )
        if self.val_count is not None and self.val_count < 1:
            raise TrainingError(f"--val-count must be >= 1, got {self.val_count}")
        if self.crop % 16:
            raise TrainingError(f"--crop must be a multiple of 16 (the encoder's stride), got {self.crop}")
        if self.crops_per_scene < 1 or self.batch_size % self.crops_per_scene:
            raise TrainingError(
                f"--batch-size {self.batch_size}: not a multiple of --crops-per-scene {self.crops_per_scene}"
            )
        if self.depth_noise and self.input_kind == "rgb":
            raise TrainingError(
                "--depth-noise: the network's input is rgb, which has no depth to degrade; "
                "give --input rgbd or depth, or leave --depth-noise out"
            )
        if self.depth_reference not in DEPTH_REFERENCES:
            raise TrainingError(
                f"--depth-reference must be one of {DEPTH_REFERENCES}, got {self.depth_reference!r}"
            )
        if self.amp not in ("auto", "bf16", "fp16", "off"):
            raise TrainingError(f"--amp must be auto, bf16, fp16 or off, got {self.amp!r}")
        if not 0 <= self.freeze_blocks <= 5:
            raise TrainingError(f"--freeze-blocks must be 0..5 (VGG16 blocks), got {self.freeze_blocks}")
        return self


# What `--resume` takes from the checkpoint (`resume_config`). The network: a resumed run continues
# these weights, so a command-line value that differs is refused (`freeze_blocks` fixes the
# optimizer's parameter list, `depth_reference` the input the weights learnt, `encoder_weights`
# only started the run). The run settings: kept unless given on the command line, which overrides
# them. Everything else (data, --out, the stopping rules, workers, device, progress bar) belongs to
# the session and comes from the command line.
NETWORK_SETTINGS = (
    "variant", "width", "encoder", "input_kind", "depth_reference", "encoder_weights", "freeze_blocks",
)  # fmt: skip
RUN_SETTINGS = (
    "val_data", "val_fraction", "val_count", "crop", "batch_size", "crops_per_scene", "lr",
    "weight_decay", "betas", "eps", "val_every", "seed", "amp", "augment", "depth_noise",
)  # fmt: skip
VALIDATION_SPLIT = ("val_data", "val_fraction", "val_count")  # one choice: any given replaces all three
FLAGS = {"input_kind": "--input", "augment": "--no-augment"}  # the others: the field's name
SWITCHES = ("augment", "depth_noise")  # flags without a value


def flag(name: str) -> str:
    """The command-line flag of a TrainConfig field."""
    return FLAGS.get(name, "--" + name.replace("_", "-"))


def network_settings(checkpoint: dict) -> dict:
    """The TrainConfig fields that say what a checkpoint's weights are (variant, width, encoder,
    input): what `finetune` starts from and what `--resume` may not change."""
    from bicameral.checkpoint import INPUT_KIND_BY_CHANNELS

    network = checkpoint["config"]
    return {
        "variant": network["variant"],
        "width": float(network["width"]),
        "encoder": network.get("encoder", "vgg16"),
        "input_kind": INPUT_KIND_BY_CHANNELS[network["in_channels"]],
    }


def recorded_settings(checkpoint: dict) -> dict:
    """The settings a checkpoint's run trained with. The network comes from its `config` (what the
    weights are); the rest from `extra["train_config"]`, or, in a checkpoint written before that
    was recorded, from what its provenance and optimizer state hold (crop, batch, crops per scene,
    Adam's hyperparameters, augmentation, depth noise, encoder weights, frozen blocks)."""
    recorded = dict(checkpoint.get("extra", {}).get("train_config") or _settings_from_provenance(checkpoint))
    recorded = {k: v for k, v in recorded.items() if k in NETWORK_SETTINGS + RUN_SETTINGS}
    recorded.update(network_settings(checkpoint))
    if recorded["input_kind"] != "rgb" and checkpoint["preprocess"].get("depth_reference"):
        recorded["depth_reference"] = checkpoint["preprocess"]["depth_reference"]
    if "betas" in recorded:
        recorded["betas"] = tuple(recorded["betas"])
    return recorded


def _settings_from_provenance(checkpoint: dict) -> dict:
    provenance = checkpoint["provenance"]
    settings = {}
    for name in ("crop", "crops_per_scene", "encoder_weights"):
        if name in provenance:
            settings[name] = provenance[name]
    if "batch_size" in provenance:  # the global batch: per process times the world size
        world = str(provenance.get("hardware", "1")).split(" ", 1)[0]
        settings["batch_size"] = provenance["batch_size"] // (int(world) if world.isdigit() else 1)
    if "augmentation" in provenance:
        settings["augment"] = provenance["augmentation"] is not None
    if "depth_noise" in provenance:
        settings["depth_noise"] = provenance["depth_noise"] is not None
    settings["freeze_blocks"] = provenance.get("frozen_blocks", 0)
    groups = (checkpoint.get("optimizer_state") or {}).get("param_groups") or [{}]
    for name in ("lr", "weight_decay", "betas", "eps"):
        if name in groups[0]:
            settings[name] = groups[0][name]
    return settings


def check_resumed_network(settings: dict, recorded: dict, resume: str) -> None:
    """Refuse a network setting that differs from the checkpoint's, in one line naming the flag,
    the value given and the checkpoint's."""
    for name in NETWORK_SETTINGS:
        if name in settings and name in recorded and settings[name] != recorded[name]:
            raise TrainingError(
                f"{flag(name)} {settings[name]}: --resume {resume} continues a network trained with "
                f"{flag(name)} {recorded[name]}; leave {flag(name)} out (a resumed run keeps its network) "
                "or start a new run in another --out"
            )


def resume_config(given: dict) -> tuple[TrainConfig, str]:
    """The TrainConfig of `--resume given["resume"]`, from the settings given on the command line
    (`given`: only those) and the checkpoint's recorded ones (see NETWORK_SETTINGS, RUN_SETTINGS);
    returns it with a line for the console that names what the command line overrode."""
    resume = given["resume"]
    refuse_existing_run(Path(given["out_dir"]), resume)  # its message for a folder with no last.pt
    checkpoint = read_checkpoint(resume)
    recorded = recorded_settings(checkpoint)
    check_resumed_network(given, recorded, resume)
    split_given = any(name in given for name in VALIDATION_SPLIT)
    settings, overridden = dict(given), []
    for name in NETWORK_SETTINGS + RUN_SETTINGS:
        if name in given:
            if name in recorded and given[name] != recorded[name]:
                shown = flag(name) if name in SWITCHES else f"{flag(name)} {given[name]}"
                overridden.append(f"{shown} (the checkpoint's {name} {recorded[name]})")
        elif name in recorded and not (split_given and name in VALIDATION_SPLIT):
            settings[name] = recorded[name]
    unrecorded = [flag(name) for name in RUN_SETTINGS if name not in recorded and name not in given]
    iteration = checkpoint.get("extra", {}).get("iteration", 0)
    line = f"resuming {resume} at iteration {iteration} with its recorded settings"
    if overridden:
        line += "; overridden on the command line: " + ", ".join(overridden)
    if unrecorded:
        line += f"; not recorded in this older checkpoint (defaults used): {', '.join(unrecorded)}"
    return TrainConfig(**settings).validate(), line  # refused before the line is printed


@dataclass
class Distributed:
    """This process's place in a torchrun job (world of 1 when run directly)."""

    rank: int = 0
    local_rank: int = 0
    world_size: int = 1

    @property
    def enabled(self) -> bool:
        return self.world_size > 1

    @property
    def is_main(self) -> bool:
        return self.rank == 0


def setup_distributed(device_kind: str) -> Distributed:
    """Join the torchrun process group when WORLD_SIZE > 1 (NCCL on GPUs, gloo on CPUs)."""
    world = int(os.environ.get("WORLD_SIZE", "1"))
    if world <= 1:
        return Distributed()
    if not torch_dist.is_initialized():
        torch_dist.init_process_group(backend="nccl" if device_kind == "cuda" else "gloo")
    return Distributed(
        rank=torch_dist.get_rank(),
        local_rank=int(os.environ.get("LOCAL_RANK", "0")),
        world_size=torch_dist.get_world_size(),
    )


def pick_device(requested: str, dist_info: Distributed | None = None) -> torch.device:
    if requested == "auto":
        requested = "cuda" if torch.cuda.is_available() else "cpu"
    if requested.startswith("cuda"):
        if not torch.cuda.is_available():
            raise TrainingError("--device cuda requested but no CUDA GPU is visible")
        if requested == "cuda":
            index = dist_info.local_rank if dist_info else 0
            torch.cuda.set_device(index)
            return torch.device("cuda", index)
    try:
        return torch.device(requested)
    except (RuntimeError, ValueError):  # torch's message is a traceback-length string parse error
        raise TrainingError(f"--device {requested!r}: expected auto, cpu, cuda or cuda:N") from None


def amp_dtype(device: torch.device, requested: str) -> torch.dtype | None:
    """Autocast dtype: bf16 where the GPU has it (no loss scaling needed), else fp16; CPU: none."""
    if device.type != "cuda" or requested == "off":
        return None
    if requested == "bf16" or (requested == "auto" and torch.cuda.is_bf16_supported()):
        return torch.bfloat16
    return torch.float16


def hardware_description(device: torch.device, world_size: int) -> str:
    if device.type == "cuda":
        return f"{world_size} × {torch.cuda.get_device_name(device)}"
    return f"{world_size} × CPU {cpu_model()} ({os.cpu_count()} logical cores)"


def git_commit() -> str:
    try:
        out = subprocess.run(
            ["git", "rev-parse", "HEAD"],
            cwd=Path(__file__).resolve().parent,
            capture_output=True,
            text=True,
            timeout=5,
        )
        return out.stdout.strip() or "unknown"
    except (OSError, subprocess.SubprocessError):
        return "unknown"


def freeze_encoder_blocks(model: BicameralNet, blocks: int) -> int:
    """Freeze the first `blocks` VGG16 blocks of every encoder (thesis Fig. 5.7, Table 5.3).

    A block is the run of convolutions between two poolings. Returns how many parameters froze.
    """
    if blocks == 0:
        return 0
    frozen = 0
    for encoder in model.encoder_modules():
        sizes = getattr(encoder, "block_sizes", None)
        if sizes is None or not hasattr(encoder, "convs"):
            raise TrainingError(f"--freeze-blocks needs a VGG16 encoder, not {model.config.encoder!r}")
        for conv in list(encoder.convs)[: sum(sizes[:blocks])]:
            for parameter in conv.parameters():
                parameter.requires_grad_(False)
                frozen += parameter.numel()
    return frozen


CHECKPOINTS = ("best.pt", "last.pt")


def _log_rows(log: Path) -> int:
    """Validation rows of a run's log.csv (0 for a header-only log or none)."""
    if not log.is_file():
        return 0
    with log.open(newline="") as f:
        return max(0, sum(1 for row in csv.reader(f) if row) - 1)


def _same_file(a: Path, b: Path) -> bool:
    """Whether two paths name one file (a link or another spelling of the path included)."""
    try:
        return a.samefile(b)
    except OSError:
        return a.resolve() == b.resolve()


def held_run(out_dir: Path) -> str:
    """What of a run `out_dir` holds that a new start there would overwrite or mix into: its
    checkpoints and logged validation rows ("" when none: a folder with only config.json, a
    header-only log.csv or tensorboard/ holds nothing to lose)."""
    found = [name for name in CHECKPOINTS if (out_dir / name).exists()]
    rows = _log_rows(out_dir / "log.csv")
    return ", ".join(found + ([f"log.csv with {rows} validation row(s)"] if rows else []))


def refuse_existing_run(out_dir: Path, resume: str | None) -> None:
    """A run into a folder that already holds one would overwrite its checkpoints and append to
    its log.csv, mixing two runs: only `--resume` of that folder's own last.pt may continue a run
    in place. A resume of another run's checkpoint goes into an empty or new --out (a branch of
    that run: its log.csv starts at the checkpoint's iteration), as a fresh run does.

    A folder with neither checkpoint nor a logged validation (config.json, a header-only log.csv,
    tensorboard/: a run that stopped before its first validation, e.g. on a corrupt scene) holds
    nothing to continue or lose, so a fresh run starts there; --resume is advised only where
    last.pt exists."""
    if out_dir.exists() and not out_dir.is_dir():
        raise TrainingError(f"--out {out_dir}: is a file, expected a run folder")
    held = held_run(out_dir)
    own_last = out_dir / "last.pt"
    if resume:
        if not Path(resume).exists() and out_dir.is_dir() and not own_last.exists():
            hint = ""
            if Path(resume).parent.resolve() == out_dir.resolve():
                hint = f"; {out_dir} holds no checkpoint (no validation finished): run without --resume"
            raise TrainingError(f"--resume {resume}: no such checkpoint{hint}")
        if held and not (own_last.exists() and _same_file(Path(resume), own_last)):
            advice = f"--resume {own_last} continues it" if own_last.exists() else "it has no last.pt"
            raise TrainingError(
                f"--out {out_dir}: already holds a run ({held}) and --resume {resume} is not its "
                f"last.pt ({advice}); to continue {resume}, give an empty or new --out"
            )
        return
    if own_last.exists():
        checkpoints = ", ".join(name for name in CHECKPOINTS if (out_dir / name).exists())
        raise TrainingError(
            f"--out {out_dir}: already holds a run ({checkpoints}); continue it with "
            f"--resume {own_last}, or choose another --out"
        )
    if held:
        raise TrainingError(
            f"--out {out_dir}: already holds a run ({held}) but no last.pt to resume from; "
            "choose another --out"
        )


def refuse_finished(config: TrainConfig, counters: Counters) -> None:
    """A resumed run already at --iterations or --epochs would validate and save the same weights
    again and log a row of zero training loss: say there is nothing to train instead."""
    resume = f"--resume {config.resume}: " if config.resume else ""
    if config.iterations is not None and counters.iteration >= config.iterations:
        raise NothingToTrain(
            f"{resume}already at iteration {counters.iteration} >= --iterations {config.iterations}: "
            "nothing to train (the run's files are unchanged)"
        )
    if config.epochs is not None and counters.epoch >= config.epochs:
        raise NothingToTrain(
            f"{resume}already at epoch {counters.epoch} >= --epochs {config.epochs}: "
            "nothing to train (the run's files are unchanged)"
        )


def check_crop(config: TrainConfig, scenes: Sequence[Path]) -> None:
    """Refuse a crop larger than any training frame: zero padding has no ground truth, and the
    frame's edge inside a crop is a strong image edge labelled 'no boundary' that the appliance
    never sees (the crops of --crop 1024 on 128-px scenes were 98 % padding). Every scene's
    rgb.png header is read (not its pixels: a mixed-size folder whose smaller scenes come later
    is found before the run folder is made); the message names the smallest frame."""
    sizes = {scene: frame_size(scene) for scene in scenes}
    smaller = [scene for scene, (width, height) in sizes.items() if config.crop > min(width, height)]
    if not smaller:
        return
    smallest = min(smaller, key=lambda scene: min(sizes[scene]))
    width, height = sizes[smallest]
    largest = min(width, height) // 16 * 16
    padding = 1 - min(config.crop, height) * min(config.crop, width) / config.crop**2
    raise TrainingError(
        f"--crop {config.crop}: larger than the training frame {smallest / 'rgb.png'} ({width}x{height}; "
        f"{padding:.0%} of each crop would be zero padding; {len(smaller)} of {len(sizes)} training "
        f"scenes are smaller than the crop); expected at most {largest}"
    )


def split_scenes(config: TrainConfig) -> tuple[list[Path], list[Path]]:
    """Training and validation scenes: `val_data`, or the last `val_count` (else `val_fraction`)
    scenes of `data`."""
    scenes = list_scenes(config.data)
    if config.val_data:
        if Path(config.val_data).resolve() == Path(config.data).resolve():
            logging.getLogger(__name__).warning(
                "--val-data %s is --data: validation scores the training scenes, so best.pt is the "
                "best fit to them, not the best held-out model",
                config.val_data,
            )
        return scenes, list_scenes(config.val_data)
    if len(scenes) < 2:
        raise TrainingError(f"{config.data}: {len(scenes)} scene(s); need 2+ to hold one out or --val-data")
    held_out = config.val_count or max(1, int(round(len(scenes) * config.val_fraction)))
    if held_out >= len(scenes):
        raise TrainingError(f"{config.data}: cannot hold out {held_out} of {len(scenes)} scenes to validate")
    return scenes[:-held_out], scenes[-held_out:]


class CsvLog:
    """Append-only CSV of validation points; survives resumes (header written once)."""

    FIELDS = [
        "iteration",
        "epoch",
        "train_loss",
        "train_boundary_loss",
        "train_occlusion_loss",
        "val_loss",
        "val_boundary_loss",
        "val_occlusion_loss",
        "lr",
        "elapsed_s",
        "iterations_per_s",
    ]

    def __init__(self, path: Path) -> None:
        self.path = path
        if not path.exists():
            with path.open("w", newline="") as f:
                csv.DictWriter(f, self.FIELDS).writeheader()

    def write(self, row: dict) -> None:
        with self.path.open("a", newline="") as f:
            csv.DictWriter(f, self.FIELDS).writerow({k: row.get(k, "") for k in self.FIELDS})


def _loader(
    dataset: MikadoScenes,
    batch_size: int,
    shuffle: bool,
    workers: int,
    dist_info: Distributed,
    device: torch.device,
    seed: int,
    drop_last: bool,
) -> DataLoader:
    if dist_info.enabled:
        sampler = DistributedSampler(
            dataset, dist_info.world_size, dist_info.rank, shuffle=shuffle, seed=seed, drop_last=drop_last
        )
    else:
        generator = torch.Generator().manual_seed(seed)
        sampler = RandomSampler(dataset, generator=generator) if shuffle else None
    return DataLoader(
        ReportingScenes(dataset),
        batch_size=batch_size,
        sampler=sampler,
        num_workers=workers,
        pin_memory=device.type == "cuda",
        persistent_workers=workers > 0,
        prefetch_factor=4 if workers > 0 else None,
        drop_last=drop_last,
        collate_fn=collate_or_report,
        worker_init_fn=_single_threaded_worker if workers > 0 else None,
        # Workers start from a clean server process, not forked from this one: a fork copies
        # OpenCV's thread pool in whatever state its threads left it, and a worker's first
        # cv2.setNumThreads then waited forever on a condition variable another thread held (seen
        # in CI after the test process had used OpenCV's pool; a training process that decoded or
        # resized before the loader started could hang the same way).
        multiprocessing_context="forkserver" if workers > 0 else None,
    )


@dataclass(frozen=True)
class LoadFailure:
    """A scene the loader could not read, carried back from a worker as data. Raised there, a
    DatasetError came back re-raised by torch with the worker's traceback folded into its
    message ("Caught DatasetError in DataLoader worker process 1. Original Traceback ..."), and
    that message is what the command prints; `batches` raises it again here with the message only."""

    message: str


class ReportingScenes(Dataset):
    """A dataset whose unreadable scene becomes a `LoadFailure` item instead of an exception."""

    def __init__(self, scenes: Dataset) -> None:
        self.scenes = scenes

    def __len__(self) -> int:
        return len(self.scenes)

    def __getitem__(self, index: int) -> object:
        try:
            return self.scenes[index]
        except DatasetError as exc:
            return LoadFailure(str(exc))


def collate_or_report(items: list) -> object:
    """The batch of `items`, or the first `LoadFailure` among them."""
    failure = next((item for item in items if isinstance(item, LoadFailure)), None)
    return failure if failure is not None else default_collate(items)


def batches(loader: DataLoader) -> Iterator:
    """The loader's batches; a `LoadFailure` is raised as the one-line DatasetError it was."""
    for batch in loader:
        if isinstance(batch, LoadFailure):
            raise DatasetError(batch.message)
        yield batch


def _single_threaded_worker(_: int) -> None:
    """Workers already run in parallel: OpenCV's and torch's own thread pools would oversubscribe."""
    import cv2

    cv2.setNumThreads(1)
    torch.set_num_threads(1)


def _to_device(
    batch: Sequence[torch.Tensor], device: torch.device, channels_last: bool
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    # [B, K, C, H, W] from K crops per scene -> [B*K, C, H, W]
    image, boundaries, occlusions = (t.flatten(0, 1) if t.dim() == 5 else t for t in batch)
    image, boundaries, occlusions = (t.to(device, non_blocking=True) for t in (image, boundaries, occlusions))
    if channels_last:
        image = image.contiguous(memory_format=torch.channels_last)
    return image, boundaries, occlusions


@torch.no_grad()
def validation_loss(
    model: torch.nn.Module,
    loader: DataLoader,
    device: torch.device,
    autocast_dtype: torch.dtype | None,
    channels_last: bool,
    dist_info: Distributed,
) -> tuple[float, ...]:
    """Mean (total, boundary, occlusion) loss over the validation frames, across all ranks."""
    model.eval()
    sums = torch.zeros(4, dtype=torch.float64, device=device)
    for batch in batches(loader):
        image, boundaries, occlusions = _to_device(batch, device, channels_last)
        with _autocast(device, autocast_dtype):
            b_logits, o_logits = model(image)
        total, lb, lo = bicameral_loss(b_logits.float(), o_logits.float(), boundaries, occlusions)
        n = image.shape[0]
        sums[:3] += torch.stack((total, lb, lo)).double() * n  # on the device: no host sync per batch
        sums[3] += n
    if dist_info.enabled:
        torch_dist.all_reduce(sums)
    model.train()
    count = max(sums[3].item(), 1.0)
    return sums[0].item() / count, sums[1].item() / count, sums[2].item() / count


def _autocast(device: torch.device, dtype: torch.dtype | None) -> torch.autocast | nullcontext[None]:
    return torch.autocast(device_type=device.type, dtype=dtype) if dtype is not None else nullcontext()


def widen_to_depth(state_dict: dict[str, torch.Tensor], model: BicameralNet) -> dict[str, torch.Tensor]:
    """An RGB checkpoint's weights for the same network with RGB-D input.

    Only each encoder's first convolution changes shape (3 -> 4 input channels). Its RGB kernels
    are kept and the depth kernels start at zero, so the widened network computes exactly what
    the RGB model did until training teaches it to use depth: an RGB-D model warm-starts from
    everything the RGB model learnt instead of from scratch (appendix C.1.2 trains RGB-D anew;
    a lent GPU's few minutes would not get that far).
    """
    own = model.state_dict()
    widened = dict(state_dict)
    for key, value in state_dict.items():
        target = own.get(key)
        if target is None or target.shape == value.shape:
            continue
        rgb_to_rgbd = value.dim() == 4 and (value.shape[1], target.shape[1]) == (3, 4)
        if rgb_to_rgbd and value.shape[0] == target.shape[0]:
            widened[key] = torch.cat([value, torch.zeros_like(value[:, :1])], dim=1)
        else:
            shapes = f"checkpoint {tuple(value.shape)}, network {tuple(target.shape)}"
            raise TrainingError(f"cannot widen {key}: {shapes}")
    return widened


def build_model(config: TrainConfig, init_data: dict | None = None) -> tuple[BicameralNet, dict | None]:
    """A fresh initialised network, or the weights of `init_checkpoint` (fine-tuning; an RGB
    checkpoint may start an RGB-D model, see `widen_to_depth`). `init_data`: that checkpoint,
    when the caller has already read it."""
    if config.init_checkpoint:
        data = init_data if init_data is not None else read_checkpoint(config.init_checkpoint)
        net_config = NetworkConfig.from_dict(data["config"])
        wanted = INPUT_CHANNELS[config.input_kind]
        if net_config.in_channels == 3 and wanted == 4:
            model = BicameralNet(replace(net_config, in_channels=4))
            model.load_state_dict(widen_to_depth(data["state_dict"], model))
            return model, data
        if net_config.in_channels != wanted:
            raise TrainingError(
                f"{config.init_checkpoint}: trained on {net_config.in_channels}-channel input, "
                f"but --input {config.input_kind} has {wanted} (only rgb -> rgbd can be widened)"
            )
        model = BicameralNet(net_config)
        model.load_state_dict(data["state_dict"])
        return model, data
    try:
        model = build_network(config.variant, config.width, INPUT_CHANNELS[config.input_kind], config.encoder)
    except ValueError as exc:  # NetworkConfig's own check: a one-line error, not a traceback
        raise TrainingError(str(exc)) from None
    try:
        initialise(model, config.encoder_weights)
    except (OSError, ValueError) as exc:
        raise TrainingError(str(exc)) from None
    return model, None


def train(config: TrainConfig) -> dict:
    """Run one training job; returns a summary (paths, iterations, losses, seconds)."""
    config.validate()
    device_kind = "cuda" if (config.device == "auto" and torch.cuda.is_available()) else config.device
    dist_info = setup_distributed("cuda" if device_kind.startswith("cuda") else "cpu")
    trainer = None
    try:
        trainer = Trainer(config, dist_info)
        summary = trainer.run()
        if dist_info.enabled:
            # Every rank reaches the end before the group is torn down: a gloo rank destroyed
            # while its peer still finishes (rank 0 saves and logs) was seen to abort at exit.
            torch_dist.barrier()
        return summary
    finally:
        if trainer is not None:
            trainer.release_loaders()
        if dist_info.enabled and torch_dist.is_initialized():
            torch_dist.destroy_process_group()


@dataclass
class Counters:
    """Where the run stands; saved in `last.pt` so a resume continues them."""

    iteration: int = 0
    epoch: int = 0
    best_val: float = math.inf  # lowest validation loss so far (inf: none finite yet)
    trained_s: float = 0.0  # training seconds of the sessions before this one (resume)

    @classmethod
    def resumed(cls, state: dict | None) -> Counters:
        if state is None:
            return cls()
        extra = state.get("extra", {})
        best = extra.get("best_val_loss")  # None when no validation had a finite loss
        return cls(
            iteration=int(extra.get("iteration", 0)),
            epoch=int(extra.get("epoch", 0)),
            best_val=float(best) if best is not None else math.inf,
            trained_s=float(extra.get("training_seconds", 0.0)),
        )


@dataclass
class TrainWindow:
    """The training losses since the last validation point (one row of log.csv)."""

    running: torch.Tensor  # summed (total, boundary, occlusion) losses, kept on the device
    start: float = field(default_factory=time.monotonic)
    iterations: int = 0

    def add(self, losses: torch.Tensor) -> None:
        self.running += losses.detach()  # summed on the device: no host sync per step
        self.iterations += 1

    def row(self, totals: list[float]) -> dict:
        """log.csv's training columns: the mean losses and the rate; left empty for a window of no
        step, whose 0.0 would read as a perfect loss."""
        if not self.iterations:
            return {}
        n = self.iterations
        return {
            "train_loss": totals[0] / n,
            "train_boundary_loss": totals[1] / n,
            "train_occlusion_loss": totals[2] / n,
            "iterations_per_s": round(n / max(time.monotonic() - self.start, 1e-9), 3),
        }

    def reset(self) -> None:
        self.running.zero_()
        self.start, self.iterations = time.monotonic(), 0


class Trainer:
    """One training job: data, model and optimizer built once, then explicit steps.

    State lives in named attributes: `counters` (iteration, epoch, best loss; checkpointed), the
    current log `window`, and `validated_at` (the iteration of the last validation, so the final
    point is validated exactly once). `run` is the loop: `train_step` per batch, `validate_and_log`
    every `val_every` steps (or per epoch), `should_stop` after each.
    """

    def __init__(self, config: TrainConfig, dist_info: Distributed) -> None:
        self.start_wall = time.monotonic()
        self.config, self.dist_info = config, dist_info
        self.device = pick_device(config.device, dist_info)
        torch.manual_seed(config.seed + dist_info.rank)
        self.out_dir = Path(config.out_dir)
        refuse_existing_run(self.out_dir, config.resume)
        # Everything that can refuse the data or a checkpoint runs before the run folder exists.
        self.train_scenes, self.val_scenes = split_scenes(config)
        check_crop(config, self.train_scenes)
        resume_state = read_checkpoint(config.resume) if config.resume else None
        if resume_state is not None:  # a resumed run continues the checkpoint's network
            check_resumed_network(asdict(config), recorded_settings(resume_state), config.resume)
        self.counters = Counters.resumed(resume_state)
        refuse_finished(config, self.counters)
        init_state = read_checkpoint(config.init_checkpoint) if config.init_checkpoint else None
        self._build_data(resume_state, init_state)
        init_data = self._build_model(resume_state, init_state)
        if resume_state is not None and resume_state.get("optimizer_state"):
            self.optimizer.load_state_dict(resume_state["optimizer_state"])
            for group in self.optimizer.param_groups:  # the state restored its own: the config's apply
                group.update(
                    lr=config.lr, betas=tuple(config.betas), eps=config.eps, weight_decay=config.weight_decay
                )
        if dist_info.is_main:
            self.out_dir.mkdir(parents=True, exist_ok=True)
        self._open_logs()
        self.provenance_base = self._provenance(init_data, resume_state)
        self.session_start = time.monotonic()
        self.progress = self._progress_bar()
        self.window = TrainWindow(torch.zeros(3, device=self.device))
        # A resumed run's checkpoint was saved at a validation: the same point is not validated
        # (nor logged, nor saved) again when this session trains no step.
        self.validated_at = self.counters.iteration if resume_state is not None else -1
        self.first_iteration = self.counters.iteration
        self.last_val_s = 0.0  # how long the last validation took (kept free inside the budget)

    # ------------------------------------------------------------------ setup
    def _build_data(self, resume_state: dict | None, init_state: dict | None) -> None:
        config, dist_info = self.config, self.dist_info
        inherited = None if init_state is None else init_state["preprocess"]
        if resume_state is not None:
            self.preprocess = resume_state["preprocess"]
        elif inherited is not None and len(inherited["mean"]) == INPUT_CHANNELS[config.input_kind]:
            self.preprocess = inherited  # same input: the statistics the weights were trained with
        elif config.input_kind == "rgb":
            self.preprocess = preprocess_record("rgb")
        else:
            reference = config.depth_reference
            statistics = depth_statistics(self.train_scenes, depth_reference=reference)
            self.preprocess = preprocess_record(config.input_kind, *statistics, depth_reference=reference)
        self.info = read_dataset_info(config.data)
        self.augment = (
            AugmentConfig(preset=str(self.info.get("preset", "mikado+"))) if config.augment else None
        )
        self.noise = DepthNoise() if config.depth_noise else None
        train_set = MikadoScenes(
            self.train_scenes,
            config.input_kind,
            self.preprocess,
            config.crop,
            self.augment,
            self.noise,
            config.crops_per_scene,
        )
        scenes_per_batch = config.batch_size // config.crops_per_scene
        val_set = MikadoScenes(  # whole frames
            self.val_scenes, config.input_kind, self.preprocess, None, None, self.noise
        )
        drop_last = len(train_set) >= scenes_per_batch * dist_info.world_size
        self.train_loader = _loader(
            train_set, scenes_per_batch, True, config.workers, dist_info, self.device, config.seed, drop_last
        )
        self.val_loader = _loader(
            val_set,
            min(config.batch_size, 4),
            False,
            min(config.workers, 4),
            dist_info,
            self.device,
            0,
            False,
        )

    def _build_model(self, resume_state: dict | None, init_state: dict | None) -> dict | None:
        """Model (`self.model`, and `self.net` wrapped for DDP), optimizer, AMP; returns the
        fine-tuning checkpoint (None when training from scratch)."""
        config, device = self.config, self.device
        model, init_data = build_model(config, init_state)
        if resume_state is not None:
            model = BicameralNet(NetworkConfig.from_dict(resume_state["config"]))
            model.load_state_dict(resume_state["state_dict"])
        self.frozen = freeze_encoder_blocks(model, config.freeze_blocks)
        self.channels_last = device.type == "cuda"
        if device.type == "cuda":
            torch.backends.cudnn.benchmark = True  # fixed crop and frame sizes: let cuDNN pick kernels
        model = model.to(device)
        if self.channels_last:
            model = model.to(memory_format=torch.channels_last)
        self.model = self.net = model
        if self.dist_info.enabled:
            self.net = torch.nn.parallel.DistributedDataParallel(
                model, device_ids=[device.index] if device.type == "cuda" else None
            )
        self.optimizer = torch.optim.Adam(
            [p for p in model.parameters() if p.requires_grad],
            lr=config.lr,
            betas=tuple(config.betas),
            eps=config.eps,
            weight_decay=config.weight_decay,
        )
        self.autocast_dtype = amp_dtype(device, config.amp)
        self.scaler = torch.amp.GradScaler("cuda", enabled=self.autocast_dtype == torch.float16)
        return init_data

    def _open_logs(self) -> None:
        """config.json, log.csv and TensorBoard, on rank 0 only."""
        self.writer = self.csv_log = None
        if self.dist_info.is_main:
            (self.out_dir / "config.json").write_text(json.dumps(asdict(self.config), indent=2, default=str))
            self.csv_log = CsvLog(self.out_dir / "log.csv")
            from torch.utils.tensorboard import SummaryWriter

            self.writer = SummaryWriter(
                str(self.out_dir / "tensorboard"), purge_step=self.counters.iteration or None
            )

    def _provenance(self, init_data: dict | None, resume_state: dict | None = None) -> dict:
        """The checkpoint provenance that does not change during the run."""
        config, info = self.config, self.info
        base = {
            "dataset": str(Path(config.data).resolve()),
            "preset": info.get("preset", "unknown"),
            "dataset_scenes": len(self.train_scenes),
            "dataset_seed": info.get("seed", info.get("base_seed")),
            "image_size": [info.get("width"), info.get("height")],
            "validation_scenes": len(self.val_scenes),
            "input": config.input_kind,
            "crop": config.crop,
            "batch_size": config.batch_size * self.dist_info.world_size,
            "crops_per_scene": config.crops_per_scene,
            "optimizer": f"Adam(lr={config.lr}, betas={tuple(config.betas)}, eps={config.eps}, "
            f"weight_decay={config.weight_decay})",
            "hardware": hardware_description(self.device, self.dist_info.world_size),
            "amp": str(self.autocast_dtype).replace("torch.", "") if self.autocast_dtype else "fp32",
            "git_commit": git_commit(),
            "encoder_weights": config.encoder_weights,
            "augmentation": asdict(self.augment) if self.augment else None,
            "depth_noise": asdict(self.noise) if self.noise else None,
            **config.extra_provenance,
        }
        if init_data is not None:
            base["finetuned_from"] = str(config.init_checkpoint)
            base["frozen_blocks"] = config.freeze_blocks
            base["pretraining"] = init_data.get("provenance", {})
        elif resume_state is not None:  # a resumed run keeps where its first session started from
            before = resume_state.get("provenance", {})
            kept = ("finetuned_from", "frozen_blocks", "pretraining")
            base.update({k: before[k] for k in kept if k in before})
        return base

    def _progress_bar(self) -> tqdm | None:
        if not (self.dist_info.is_main and self.config.progress):
            return None
        from tqdm import tqdm

        config = self.config
        total = config.iterations
        if config.epochs is not None:
            by_epochs = config.epochs * max(len(self.train_loader), 1)
            total = by_epochs if total is None else min(total, by_epochs)
        return tqdm(
            total=total, initial=self.counters.iteration, unit="it", dynamic_ncols=True, file=sys.stderr
        )

    # ------------------------------------------------------------------ checkpoints
    def session_s(self) -> float:
        return time.monotonic() - self.session_start

    def save(self, path: Path, val: float, with_optimizer: bool) -> None:
        c = self.counters
        provenance = {
            **self.provenance_base,
            "iterations": c.iteration,
            "epochs": c.epoch,
            "training_seconds": round(c.trained_s + self.session_s(), 1),
            "validation_loss": val,
            "date": dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds"),
        }
        save_checkpoint(
            path,
            self.model,
            self.model.config,
            self.preprocess,
            provenance,
            optimizer_state=self.optimizer.state_dict() if with_optimizer else None,
            extra={
                "iteration": c.iteration,
                "epoch": c.epoch,
                "best_val_loss": c.best_val if math.isfinite(c.best_val) else None,
                "training_seconds": c.trained_s + self.session_s(),
                # what --resume continues with (resume_config); as config.json writes it
                "train_config": json.loads(json.dumps(asdict(self.config), default=str)),
            },
        )

    # ------------------------------------------------------------------ stopping
    def should_stop(self, check_clock: bool = True) -> bool:
        """Counters are the same on every rank; the clock is read on each and agreed by all-reduce
        (under DDP only every 10th step, to keep the host sync off the hot path)."""
        config, c = self.config, self.counters
        if config.iterations is not None and c.iteration >= config.iterations:
            return True
        if config.epochs is not None and c.epoch >= config.epochs:
            return True
        if not check_clock or config.time_budget_s is None:
            return False
        local = 0
        # Keep room for the final validation and checkpoint inside the budget.
        if time.monotonic() - self.start_wall + self.last_val_s >= config.time_budget_s:
            local = 1
        if self.dist_info.enabled:
            flag = torch.tensor([local], device=self.device)
            torch_dist.all_reduce(flag, op=torch_dist.ReduceOp.MAX)
            local = int(flag.item())
        return bool(local)

    # ------------------------------------------------------------------ one step
    def train_step(self, batch: Sequence[torch.Tensor]) -> torch.Tensor:
        """One optimizer step on `batch`; returns the (total, boundary, occlusion) losses."""
        image, boundaries, occlusions = _to_device(batch, self.device, self.channels_last)
        with _autocast(self.device, self.autocast_dtype):
            b_logits, o_logits = self.net(image)
        losses = torch.stack(bicameral_loss(b_logits.float(), o_logits.float(), boundaries, occlusions))
        self.optimizer.zero_grad(set_to_none=True)
        self.scaler.scale(losses[0]).backward()
        self.scaler.step(self.optimizer)
        self.scaler.update()
        self.counters.iteration += 1
        self.window.add(losses)
        return losses

    def log_step(self, losses: torch.Tensor) -> None:
        """Every `log_every` steps: check the loss is finite, write it to TensorBoard and the bar."""
        config, iteration = self.config, self.counters.iteration
        if iteration % config.log_every == 0:
            logged = losses.detach().tolist()  # one sync every log_every steps
            if not math.isfinite(logged[0]):
                raise TrainingError(f"loss is {logged[0]} at iteration {iteration}; try a lower --lr")
            if self.dist_info.is_main:
                for name, value in zip(("loss", "boundary_loss", "occlusion_loss"), logged, strict=True):
                    self.writer.add_scalar(f"train/{name}", value, iteration)
                if self.progress is not None:
                    postfix = {"loss": f"{logged[0]:.4f}", "epoch": self.counters.epoch}
                    if config.time_budget_s is not None:
                        left = config.time_budget_s - (time.monotonic() - self.start_wall)
                        postfix["budget_left"] = f"{max(left, 0):.0f}s"
                    self.progress.set_postfix(postfix, refresh=False)
        if self.progress is not None:
            self.progress.update(1)

    # ------------------------------------------------------------------ validation
    def validate_and_log(self) -> None:
        """Validate, log the training window since the last call, save checkpoints (rank 0), start
        the next window; `last_val_s` becomes the seconds the validation took."""
        c, window, dist_info = self.counters, self.window, self.dist_info
        totals = window.running.tolist()
        t0 = time.monotonic()
        val, val_b, val_o = validation_loss(
            self.net, self.val_loader, self.device, self.autocast_dtype, self.channels_last, dist_info
        )
        if dist_info.is_main:
            row = {
                "iteration": c.iteration,
                "epoch": c.epoch,
                **window.row(totals),
                "val_loss": val,
                "val_boundary_loss": val_b,
                "val_occlusion_loss": val_o,
                "lr": self.config.lr,
                "elapsed_s": round(c.trained_s + self.session_s(), 2),
            }
            self.csv_log.write(row)
            self.writer.add_scalar("val/loss", val, c.iteration)
            self.writer.add_scalar("val/boundary_loss", val_b, c.iteration)
            self.writer.add_scalar("val/occlusion_loss", val_o, c.iteration)
            if val < c.best_val:
                c.best_val = val
                self.save(self.out_dir / "best.pt", val, with_optimizer=False)
            self.save(self.out_dir / "last.pt", val, with_optimizer=True)
            self.writer.flush()
        if dist_info.enabled:  # everyone learns the best loss (for the summary) and waits for rank 0's files
            value = c.best_val if math.isfinite(c.best_val) else -1.0
            shared = torch.tensor([value], device=self.device, dtype=torch.float64)
            torch_dist.broadcast(shared, 0)
            c.best_val = shared.item() if shared.item() >= 0 else math.inf
        self.last_val_s = time.monotonic() - t0
        window.reset()
        self.validated_at = c.iteration

    # ------------------------------------------------------------------ the loop
    def run_epoch(self) -> bool:
        """Train through one epoch (or until a stop); True when the run is to stop."""
        config, c, loader = self.config, self.counters, self.train_loader
        if self.dist_info.enabled:
            loader.sampler.set_epoch(c.epoch)
        elif isinstance(loader.sampler, RandomSampler):
            loader.sampler.generator.manual_seed(config.seed * 100_003 + c.epoch)
        for batch in batches(loader):
            self.log_step(self.train_step(batch))
            if config.val_every is not None and c.iteration % config.val_every == 0:
                self.validate_and_log()
            if self.should_stop(check_clock=not self.dist_info.enabled or c.iteration % 10 == 0):
                return True
        c.epoch += 1
        if config.val_every is None:
            self.validate_and_log()
        return self.should_stop()

    def release_loaders(self) -> None:
        """Drop the loaders, and with them their persistent worker processes, when the run ends.
        An error's traceback keeps this trainer alive; its loaders' workers would otherwise be
        shut down whenever the garbage collector frees that cycle, at a random later moment of
        the process (a full test run crashed twice there, tests after one whose loader worker
        read a corrupt scene). torch keeps a persistent-workers iterator in the loader's
        `_iterator` and offers no public shutdown: its own `_shutdown_workers` (idempotent, what
        the iterator's `__del__` calls) is called here."""
        for loader in (self.train_loader, self.val_loader):
            shutdown = getattr(getattr(loader, "_iterator", None), "_shutdown_workers", None)
            if shutdown is not None:
                shutdown()
        self.train_loader = self.val_loader = None

    def run(self) -> dict:
        """Train until a stopping rule holds, validate the final point; returns the summary."""
        self.net.train()
        stopped = self.should_stop()
        while not stopped:
            stopped = self.run_epoch()
        if self.counters.iteration == self.first_iteration:
            self._close()
            raise TrainingError(self._no_step_message())
        if self.validated_at != self.counters.iteration:  # same on every rank: final point validated, saved
            self.validate_and_log()
        self._close()
        return self.summary()

    def _close(self) -> None:
        if self.progress is not None:
            self.progress.close()
        if self.writer is not None:
            self.writer.close()

    def _no_step_message(self) -> str:
        """Why a session trained no step (the stopping rules were checked before setup, so the
        clock): nothing was validated, logged or saved, rather than an untrained best.pt and a
        log.csv row of zero losses."""
        kept = "the run's checkpoints are unchanged" if self.config.resume else "no checkpoint written"
        setup = self.session_start - self.start_wall
        if self.config.time_budget_s is not None:
            return (
                f"--time-budget {self.config.time_budget_s:g}: ended before the first training step "
                f"(setup took {setup:.1f} s of it); nothing trained, {kept}: give a longer --time-budget"
            )
        return f"no training step ran (no training batch in {self.config.data}); {kept}"

    def summary(self) -> dict:
        c = self.counters
        return {
            "out_dir": str(self.out_dir),
            "best": str(self.out_dir / "best.pt"),
            "last": str(self.out_dir / "last.pt"),
            "iterations": c.iteration,
            "epochs": c.epoch,
            "best_val_loss": c.best_val,
            "training_seconds": round(c.trained_s + self.session_s(), 1),
            "frozen_parameters": self.frozen,
            "world_size": self.dist_info.world_size,
            "device": str(self.device),
        }
