"""Dataset files: format, determinism, shards, resume, COCO, stats, preview and the CLI."""

import hashlib
import json
import os
import subprocess
import sys
from pathlib import Path

import cv2
import numpy as np
import pytest
from pycocotools.coco import COCO

from edge.cli import main as binpick
from mikado.generate import Job, make_scene, parse_shard, pending, prepare_dataset, scene_seed
from mikado.io import read_scene, scene_dir

REPO = Path(__file__).resolve().parents[1]
TINY = ["--width", "96", "--height", "64", "--instances", "4-5", "--no-progress"]


def digest(root: Path) -> dict[str, str]:
    return {
        str(p.relative_to(root)): hashlib.sha256(p.read_bytes()).hexdigest()
        for p in sorted(root.rglob("*"))
        if p.is_file()
    }


def run_cli(*args: str, timeout: float = 120) -> subprocess.CompletedProcess:
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    return subprocess.run(
        [sys.executable, "-m", "edge", "mikado", *args],
        capture_output=True,
        text=True,
        timeout=timeout,
        env=env,
    )


def generate(out: Path, *extra: str) -> int:
    """`binpick mikado generate` of the module's dataset (3 tiny mikado+ scenes) into `out`."""
    return binpick(
        ["mikado", "generate", "--preset", "mikado+", "--count", "3", "--out", str(out), "--workers", "1",
         *extra, *TINY]
    )  # fmt: skip


