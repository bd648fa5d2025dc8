"""`binpick train --resume` / `finetune --resume` continue the run with its own settings.

Resuming with only --resume/--data/--out/--iterations rewrote config.json with the command-line
defaults (width 0.25, batch 8) and refused the default crop 256 on small frames; an explicit
--lr was recorded but the optimizer state brought the old one back. Now the network and run
settings come from the checkpoint, a network flag that differs is refused in one line, and a run
flag given overrides (applied, recorded, named on stderr). Runs through the real CLI in-process.
"""

from __future__ import annotations

import csv
import json

import pytest
import torch
from training_scenes import mikado_scenes

from bicameral.checkpoint import read_checkpoint
from bicameral.train import NETWORK_SETTINGS, RUN_SETTINGS, TrainConfig, TrainingError, train
from edge.cli import main as binpick

SETTINGS = NETWORK_SETTINGS + RUN_SETTINGS
# A run whose settings all differ from the defaults (64-px frames: the default crop 256 is refused).
FIRST = [
    "--width", "0.125", "--crop", "32", "--batch-size", "2", "--lr", "3e-4", "--weight-decay", "2e-4",
    "--seed", "5", "--val-count", "2", "--val-every", "2", "--no-augment", "--amp", "off",
]  # fmt: skip
SESSION = ["--workers", "0", "--no-progress"]
FIRST_VALUES = {
    "width": 0.125, "crop": 32, "batch_size": 2, "lr": 3e-4, "weight_decay": 2e-4, "augment": False,
    "depth_noise": False,
}  # fmt: skip


@pytest.fixture(scope="module")
def data(tmp_path_factory):
    return mikado_scenes(tmp_path_factory.getbasetemp())


@pytest.fixture
def run(data, tmp_path, capsys):
    """A finished 2-iteration run with non-default settings; returns its folder."""
    out = tmp_path / "run"
    assert (
        binpick(["train", "--data", str(data), "--out", str(out), "--iterations", "2", *FIRST, *SESSION]) == 0
    )
    capsys.readouterr()
    return out


def _config(run):
    return json.loads((run / "config.json").read_text())


def _resume(data, run, *flags: str) -> int:
    base = ["--data", str(data), "--out", str(run), "--resume", str(run / "last.pt"), "--iterations", "3"]
    return binpick(["train", *base, *flags])


def test_resume_takes_the_runs_settings_from_the_checkpoint(data, run, capsys):
    first = _config(run)
    assert (first["width"], first["crop"], first["batch_size"], first["lr"]) == (0.125, 32, 2, 3e-4)
    assert _resume(data, run) == 0  # nothing but --resume/--data/--out/--iterations
    assert "at iteration 2 with its recorded settings" in capsys.readouterr().err
    resumed = _config(run)
    assert {k: resumed[k] for k in SETTINGS} == {k: first[k] for k in SETTINGS}
    assert resumed["iterations"] == 3 and resumed["resume"] == str(run / "last.pt")
    checkpoint = read_checkpoint(run / "last.pt")
    recorded = checkpoint["extra"]["train_config"]
    assert {k: recorded[k] for k in SETTINGS} == {k: first[k] for k in SETTINGS}
    assert checkpoint["config"]["width"] == 0.125 and checkpoint["extra"]["iteration"] == 3
    provenance = checkpoint["provenance"]
    assert (provenance["crop"], provenance["batch_size"], provenance["augmentation"]) == (32, 2, None)
    assert provenance["validation_scenes"] == 2


@pytest.mark.parametrize(
    ("flags", "message"),
    [
        (["--width", "F25"], "--width 0.25: --resume {ckpt} continues a network trained with --width 0.125;"),
        (["--input", "rgbd"], "--input rgbd: --resume {ckpt} continues a network trained with --input rgb;"),
        (["--variant", "cascaded"], "--variant cascaded: --resume {ckpt} continues a network trained with "),
    ],
)
def test_a_network_flag_that_differs_from_the_checkpoint_is_refused(data, run, capsys, flags, message):
    before = (run / "config.json").read_text(), read_checkpoint(run / "last.pt")["extra"]["iteration"]
    assert _resume(data, run, *flags) == 2
    err = capsys.readouterr().err
    assert err.startswith("binpick train: error: " + message.format(ckpt=run / "last.pt"))
    assert err.count("\n") == 1 and "leave " + flags[0] + " out" in err
    assert (
        (run / "config.json").read_text(),
        read_checkpoint(run / "last.pt")["extra"]["iteration"],
    ) == before
    assert _resume(data, run, "--width", "0.125", *SESSION) == 0  # the checkpoint's own value is fine


