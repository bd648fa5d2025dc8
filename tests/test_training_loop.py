"""The training loop on a tiny real Mikado set: stopping rules, checkpoints, logs, resume,
fine-tuning with frozen blocks, and DDP with two gloo processes under torchrun."""

from __future__ import annotations

import csv
import json
import os
import subprocess
import sys
from dataclasses import replace

import pytest
import torch
from training_scenes import REPO, mikado_scenes

from bicameral.checkpoint import load_checkpoint, read_checkpoint
from bicameral.train import TrainConfig, TrainingError, build_model, train

TINY = {"width": 0.0625, "crop": 32, "batch_size": 2, "workers": 0, "progress": False}


@pytest.fixture(scope="module")
def data(tmp_path_factory):
    return mikado_scenes(tmp_path_factory.getbasetemp())


def _rows(run):
    with open(run / "log.csv") as f:
        return list(csv.DictReader(f))


def test_iterations_checkpoints_and_logs(data, tmp_path):
    run = tmp_path / "run"
    summary = train(TrainConfig(data=str(data), out_dir=str(run), iterations=4, val_every=2, **TINY))
    assert summary["iterations"] == 4
    rows = _rows(run)
    assert [int(r["iteration"]) for r in rows] == [2, 4]
    assert all(float(r["val_loss"]) > 0 and float(r["train_loss"]) > 0 for r in rows)
    assert min(float(r["val_loss"]) for r in rows) == pytest.approx(summary["best_val_loss"])
    model, ckpt = load_checkpoint(run / "best.pt")
    assert model.config.width == 0.0625 and model.config.in_channels == 3
    p = ckpt["provenance"]
    assert p["preset"] == "mikado+" and p["dataset_scenes"] == 5 and p["validation_scenes"] == 1
    assert p["hardware"].startswith("1 × CPU") and p["training_seconds"] > 0
    assert read_checkpoint(run / "last.pt")["optimizer_state"]  # resumable
    assert any((run / "tensorboard").iterdir())
    assert json.loads((run / "config.json").read_text())["iterations"] == 4


def test_resume_continues_counters_and_log(data, tmp_path):
    run = tmp_path / "run"
    train(TrainConfig(data=str(data), out_dir=str(run), iterations=2, val_every=2, **TINY))
    summary = train(
        TrainConfig(
            data=str(data), out_dir=str(run), iterations=4, val_every=2, resume=str(run / "last.pt"), **TINY
        )
    )
    assert summary["iterations"] == 4
    assert [int(r["iteration"]) for r in _rows(run)] == [2, 4]
    assert read_checkpoint(run / "last.pt")["provenance"]["iterations"] == 4


def test_time_budget_stops_cleanly(data, tmp_path):
    run = tmp_path / "run"
    summary = train(TrainConfig(data=str(data), out_dir=str(run), time_budget_s=6.0, **TINY))
    assert summary["iterations"] >= 1
    assert summary["training_seconds"] < 6.0 + 10.0  # the final validation and save come after
    assert (run / "best.pt").is_file() and _rows(run)[-1]["iteration"] == str(summary["iterations"])


def test_finetune_freezes_the_first_blocks(data, tmp_path):
    base = tmp_path / "base"
    train(TrainConfig(data=str(data), out_dir=str(base), iterations=1, **TINY))
    before, _ = load_checkpoint(base / "best.pt")
    tuned_dir = tmp_path / "tuned"
    summary = train(
        TrainConfig(
            data=str(data), out_dir=str(tuned_dir), iterations=3, val_every=3, lr=1e-2,
            init_checkpoint=str(base / "best.pt"), freeze_blocks=2, **TINY,
        )
    )  # fmt: skip
    after, ckpt = load_checkpoint(tuned_dir / "last.pt")
    frozen_convs = sum(before.encoder.block_sizes[:2])
    for i, (a, b) in enumerate(zip(before.encoder.convs, after.encoder.convs, strict=True)):
        same = torch.equal(a.weight, b.weight) and torch.equal(a.bias, b.bias)
        assert same == (i < frozen_convs), f"conv {i}"
    assert summary["frozen_parameters"] == sum(
        p.numel() for c in list(before.encoder.convs)[:frozen_convs] for p in c.parameters()
    )
    assert ckpt["provenance"]["frozen_blocks"] == 2 and "pretraining" in ckpt["provenance"]