@pytest.fixture(scope="module")
def dataset(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("mk") / "ds"
    assert generate(out) == 0
    return out


def test_scene_files_follow_the_contract(dataset):
    info = json.loads((dataset / "dataset.json").read_text())
    assert info["preset"] == "mikado+" and info["count"] == 3 and info["width"] == 96
    d = scene_dir(dataset, 1)
    for name in ("rgb.png", "depth.png", "labels.png", "boundaries.png", "occlusions.png", "scene.json"):
        assert (d / name).is_file(), name
    assert cv2.imread(str(d / "depth.png"), cv2.IMREAD_UNCHANGED).dtype == np.uint16
    assert cv2.imread(str(d / "labels.png"), cv2.IMREAD_UNCHANGED).dtype == np.uint16
    b = cv2.imread(str(d / "boundaries.png"), cv2.IMREAD_UNCHANGED)
    assert b.dtype == np.uint8 and set(np.unique(b)) <= {0, 255}
    meta = json.loads((d / "scene.json").read_text())
    assert meta["seed"] == scene_seed(0, 1) and meta["depth_scale_m"] == 0.0001
    assert np.array(meta["camera"]["K"]).shape == (3, 3)
    assert np.array(meta["camera"]["T_world_camera"]).shape == (4, 4)
    for inst in meta["instances"]:
        assert {"id", "family", "pose", "occlusion_rate", "visible_px", "amodal_px", "deformation"} <= set(
            inst
        )
        assert (d / "masks" / f"visible_{inst['id']}.png").is_file()
        assert (d / "masks" / f"amodal_{inst['id']}.png").is_file()
    s = read_scene(d, masks=True)
    assert abs(s["depth_m"][s["labels"] > 0].mean() - meta["camera"]["T_world_camera"][2][3]) < 1.0
    for inst in meta["instances"]:
        assert s["visible"][inst["id"]].sum() == inst["visible_px"]


def test_coco_file_loads_with_pycocotools(dataset):
    coco = COCO(str(dataset / "annotations_coco.json"))
    assert len(coco.getImgIds()) == 3
    ann = coco.loadAnns(coco.getAnnIds(imgIds=[2]))[0]
    img = coco.loadImgs([2])[0]
    labels = cv2.imread(
        str(dataset / img["file_name"]).replace("rgb.png", "labels.png"), cv2.IMREAD_UNCHANGED
    )
    np.testing.assert_array_equal(coco.annToMask(ann) > 0, labels == ann["instance_id"])


def test_same_seed_gives_identical_files_whatever_the_worker_count(dataset, tmp_path):
    other = tmp_path / "again"
    proc = run_cli(
        "generate", "--preset", "mikado+", "--count", "3", "--out", str(other), "--workers", "2", *TINY
    )
    assert proc.returncode == 0, proc.stderr
    assert digest(other) == digest(dataset)


def test_shards_partition_the_dataset_and_resume_skips_finished_scenes(tmp_path):
    assert parse_shard("1/3") == (1, 3)
    for bad in ("3/3", "a/b", "1", "-1/2"):
        with pytest.raises(ValueError, match="shard"):
            parse_shard(bad)
    job = Job(str(tmp_path / "ds"), "mikado", 7, 64, 48, {"instances": (3, 3)})
    shards = [pending(job, 10, (k, 3), resume=True) for k in range(3)]
    assert sorted(sum(shards, [])) == list(range(10))
    prepare_dataset(job, 10)
    make_scene(job, 4)
    assert 4 not in pending(job, 10, (1, 3), resume=True)
    assert 4 in pending(job, 10, (1, 3), resume=False)
    with pytest.raises(ValueError, match="another dataset"):
        prepare_dataset(Job(job.dataset, "mikado+", 7, 64, 48, {}), 10)


def test_stats_and_preview(dataset, tmp_path, capsys):
    assert binpick(["mikado", "stats", str(dataset), "--json"]) == 0
    stats = json.loads(capsys.readouterr().out)
    assert stats["scenes"] == 3
    assert 0 < stats["background_fraction"]["mean"] < 1
    assert stats["thesis"]["mikado+"]["instances"] == 31.5
    sheet = tmp_path / "sheet.png"
    assert (
        binpick(["mikado", "preview", str(dataset), "--out", str(sheet), "--columns", "2", "--tile", "48"])
        == 0
    )
    img = cv2.imread(str(sheet))
    assert img.shape[1] == 96 and img.shape[0] == 2 * 32
    blue = (img[..., 0] == 255) & (img[..., 1] == 0) & (img[..., 2] == 0)
    assert blue.any()


def test_preview_lists_the_dataset_once(dataset, tmp_path, monkeypatch):
    """The command checked the dataset by listing its scenes, then the sheet listed them again
    (a stat per scene: twice the start-up on a dataset of many scenes)."""
    import mikado.io
    import mikado.preview

    calls = []
    real = mikado.io.list_scenes

    def counted(folder):
        calls.append(folder)
        return real(folder)

    monkeypatch.setattr(mikado.io, "list_scenes", counted)
    monkeypatch.setattr(mikado.preview, "list_scenes", counted)
    assert binpick(["mikado", "preview", str(dataset), "--out", str(tmp_path / "s.png"), "--tile", "32"]) == 0
    assert len(calls) == 1


def test_a_preview_sheet_beyond_the_largest_image_side_is_refused(dataset, tmp_path, capsys):
    """--count x --tile made a sheet of any size (a huge allocation, then a huge PNG); its sides
    are now bounded like a rendered frame's (MAX_IMAGE_SIDE), before any scene is decoded."""
    from mikado.generate import MAX_IMAGE_SIDE

    sheet = tmp_path / "sheet.png"
    for flags, shown, size in (
        (["--count", "1000000", "--columns", "3"], "--count 1000000 --columns 3", "12288x2731"),  # too wide
        (["--columns", "1"], "--count 16 --columns 1", "4096x8193"),  # 3 rows of 96x64: a pixel too high
    ):
        assert (
            binpick(["mikado", "preview", str(dataset), "--out", str(sheet), *flags, "--tile", "4096"]) == 2
        )
        err = capsys.readouterr().err
        expected = f"{shown} --tile 4096: the sheet of 3 scene(s) would be {size} px; expected at most "
        assert expected + f"{MAX_IMAGE_SIDE} px a side" in err, err
        assert len(err.strip().splitlines()) == 1 and not sheet.exists()
    import shutil

    broken = tmp_path / "broken"
    shutil.copytree(dataset, broken)
    scene_json = scene_dir(broken, 1) / "scene.json"
    meta = json.loads(scene_json.read_text())
    for width, message in (
        ("wide", f"{scene_json}: 'width' is 'wide', expected a whole number of pixels >= 1"),
        (48, f"{scene_dir(broken, 1) / 'rgb.png'}: 96x64 px, expected scene.json's 48x64"),
    ):
        scene_json.write_text(json.dumps({**meta, "width": width}))
        assert binpick(["mikado", "preview", str(broken), "--out", str(sheet)]) == 2
        assert message in capsys.readouterr().err
        assert not sheet.exists()


def test_user_errors_are_one_line(tmp_path):
    proc = run_cli("generate", "--count", "2", "--out", str(tmp_path / "x"), "--shard", "2/2")
    assert proc.returncode == 2 and "shard" in proc.stderr and "Traceback" not in proc.stderr
    proc = run_cli("generate", "--count", "2", "--out", str(tmp_path / "x"), "--preset", "nope")
    assert proc.returncode == 2 and "unknown preset" in proc.stderr
    proc = run_cli(
        "generate", "--count", "2", "--out", str(tmp_path / "x"), "--textures", str(tmp_path / "none")
    )
    assert proc.returncode == 2 and f"--textures {tmp_path / 'none'}: does not exist" in proc.stderr
    proc = run_cli("stats", str(tmp_path))
    assert proc.returncode == 2 and "not a Mikado dataset" in proc.stderr
    proc = run_cli("preview", str(tmp_path), "--tile", "100000", "--out", str(tmp_path / "pv.png"))
    assert proc.returncode == 2 and "--tile 100000: expected 16..4096 px" in proc.stderr
    proc = run_cli("stats", str(tmp_path / "nowhere"))
    assert proc.returncode == 2 and f"{tmp_path / 'nowhere'}: no such folder" in proc.stderr
    (tmp_path / "file").write_text("kept\n")
    proc = run_cli("generate", "--count", "2", "--out", str(tmp_path / "file"))
    assert proc.returncode == 2 and f"--out {tmp_path / 'file'}: is a file, expected a folder" in proc.stderr
    assert (tmp_path / "file").read_text() == "kept\n"


@pytest.mark.parametrize("flag", ["--textures", "--backgrounds"])
def test_a_file_that_is_no_image_is_refused_before_any_scene(tmp_path, flag):
    """Every user image is decoded up front: a '.png' that is not one stopped a run only when a
    scene first drew it (a traceback, hours in, a partial dataset)."""
    folder = tmp_path / "images"
    folder.mkdir()
    cv2.imwrite(str(folder / "a.png"), np.full((20, 30, 3), 128, np.uint8))
    (folder / "b165.png").write_bytes(b"not an image at all")
    good = cv2.imencode(".png", np.full((20, 30, 3), 9, np.uint8))[1].tobytes()
    (folder / "c.png").write_bytes(good[: len(good) // 2])  # a valid header, a truncated body
    out = tmp_path / "ds"
    proc = run_cli("generate", "--count", "2", "--out", str(out), "--workers", "2", flag, str(folder))
    assert proc.returncode == 2 and "Traceback" not in proc.stderr
    assert f"{flag} {folder}: cannot read image {folder / 'b165.png'} (and 1 more)" in proc.stderr
    assert not out.exists()


def test_user_texture_folders_are_used(tmp_path):
    prints = tmp_path / "prints"
    prints.mkdir()
    cv2.imwrite(str(prints / "red.png"), np.full((20, 30, 3), (0, 0, 255), np.uint8))
    import mikado

    s = mikado.render_pile(2, "mikado", 64, 64, instances=(3, 3), n_textures=0, texture_dirs=(str(prints),))
    assert all(i["texture"].endswith("red.png") for i in s.params["instances"])
    fg = s.rgb[s.labels > 0].astype(int)
    assert (fg[:, 0] > fg[:, 2]).mean() > 0.8  # red prints stay red under the lights


def test_sharded_generation_equals_unsharded_then_coco_indexes_all(dataset, tmp_path, capsys):
    out = tmp_path / "sharded"
    for shard in ("1/2", "0/2"):
        assert generate(out, "--shard", shard) == 0
    assert not (out / "annotations_coco.json").exists()
    assert digest(out / "scenes") == digest(dataset / "scenes")
    assert binpick(["mikado", "coco", str(out)]) == 0
    assert (out / "annotations_coco.json").read_bytes() == (dataset / "annotations_coco.json").read_bytes()


def test_corrupt_json_and_bad_numbers_are_one_line_errors_naming_the_file(dataset, tmp_path, capsys):
    import shutil

    broken = tmp_path / "broken"
    shutil.copytree(dataset, broken)
    scene_json = scene_dir(broken, 1) / "scene.json"
    scene_json.write_text("{truncated")
    for argv in (
        ["stats", str(broken)],
        ["coco", str(broken)],
        ["preview", str(broken), "--out", str(tmp_path / "p.png")],
    ):
        assert binpick(["mikado", *argv]) == 2
        assert f"{scene_json}: not valid JSON" in capsys.readouterr().err, argv
    meta = json.loads((scene_dir(dataset, 1) / "scene.json").read_text())
    for instances, message, commands in (
        (
            [{k: v for k, v in meta["instances"][0].items() if k != "visible_px"}],
            "instances[0] has no visible_px",
            ("stats", "coco"),
        ),
        ([7], "instances[0] is int, expected an object", ("stats", "coco")),
        ({"id": 1}, "'instances' is dict, expected a list", ("stats", "coco")),
        (  # only COCO has a category per family
            [{**meta["instances"][0], "visible_px": 1, "family": "banana"}],
            "instances[0] has family 'banana'; expected one of ['folded_pouch',",
            ("coco",),
        ),
    ):
        scene_json.write_text(json.dumps({**meta, "instances": instances}))
        for command in commands:
            assert binpick(["mikado", command, str(broken)]) == 2
            assert f"{scene_json}: {message}" in capsys.readouterr().err, command
    scene_json.write_text('{"width": 96}')
    assert binpick(["mikado", "stats", str(broken)]) == 2
    assert f"{scene_json}: missing key(s) height, seed, depth_scale_m, instances" in capsys.readouterr().err
    (broken / "dataset.json").write_text("[1, 2]")
    assert generate(broken) == 2
    assert f"{broken / 'dataset.json'}: expected a JSON object, got list" in capsys.readouterr().err
    info = json.loads((dataset / "dataset.json").read_text())
    for count in (None, "abc", -3, 2.5):
        (broken / "dataset.json").write_text(json.dumps({**info, "count": count}))
        assert generate(broken) == 2
        message = f"{broken / 'dataset.json'}: 'count' is {count!r}, expected a whole number of scenes >= 0"
        assert message in capsys.readouterr().err
    assert binpick(["mikado", "preview", str(dataset), "--out", str(tmp_path / "sheet.txt")]) == 2
    assert "--out" in capsys.readouterr().err and not (tmp_path / "sheet.txt").exists()
    bad_numbers = [
        (["--count", "1000001"], "--count 1000001: expected 1..1000000 (scene folders have 6 digits)"),
        (["--seed", "-1"], "--seed -1: expected a number >= 0"),
        (["--heterogeneous", "nan"], "--heterogeneous nan: expected a probability in 0..1"),
        (["--heterogeneous", "5"], "--heterogeneous 5.0: expected a probability"),
        (["--families", ","], "families: none given; expected one or more of"),
    ]
    for extra, message in bad_numbers:
        assert generate(tmp_path / "new", *extra) == 2
        assert message in capsys.readouterr().err
        assert not (tmp_path / "new").exists()


def _generate_until_a_scene_is_written(out: Path, count: int = 300, workers: int = 2) -> subprocess.Popen:
    """A real `generate` of `count` small scenes into `out` on `workers` processes, returned once
    its first scene is on disk (or it ended, or 90 s passed): the moment the signal and worker
    tests act. A process group of its own, as a terminal's or a scheduler's job has, with SIGINT
    at its default (a test run started in the background has it ignored, which exec keeps)."""
    import signal
    import time

    proc = subprocess.Popen(
        [sys.executable, "-m", "edge", "mikado", "generate", "--count", str(count), "--out", str(out),
         "--workers", str(workers), "--no-progress", "--width", "32", "--height", "32",
         "--instances", "2-2"],
        env={**os.environ, "PYTHONPATH": str(REPO)},
        stderr=subprocess.PIPE,
        text=True,
        start_new_session=True,
        preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL),
    )  # fmt: skip
    deadline = time.monotonic() + 90
    while not scene_dir(out, 0).exists() and time.monotonic() < deadline and proc.poll() is None:
        time.sleep(0.05)
    return proc


def test_ctrl_c_says_how_many_scenes_are_finished_and_that_the_same_command_resumes(tmp_path):
    """Ctrl-C ended generate with exit 130 and no word: nothing said whether the folder was
    usable or what to run next. Sent to the process group, as a terminal does, once the first
    scene is on disk; the line's count is the scene folders left."""
    import signal

    out = tmp_path / "with space"
    proc = _generate_until_a_scene_is_written(out, count=500, workers=1)
    os.killpg(proc.pid, signal.SIGINT)
    _, err = proc.communicate(timeout=60)
    assert proc.returncode == 130, err
    finished = len([p for p in (out / "scenes").iterdir() if not p.name.startswith(".")])
    assert 1 <= finished < 500
    assert (
        f"mikado: interrupted; {finished} of the 500 scene(s) in {out} are finished "
        "(unfinished ones leave no scene folder); the same command resumes"
    ) in err
    assert "Traceback" not in err


@pytest.mark.parametrize("failure", [KeyboardInterrupt, OSError])
def test_a_scene_interrupted_while_written_leaves_no_temporary_folder(tmp_path, monkeypatch, failure):
    """Ctrl-C or a full disk half-way through a scene's PNGs left its hidden `.NNNNNN.tmpPID`
    folder for good (the next run has another pid): megabytes per interruption."""
    import mikado
    import mikado.io as mikado_io

    scene = mikado.render_pile(3, "mikado", 32, 32, instances=(2, 2))
    real_png = mikado_io.write_image
    written: list[Path] = []

    def png_then_fail(path: Path, img: np.ndarray, *args: object) -> None:
        if len(written) == 3:
            raise failure("stopped while writing")
        real_png(path, img, *args)
        written.append(path)

    monkeypatch.setattr(mikado_io, "write_image", png_then_fail)
    with pytest.raises(failure):
        mikado_io.write_scene(scene, tmp_path, 0)
    assert written and all(not p.exists() for p in written)
    assert list((tmp_path / "scenes").iterdir()) == []
    monkeypatch.setattr(mikado_io, "write_image", real_png)
    assert mikado_io.write_scene(scene, tmp_path, 0) == scene_dir(tmp_path, 0)
    assert [p.name for p in (tmp_path / "scenes").iterdir()] == ["000000"]


def test_coco_of_an_unfinished_dataset_says_how_many_scenes_it_indexes(dataset, tmp_path, capsys):
    """docs/training.md: a dataset with fewer finished scenes than dataset.json announces is
    indexed as it is, with a line saying so; `coco` wrote the index of 2 of 3 scenes silently."""
    import shutil

    partial = tmp_path / "partial"
    shutil.copytree(dataset, partial)
    shutil.rmtree(scene_dir(partial, 2))
    assert binpick(["mikado", "coco", str(partial)]) == 0
    err = capsys.readouterr().err
    assert f"mikado: {partial}: 2 of the 3 scenes its dataset.json announces are finished" in err
    assert len(json.loads((partial / "annotations_coco.json").read_text())["images"]) == 2
    assert binpick(["mikado", "coco", str(dataset)]) == 0
    assert capsys.readouterr().err == ""


def _workers_of(pid: int) -> list[int]:
    """The spawned worker processes of `pid` (Linux /proc; the resource tracker left out)."""
    children = Path(f"/proc/{pid}/task/{pid}/children").read_text().split()
    return [
        int(child)
        for child in children
        if b"multiprocessing-fork" in Path(f"/proc/{child}/cmdline").read_bytes()
    ]


def test_a_worker_that_dies_ends_the_run_in_one_line_instead_of_a_hang(tmp_path):
    """A worker killed mid-run (the out-of-memory killer, a crash in the renderer): the pool
    replaced it, its scene was never made and the command waited for it for ever."""
    import signal

    out = tmp_path / "ds"
    proc = _generate_until_a_scene_is_written(out)
    try:
        os.kill(_workers_of(proc.pid)[0], signal.SIGKILL)
        _, err = proc.communicate(timeout=60)
    finally:
        proc.kill()
    assert proc.returncode == 2, err
    assert "binpick mikado: error: a worker process ended abruptly (killed, out of memory or crashed)" in err
    assert "the finished scenes are kept and the same command resumes" in err
    assert "Traceback" not in err


@pytest.mark.parametrize(
    ("limit", "failing_file"),
    [(100, "dataset.json"), (4000, "rgb.png")],  # dataset.json is ~250 bytes, rgb.png ~20 KB
)
def test_a_full_disk_is_one_line_naming_the_file_and_leaves_no_temporary_file(tmp_path, limit, failing_file):
    """A file-size limit makes writes fail as a full disk does (EFBIG instead of ENOSPC). Before:
    "error: File too large" or "[Errno 28] No space left on device" naming no file, a libpng line
    beside it, and dataset.json's temporary file left behind."""
    import resource
    import signal

    def limit_file_size() -> None:
        signal.signal(signal.SIGXFSZ, signal.SIG_IGN)  # the write fails instead of killing
        resource.setrlimit(resource.RLIMIT_FSIZE, (limit, limit))

    out = tmp_path / "ds"
    proc = subprocess.run(
        [sys.executable, "-m", "edge", "mikado", "generate", "--count", "2", "--out", str(out),
         "--workers", "1", *TINY],
        env={**os.environ, "PYTHONPATH": str(REPO)},
        capture_output=True,
        text=True,
        timeout=120,
        preexec_fn=limit_file_size,
    )  # fmt: skip
    assert proc.returncode == 2
    error = proc.stderr.strip().splitlines()[-1]
    assert error.startswith("binpick mikado: error: ") and "Traceback" not in proc.stderr
    assert error.split(": ")[2].endswith(failing_file), error
    assert ": File too large" in error and "libpng" not in proc.stderr
    hidden = [p for p in out.rglob(".*")]
    assert hidden == [], hidden


def test_a_preview_that_cannot_be_written_keeps_the_previous_sheet(dataset, tmp_path):
    """cv2.imwrite truncated the existing sheet before writing: on a full disk (here a file-size
    limit below the sheet's size) the previous preview was lost."""
    import resource
    import signal

    sheet = tmp_path / "sheet.png"
    assert binpick(["mikado", "preview", str(dataset), "--out", str(sheet)]) == 0
    before = sheet.read_bytes()
    limit = len(before) // 2

    def limit_file_size() -> None:
        signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
        resource.setrlimit(resource.RLIMIT_FSIZE, (limit, limit))

    proc = subprocess.run(
        [sys.executable, "-m", "edge", "mikado", "preview", str(dataset), "--out", str(sheet)],
        env={**os.environ, "PYTHONPATH": str(REPO)},
        capture_output=True,
        text=True,
        timeout=120,
        preexec_fn=limit_file_size,
    )
    assert proc.returncode == 2
    assert proc.stderr == f"binpick mikado: error: {sheet}: File too large\n"
    assert sheet.read_bytes() == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["sheet.png"]


def _running(pid: int) -> bool:
    """Whether `pid` is a live process (a zombie waiting for its reaper is not)."""
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0] != "Z"
    except FileNotFoundError:
        return False


@pytest.mark.parametrize("stop", ["terminate", "terminate the group", "kill"])
def test_workers_end_when_generate_is_terminated_or_killed(tmp_path, stop):
    """SIGTERM (`kill`; a batch scheduler's time limit or systemd signal the whole process group)
    ends generate with the same line as Ctrl-C, exit 143 and no half-written scene; a killed
    generate (SIGKILL, nothing runs) leaves its workers to notice the parent is gone. The
    ProcessPoolExecutor's workers waited for work for ever after their parent died, each holding
    its GL context and memory."""
    import signal
    import time

    out = tmp_path / "ds"
    proc = _generate_until_a_scene_is_written(out)
    try:
        workers = _workers_of(proc.pid)
        assert len(workers) == 2
        if stop == "kill":
            proc.kill()
        elif stop == "terminate":
            proc.terminate()
        else:
            os.killpg(proc.pid, signal.SIGTERM)
        _, err = proc.communicate(timeout=60)
        if stop != "kill":
            assert proc.returncode == 128 + signal.SIGTERM, err
            finished = len([p for p in (out / "scenes").iterdir() if not p.name.startswith(".")])
            assert f"mikado: terminated; {finished} of the 300 scene(s) in {out} are finished" in err
            assert "Traceback" not in err
        deadline = time.monotonic() + 20
        while any(_running(w) for w in workers) and time.monotonic() < deadline:
            time.sleep(0.1)
        left = [w for w in workers if _running(w)]
        if stop != "kill":  # the workers finished or removed the scenes they held
            assert not [p for p in (out / "scenes").iterdir() if p.name.startswith(".")]
    finally:
        proc.kill()
    for worker in left:  # before the change: clean up what the test found
        os.kill(worker, signal.SIGKILL)
    assert left == []


@pytest.mark.parametrize("unfinished", [False, True])
def test_coco_of_a_dataset_without_a_finished_scene_is_refused_and_keeps_the_file(
    dataset, tmp_path, capsys, unfinished
):
    """`coco` on an empty scenes/ folder (or one holding only a scene still being written) wrote
    an index of 0 images over the previous one and exited 0."""
    import shutil

    empty = tmp_path / "empty"
    (empty / "scenes").mkdir(parents=True)
    shutil.copy(dataset / "dataset.json", empty)
    if unfinished:  # a scene folder without its scene.json: not finished
        shutil.copytree(scene_dir(dataset, 0), scene_dir(empty, 0))
        (scene_dir(empty, 0) / "scene.json").unlink()
    previous = empty / "annotations_coco.json"
    previous.write_text("{}\n")
    assert binpick(["mikado", "coco", str(empty)]) == 2
    err = capsys.readouterr().err
    assert f"{empty / 'scenes'}: no finished scene" in err, err
    assert len(err.strip().splitlines()) == 1
    assert previous.read_text() == "{}\n"


def test_the_scenes_folder_given_for_the_dataset_names_the_dataset(dataset, capsys):
    """`binpick mikado stats DS/scenes` (likewise preview, coco) said only "not a Mikado dataset";
    it now asks "did you mean DS?" since DS has a dataset.json."""
    for action in ("stats", "coco", "preview"):
        assert binpick(["mikado", action, str(dataset / "scenes")]) == 2
        err = capsys.readouterr().err
        expected = f"not a Mikado dataset (no scenes/ directory); did you mean {dataset}?"
        assert err.strip().endswith(expected), err
        assert len(err.strip().splitlines()) == 1


def test_stats_of_an_unfinished_dataset_says_how_many_scenes_it_covers(dataset, tmp_path, capsys):
    """`stats` printed the figures of 2 of 3 scenes as the dataset's without a word, while coco,
    train and eval say so (mikado.io.incomplete_note); the line goes to stderr, --json stays JSON."""
    import shutil

    partial = tmp_path / "partial"
    shutil.copytree(dataset, partial)
    shutil.rmtree(scene_dir(partial, 2))
    assert binpick(["mikado", "stats", str(partial), "--json"]) == 0
    out, err = capsys.readouterr()
    assert json.loads(out)["scenes"] == 2
    assert f"mikado: {partial}: 2 of the 3 scenes its dataset.json announces are finished" in err, err
    assert binpick(["mikado", "stats", str(dataset)]) == 0
    assert capsys.readouterr().err == ""


def test_a_file_given_as_the_dataset_is_named_as_the_dataset(dataset, tmp_path, capsys):
    """`preview FILE` blamed "--out FILE/preview.png" although no --out was given; the DATASET
    argument is checked first and named (stats and coco say the same)."""
    afile = tmp_path / "afile"
    afile.write_text("not a dataset\n")
    for action in ("preview", "stats", "coco"):
        assert binpick(["mikado", action, str(afile)]) == 2
        err = capsys.readouterr().err
        assert err.strip().endswith(f"{afile}: is a file, expected a Mikado dataset folder"), err
        assert "--out" not in err and len(err.strip().splitlines()) == 1
    assert binpick(["mikado", "preview", str(dataset / "dataset.json")]) == 2
    err = capsys.readouterr().err
    assert err.strip().endswith(f"is a file, expected a Mikado dataset folder; did you mean {dataset}?"), err