def test_a_run_flag_given_overrides_the_checkpoint_and_is_recorded(data, run, capsys):
    assert _resume(data, run, "--lr", "1e-3", "--batch-size", "4", *SESSION) == 0
    err = capsys.readouterr().err
    assert (
        "overridden on the command line: --batch-size 4 (the checkpoint's batch_size 2), "
        "--lr 0.001 (the checkpoint's lr 0.0003)" in err
    )
    resumed = _config(run)
    assert (resumed["lr"], resumed["batch_size"], resumed["crop"], resumed["width"]) == (1e-3, 4, 32, 0.125)
    checkpoint = read_checkpoint(run / "last.pt")
    assert checkpoint["extra"]["train_config"]["lr"] == 1e-3
    assert checkpoint["provenance"]["batch_size"] == 4
    # applied, not only written down: Adam's restored state carried the old rate
    assert [group["lr"] for group in checkpoint["optimizer_state"]["param_groups"]] == [1e-3]
    assert checkpoint["optimizer_state"]["param_groups"][0]["weight_decay"] == 2e-4
    with open(run / "log.csv") as f:
        assert [float(row["lr"]) for row in csv.DictReader(f)] == [3e-4, 1e-3]


def test_an_older_checkpoint_resumes_with_what_its_provenance_recorded(data, run, capsys):
    """Checkpoints written before extra.train_config: crop, batch, Adam and augmentation come from
    the provenance and optimizer state; what they never recorded is named."""
    checkpoint = torch.load(run / "last.pt", weights_only=True)
    del checkpoint["extra"]["train_config"]
    torch.save(checkpoint, run / "last.pt")
    assert _resume(data, run, *SESSION) == 0
    err = capsys.readouterr().err
    assert err.endswith(
        "not recorded in this older checkpoint (defaults used): --val-data, --val-fraction, --val-count, "
        "--val-every, --seed, --amp\n"
    )
    resumed = _config(run)
    kept = ("width", "crop", "batch_size", "lr", "weight_decay", "augment", "depth_noise")
    assert {k: resumed[k] for k in kept} == {k: FIRST_VALUES[k] for k in kept}
    assert resumed["seed"] == TrainConfig.seed and resumed["val_count"] is None


def test_the_python_api_refuses_a_resume_into_another_network(data, run):
    config = TrainConfig(
        data=str(data), out_dir=str(run), iterations=3, resume=str(run / "last.pt"), crop=32, workers=0
    )  # width: the default 0.25, not the checkpoint's 0.125
    with pytest.raises(TrainingError, match=r"^--width 0.25: --resume .* trained with --width 0.125;"):
        train(config)


def test_finetune_resume_keeps_the_frozen_blocks(data, run, tmp_path, capsys):
    tuned = tmp_path / "tuned"
    start = ["finetune", "--checkpoint", str(run / "best.pt"), "--data", str(data), "--out", str(tuned)]
    assert (
        binpick(
            [
                *start,
                "--freeze-blocks",
                "2",
                "--crop",
                "32",
                "--batch-size",
                "2",
                "--iterations",
                "1",
                *SESSION,
            ]
        )
        == 0
    )
    resume = [*start, "--resume", str(tuned / "last.pt"), "--iterations", "2", *SESSION]
    assert binpick(resume) == 0  # the default 3 frozen blocks no longer fit the optimizer state
    assert _config(tuned)["freeze_blocks"] == 2 and _config(tuned)["crop"] == 32
    assert read_checkpoint(tuned / "last.pt")["provenance"]["frozen_blocks"] == 2
    capsys.readouterr()
    assert (
        binpick([*start, "--resume", str(tuned / "last.pt"), "--iterations", "3", "--freeze-blocks", "3"])
        == 2
    )
    assert "error: --freeze-blocks 3: --resume " in capsys.readouterr().err