def test_an_rgb_checkpoint_starts_an_rgbd_model(data, tmp_path):
    base = tmp_path / "base"
    train(TrainConfig(data=str(data), out_dir=str(base), iterations=1, **TINY))
    rgb, _ = load_checkpoint(base / "best.pt")
    config = TrainConfig(
        data=str(data), out_dir=str(tmp_path / "rgbd"), iterations=2, val_every=2, input_kind="rgbd",
        depth_noise=True, init_checkpoint=str(base / "best.pt"), **TINY,
    )  # fmt: skip
    widened, _ = build_model(config)
    assert widened.config.in_channels == 4
    x = torch.randn(1, 4, 32, 32)
    rgb.eval(), widened.eval()
    with torch.no_grad():  # zero depth kernels: the RGB model's output whatever the depth says
        for a, b in zip(rgb(x[:, :3]), widened(x), strict=True):
            torch.testing.assert_close(a, b)
    train(config)
    model, ckpt = load_checkpoint(tmp_path / "rgbd" / "last.pt")
    assert model.config.in_channels == 4 and len(ckpt["preprocess"]["mean"]) == 4
    assert ckpt["preprocess"]["depth_reference"] == "frame_median"  # any camera height
    assert abs(ckpt["preprocess"]["mean"][3]) < 0.05  # depth behind the median centres near 0
    assert ckpt["provenance"]["finetuned_from"] == str(base / "best.pt")
    assert ckpt["provenance"]["input"] == "rgbd" and ckpt["provenance"]["depth_noise"]
    assert model.encoder.convs[0].weight[:, 3].abs().sum() > 0  # depth is used after training
    resumed = replace(config, iterations=3, resume=str(tmp_path / "rgbd" / "last.pt"), init_checkpoint=None)
    train(resumed)
    provenance = read_checkpoint(tmp_path / "rgbd" / "last.pt")["provenance"]
    assert provenance["iterations"] == 3 and provenance["finetuned_from"] == str(base / "best.pt")
    with pytest.raises(TrainingError, match="only rgb -> rgbd"):
        build_model(replace(config, input_kind="depth"))


def test_several_crops_per_scene_fill_the_same_batch(data, tmp_path):
    run = tmp_path / "run"
    tiny = {**TINY, "batch_size": 4}
    summary = train(TrainConfig(data=str(data), out_dir=str(run), iterations=2, crops_per_scene=2, **tiny))
    assert summary["iterations"] == 2
    assert read_checkpoint(run / "last.pt")["provenance"]["crops_per_scene"] == 2
    with pytest.raises(TrainingError, match="not a multiple of --crops-per-scene"):
        train(TrainConfig(data=str(data), out_dir=str(run), iterations=1, crops_per_scene=3, **tiny))


def test_bad_configurations_are_named(data, tmp_path):
    with pytest.raises(TrainingError, match="at least one of"):
        train(TrainConfig(data=str(data), out_dir=str(tmp_path)))
    with pytest.raises(TrainingError, match="multiple of 16"):
        train(TrainConfig(data=str(data), out_dir=str(tmp_path), iterations=1, crop=40))
    with pytest.raises(TrainingError, match="cannot hold out 6 of 6"):
        train(TrainConfig(data=str(data), out_dir=str(tmp_path), iterations=1, val_count=6))
    with pytest.raises(TrainingError, match="--input"):
        train(TrainConfig(data=str(data), out_dir=str(tmp_path), iterations=1, input_kind="ir"))
    with pytest.raises(TrainingError, match="--depth-noise: the network's input is rgb"):
        train(TrainConfig(data=str(data), out_dir=str(tmp_path), iterations=1, depth_noise=True))