def test_a_resume_into_a_folder_holding_another_run_is_refused(data, run, tmp_path, capsys):
    """`--out runs/rgb --resume runs/rgbd/last.pt` overwrote runs/rgb's checkpoints with the RGB-D
    network and sent its log.csv back from iteration 31 to 10: only the folder's own last.pt may
    continue in it; another run's checkpoint continues into an empty or new folder."""
    other = tmp_path / "other"
    assert (
        binpick(["train", "--data", str(data), "--out", str(other), "--iterations", "2", *FIRST, *SESSION])
        == 0
    )
    capsys.readouterr()
    before = (run / "last.pt").read_bytes(), (run / "log.csv").read_text()
    resume = ["--data", str(data), "--iterations", "3", *SESSION]
    assert binpick(["train", *resume, "--out", str(run), "--resume", str(other / "last.pt")]) == 2
    err = capsys.readouterr().err
    assert err.startswith(f"binpick train: error: --out {run}: already holds a run (best.pt, last.pt, ")
    assert f"--resume {other / 'last.pt'} is not its last.pt (--resume {run / 'last.pt'} continues it)" in err
    assert err.count("\n") == 1
    assert binpick(["train", *resume, "--out", str(run), "--resume", str(run / "best.pt")]) == 2
    assert "is not its last.pt" in capsys.readouterr().err
    assert ((run / "last.pt").read_bytes(), (run / "log.csv").read_text()) == before
    branch = tmp_path / "branch"  # a new folder: the resume continues other's run there
    assert binpick(["train", *resume, "--out", str(branch), "--resume", str(other / "last.pt")]) == 0
    assert read_checkpoint(branch / "last.pt")["extra"]["iteration"] == 3
    spelled = str(run / ".." / run.name / "last.pt")  # the folder's own last.pt, however spelled
    assert binpick(["train", *resume, "--out", str(run), "--resume", spelled]) == 0


def test_a_resume_already_at_its_iterations_trains_nothing(data, run, capsys):
    """A run at iteration 2 resumed with --iterations 1 validated and saved again and logged a row
    of train loss 0.0 at 0.0 it/s: now one line says there is nothing to train (exit 0)."""
    before = {name: (run / name).read_bytes() for name in ("last.pt", "best.pt", "log.csv", "config.json")}
    base = ["train", "--data", str(data), "--out", str(run), "--resume", str(run / "last.pt"), *SESSION]
    assert binpick([*base, "--iterations", "1"]) == 0
    err = capsys.readouterr().err.splitlines()
    assert err[-1] == (
        f"--resume {run / 'last.pt'}: already at iteration 2 >= --iterations 1: nothing to train "
        "(the run's files are unchanged)"
    )
    assert binpick([*base, "--iterations", "2"]) == 0
    assert {name: (run / name).read_bytes() for name in before} == before


def test_finetune_resume_refuses_another_checkpoint(data, run, tmp_path, capsys):
    """`finetune --checkpoint A --resume B` built A's network and failed on a flag never given
    ("--input rgb has 3 ..."): --checkpoint other than the run's own start is refused, and may be
    left out with --resume."""
    tuned = tmp_path / "tuned"
    first = ["finetune", "--checkpoint", str(run / "best.pt"), "--data", str(data), "--out", str(tuned)]
    assert binpick([*first, "--crop", "32", "--batch-size", "2", "--iterations", "1", *SESSION]) == 0
    other = tmp_path / "other.pt"
    other.write_bytes((run / "last.pt").read_bytes())
    resume = [
        "finetune",
        "--data",
        str(data),
        "--out",
        str(tuned),
        "--resume",
        str(tuned / "last.pt"),
        *SESSION,
    ]
    capsys.readouterr()
    assert binpick([*resume, "--checkpoint", str(other), "--iterations", "2"]) == 2
    assert capsys.readouterr().err == (
        f"binpick finetune: error: --checkpoint {other}: not used with --resume {tuned / 'last.pt'}, which "
        f"continues a run fine-tuned from {run / 'best.pt'}; leave --checkpoint out to resume\n"
    )
    assert binpick([*resume, "--iterations", "2"]) == 0
    assert read_checkpoint(tuned / "last.pt")["provenance"]["finetuned_from"] == str(run / "best.pt")
    assert binpick(["finetune", "--data", str(data), "--out", str(tmp_path / "x"), "--iterations", "1"]) == 2
    assert "--checkpoint: required" in capsys.readouterr().err