def test_ddp_two_gloo_processes_under_torchrun(data, tmp_path):
    run = tmp_path / "ddp"
    env = {**os.environ, "PYTHONPATH": str(REPO), "OMP_NUM_THREADS": "1"}
    done = subprocess.run(
        [
            sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", "2",
            "-m", "edge", "train", "--data", str(data), "--out", str(run), "--width", "0.0625",
            "--crop", "32", "--batch-size", "1", "--iterations", "3", "--val-every", "3",
            "--workers", "0", "--device", "cpu", "--no-progress",
        ],
        cwd=REPO, env=env, capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert done.returncode == 0, done.stdout + done.stderr
    summary = json.loads(done.stdout[done.stdout.index("{") :])  # rank 0 alone prints it
    assert summary["world_size"] == 2 and summary["iterations"] == 3
    provenance = read_checkpoint(run / "best.pt")["provenance"]
    assert provenance["batch_size"] == 2 and provenance["hardware"].startswith("2 × CPU")
    assert len(_rows(run)) == 1  # rank 0 alone logs


def test_a_fresh_run_never_overwrites_an_existing_one(data, tmp_path):
    run = tmp_path / "run"
    run.mkdir()
    (run / "log.csv").write_text("iteration\n1\n")
    with pytest.raises(
        TrainingError, match=r"already holds a run \(log.csv with 1 validation row\(s\)\) but no last.pt"
    ):
        train(TrainConfig(data=str(data), out_dir=str(run), iterations=1, **TINY))
    assert (run / "log.csv").read_text() == "iteration\n1\n" and not (run / "config.json").exists()
    (run / "last.pt").write_bytes(b"")
    with pytest.raises(TrainingError, match=r"already holds a run \(last.pt\); continue it with --resume"):
        train(TrainConfig(data=str(data), out_dir=str(run), iterations=1, **TINY))
    with pytest.raises(TrainingError, match="is a file"):
        train(TrainConfig(data=str(data), out_dir=str(run / "log.csv"), iterations=1, **TINY))


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"width": 0.0}, "--width"),
        ({"width": float("nan")}, "--width"),
        ({"variant": "foo"}, "--variant must be one of"),
        ({"encoder": "foo"}, "--encoder must be one of"),
        ({"lr": float("nan")}, "--lr"),
        ({"lr": -1.0}, "--lr"),
        ({"weight_decay": float("nan")}, "--weight-decay"),
        ({"workers": -1}, "--workers"),
        ({"val_fraction": float("nan")}, "--val-fraction"),
        ({"val_count": 0}, "--val-count"),
        ({"time_budget_s": float("nan")}, "--time-budget"),
        ({"time_budget_s": float("inf")}, "--time-budget"),
        ({"device": "foo"}, "--device 'foo'"),
    ],
)
def test_bad_knobs_are_one_line_errors(data, tmp_path, change, message):
    config = TrainConfig(data=str(data), out_dir=str(tmp_path / "run"), iterations=1, **{**TINY, **change})
    with pytest.raises(TrainingError, match=message):
        train(config)
    assert not (tmp_path / "run").exists()


def test_a_run_stopped_by_a_corrupt_scene_is_started_afresh_in_its_folder(data, tmp_path):
    """A corrupt rgb.png stopped the run after config.json, a header-only log.csv and
    tensorboard/ were made; the rerun on good data was refused ('continue it with --resume
    RUN/last.pt') and that advice failed ('last.pt does not exist')."""
    import shutil

    from bicameral.data import DatasetError

    broken = tmp_path / "broken"
    shutil.copytree(data, broken)
    scenes = sorted((broken / "scenes").iterdir())
    for scene in scenes[1:5]:  # truncated after the header (signature and IHDR, 33 bytes): the crop
        rgb = scene / "rgb.png"  # check reads headers only, so the loader finds these mid-run
        rgb.write_bytes(rgb.read_bytes()[:33])
    run = tmp_path / "run"
    config = TrainConfig(data=str(broken), out_dir=str(run), iterations=6, val_count=1, val_every=100, **TINY)
    with pytest.raises(DatasetError, match="rgb.png: missing or unreadable image"):
        train(config)
    assert (run / "log.csv").read_text().count("\n") == 1 and not (run / "last.pt").exists()
    with pytest.raises(
        TrainingError, match=r"holds no checkpoint \(no validation finished\): run without --resume"
    ):
        train(replace(config, data=str(data), resume=str(run / "last.pt")))
    summary = train(replace(config, data=str(data), iterations=1))
    assert summary["iterations"] == 1 and (run / "last.pt").is_file() and len(_rows(run)) == 1


def test_a_corrupt_scene_read_by_a_loader_worker_is_one_line(data, tmp_path):
    """With loader workers, torch re-raised the worker's DatasetError with the worker's traceback
    in its message (~20 lines after "binpick train: error:"): the message is the original line."""
    import shutil

    from bicameral.data import DatasetError

    broken = tmp_path / "broken"
    shutil.copytree(data, broken)
    for scene in sorted((broken / "scenes").iterdir())[:5]:  # every training scene, past the header
        rgb = scene / "rgb.png"
        rgb.write_bytes(rgb.read_bytes()[:33])
    config = TrainConfig(
        data=str(broken), out_dir=str(tmp_path / "run"), iterations=2, **{**TINY, "workers": 1}
    )
    with pytest.raises(DatasetError) as caught:
        train(config)
    assert str(caught.value).endswith("rgb.png: missing or unreadable image")
    assert "\n" not in str(caught.value) and "Traceback" not in str(caught.value)
    # The error's traceback (alive here) must not keep the loader's iterator, and its worker
    # processes, for the garbage collector to shut down at some later moment of this process.
    import gc

    alive = [obj for obj in gc.get_objects() if type(obj).__name__ == "_MultiProcessingDataLoaderIter"]
    assert all(obj._shutdown for obj in alive)  # torch's own flag: its workers are shut down


def test_the_default_workers_fit_the_cores_this_process_may_use(data, monkeypatch):
    monkeypatch.setattr(os, "sched_getaffinity", lambda _: {0, 1}, raising=False)
    assert TrainConfig(data=str(data), out_dir="run").workers == 2
    monkeypatch.setattr(os, "sched_getaffinity", lambda _: set(range(16)), raising=False)
    assert TrainConfig(data=str(data), out_dir="run").workers == 4


def test_a_budget_that_ends_before_the_first_step_saves_nothing(data, tmp_path):
    """--time-budget 1 ended during setup: the run 'trained' 0 iterations, logged train loss 0.0
    at 0.0 it/s and saved an untrained best.pt and last.pt. Now it says so and saves nothing; the
    folder holds no run, so the next start goes in it."""
    run = tmp_path / "run"
    config = TrainConfig(data=str(data), out_dir=str(run), time_budget_s=1e-3, **TINY)
    with pytest.raises(TrainingError, match=r"^--time-budget 0.001: ended before the first training step"):
        train(config)
    assert not (run / "best.pt").exists() and not (run / "last.pt").exists() and _rows(run) == []
    assert train(replace(config, time_budget_s=None, iterations=1))["iterations"] == 1


def test_a_log_row_of_no_training_step_leaves_the_train_columns_empty():
    from bicameral.train import TrainWindow

    assert TrainWindow(torch.zeros(3)).row([0.0, 0.0, 0.0]) == {}


def test_data_is_checked_before_the_run_folder_is_made(data, tmp_path):
    import shutil

    run = tmp_path / "run"
    from bicameral.data import DatasetError

    with pytest.raises(DatasetError, match="nowhere: no such folder"):
        train(TrainConfig(data=str(tmp_path / "nowhere"), out_dir=str(run), iterations=1, **TINY))
    broken = tmp_path / "broken"
    shutil.copytree(data, broken)
    (sorted((broken / "scenes").iterdir())[0] / "rgb.png").write_bytes(b"junk")
    with pytest.raises(DatasetError, match="rgb.png: missing or unreadable image"):
        train(TrainConfig(data=str(broken), out_dir=str(run), iterations=1, **TINY))
    assert not run.exists()


def test_a_crop_larger_than_the_frames_is_refused(data, tmp_path):
    """--crop 1024 on 128-px scenes trained on crops that were 98 % zero padding."""
    run = tmp_path / "run"
    with pytest.raises(
        TrainingError, match=r"--crop 1024: larger than the training frame .*rgb.png \(64x64; 100% of"
    ):
        train(TrainConfig(data=str(data), out_dir=str(run), iterations=1, **{**TINY, "crop": 1024}))
    with pytest.raises(
        TrainingError,
        match=r"--crop 80: .*\(64x64; 36% of each crop would be zero padding; 5 of 5 training scenes are "
        r"smaller than the crop\); expected at most 64",
    ):
        train(TrainConfig(data=str(data), out_dir=str(run), iterations=1, **{**TINY, "crop": 80}))
    assert not run.exists()


def test_a_later_smaller_scene_is_refused_before_the_run_folder_is_made(data, tmp_path):
    """Only the first scene's size was checked: a mixed folder whose fourth scene is 40x40 trained
    --crop 48 on zero-padded crops of it. Every scene's rgb.png header is read now."""
    import shutil

    import cv2

    mixed = tmp_path / "mixed"
    shutil.copytree(data, mixed)
    small = sorted((mixed / "scenes").iterdir())[3]
    for name in ("rgb", "depth", "labels", "boundaries", "occlusions"):
        image = cv2.imread(str(small / f"{name}.png"), cv2.IMREAD_UNCHANGED)
        cv2.imwrite(str(small / f"{name}.png"), cv2.resize(image, (40, 40), interpolation=cv2.INTER_NEAREST))
    meta = json.loads((small / "scene.json").read_text())
    (small / "scene.json").write_text(json.dumps({**meta, "width": 40, "height": 40}))
    run = tmp_path / "run"
    with pytest.raises(
        TrainingError,
        match=rf"--crop 48: larger than the training frame {small / 'rgb.png'} \(40x40; 31% of each crop "
        r"would be zero padding; 1 of 5 training scenes are smaller than the crop\); expected at most 32",
    ):
        train(TrainConfig(data=str(mixed), out_dir=str(run), iterations=1, **{**TINY, "crop": 48}))
    assert not run.exists()
    summary = train(TrainConfig(data=str(mixed), out_dir=str(run), iterations=1, **TINY))  # --crop 32 fits
    assert summary["iterations"] == 1


def test_setting_up_a_run_decodes_no_image(data, tmp_path, monkeypatch):
    """The crop check decoded the first scene's rgb.png and the loader then decoded it again;
    the crop check reads PNG headers, so setting up an RGB run decodes nothing."""
    import cv2

    from bicameral.train import Distributed, Trainer

    decoded = []
    imread = cv2.imread
    monkeypatch.setattr(cv2, "imread", lambda path, *flags: decoded.append(path) or imread(path, *flags))
    trainer = Trainer(
        TrainConfig(data=str(data), out_dir=str(tmp_path / "run"), iterations=1, **TINY), Distributed()
    )
    trainer.writer.close()
    assert decoded == []


def test_loader_workers_do_not_inherit_opencvs_thread_pool(data, tmp_path):
    """A worker forked from this process inherited OpenCV's thread pool mid-use and hung in its
    first cv2.setNumThreads (seen in CI: the whole suite stopped at a resume test): workers now
    start from a forkserver. A run with two workers trains while another thread keeps OpenCV's
    pool busy, as a decode or resize in the training process would."""
    import threading

    import cv2
    import numpy as np

    from bicameral.data import MikadoScenes, list_scenes
    from bicameral.train import Distributed, _loader

    loader = _loader(
        MikadoScenes(list_scenes(data), crop=32),
        2,
        True,
        2,
        Distributed(),
        torch.device("cpu"),
        0,
        drop_last=True,
    )
    assert loader.multiprocessing_context.get_start_method() == "forkserver"
    busy = threading.Event()
    image = np.random.default_rng(0).random((1500, 1500), np.float32)

    def keep_opencv_busy() -> None:
        while not busy.is_set():
            cv2.GaussianBlur(image, (31, 31), 5)

    thread = threading.Thread(target=keep_opencv_busy, daemon=True)
    thread.start()
    try:
        config = TrainConfig(
            data=str(data), out_dir=str(tmp_path / "run"), iterations=3, **{**TINY, "workers": 2}
        )
        assert train(config)["iterations"] == 3
    finally:
        busy.set()
        thread.join(timeout=10)


def test_validating_on_the_training_set_is_said(data, caplog):
    """--val-data equal to --data (however spelled) makes best.pt the best fit to the training
    scenes: allowed (an overfitting check), but said."""
    from bicameral.train import split_scenes

    config = TrainConfig(data=str(data), out_dir="unused", iterations=1, val_data=str(data) + "/.")
    with caplog.at_level("WARNING", logger="bicameral.train"):
        split_scenes(config)
    assert "is --data: validation scores the training scenes" in caplog.text
