"""Dataset generation: deterministic by seed, shardable, parallel, resumable.

Scene i of a dataset with base seed S gets the seed SeedSequence([S, i]) -> one 63-bit
integer, so any machine can make any scene alone: `--shard k/N` takes the scenes with
i % N == k, with no coordination between shards (batch array jobs, several machines). Local
workers are separate processes (spawned, not forked: an OpenGL context must not be shared),
each with its own GL context. A scene directory appears only when complete (see mikado.io),
so resuming skips exactly the finished scenes.
"""

from __future__ import annotations

import json
import multiprocessing as mp
import os
import signal
import threading
import time
from collections.abc import Iterator
from concurrent.futures import FIRST_COMPLETED, ProcessPoolExecutor, wait
from concurrent.futures.process import BrokenProcessPool
from dataclasses import dataclass, field
from itertools import islice
from pathlib import Path

import numpy as np

from mikado.io import DEPTH_SCALE_M, is_complete, read_json, scene_dir, write_json_atomic
from mikado.presets import PRESETS, get_preset

GENERATOR_VERSION = "1"
# Image sides a Mikado camera renders (px): the largest is 8192 x 8192 RGB-D, ~1 GB of frame and
# ground-truth arrays; beyond that a typing error would end in an out-of-memory error.
MIN_IMAGE_SIDE = 16
MAX_IMAGE_SIDE = 8192


def scene_seed(base_seed: int, index: int) -> int:
    """Seed of scene `index`: independent streams per scene, stable across machines."""
    return int(
        np.random.SeedSequence([int(base_seed), int(index)]).generate_state(2, np.uint64)[0] >> np.uint64(1)
    )


def parse_shard(text: str | None) -> tuple[int, int]:
    """'k/N' (0 <= k < N) -> (k, N); None -> (0, 1)."""
    if text is None:
        return 0, 1
    try:
        k, n = (int(v) for v in text.split("/"))
    except ValueError:
        raise ValueError(f"--shard {text!r}: expected k/N with integers, e.g. 0/4") from None
    if n < 1 or not 0 <= k < n:
        raise ValueError(f"--shard {text!r}: expected 0 <= k < N (shards are numbered from 0)")
    return k, n


@dataclass
class Job:
    dataset: str
    preset: str
    base_seed: int
    width: int
    height: int
    overrides: dict = field(default_factory=dict)


def _dataset_info(job: Job, count: int) -> dict:
    return {
        "preset": job.preset,
        "count": count,
        "base_seed": job.base_seed,
        "generator_version": GENERATOR_VERSION,
        "width": job.width,
        "height": job.height,
        "overrides": job.overrides,
        "scene_seed": "SeedSequence([base_seed, index]) -> uint64 >> 1",
        "depth_scale_m": DEPTH_SCALE_M,
    }


def prepare_dataset(job: Job, count: int) -> None:
    """Create DATASET/dataset.json, or check that an existing one describes the same dataset."""
    root = Path(job.dataset)
    root.mkdir(parents=True, exist_ok=True)
    info_path = root / "dataset.json"
    info = _dataset_info(job, count)
    if info_path.exists():
        old = read_json(info_path)
        keys = ("preset", "base_seed", "width", "height", "overrides", "generator_version")
        diff = [k for k in keys if old.get(k) != json.loads(json.dumps(info[k]))]
        if diff:
            raise ValueError(
                f"{info_path} describes another dataset ({', '.join(f'{k}={old.get(k)!r}' for k in diff)}); "
                "use another --out or the same options"
            )
        info["count"] = max(count, _recorded_count(info_path, old))
    write_json_atomic(info_path, info)


def _recorded_count(info_path: Path, info: dict) -> int:
    """The scene count an existing dataset.json records (0 when absent), or one ValueError naming
    the file, key and value: a hand-edited `"count": null` ended in a TypeError traceback and
    `"count": "abc"` in int()'s message, which names neither the file nor the key."""
    value = info.get("count", 0)
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        raise ValueError(f"{info_path}: 'count' is {value!r}, expected a whole number of scenes >= 0")
    return value


_WORKER_JOB: Job | None = None
_IN_SCENE = False  # this worker is making a scene (SIGTERM then cleans up before it exits)


class _WorkerTerminated(BaseException):
    """SIGTERM reached a worker making a scene: raised through write_scene, whose cleanup removes
    the scene's temporary folder, then the worker exits (`_worker`)."""


def _on_sigterm(_signum: int, _frame: object) -> None:
    """A scheduler's time limit or systemd signals the whole process group, and the pool
    terminates its workers when one died: exit at once, but not with a half-written scene's
    temporary folder left (SIGTERM's default action). Exiting, never carrying on, keeps the
    pool's own terminate-and-join from waiting on a worker that ignored it."""
    if _IN_SCENE:
        raise _WorkerTerminated
    os._exit(128 + signal.SIGTERM)


def _init_worker(job: Job, parent: int) -> None:
    global _WORKER_JOB
    _WORKER_JOB = job
    signal.signal(signal.SIGTERM, _on_sigterm)
    # the parent's pid comes from the parent: read here, after the spawn, it could already be
    # init's (the parent killed meanwhile) and the watch would then wait for ever
    threading.Thread(target=_exit_with_parent, args=(parent,), daemon=True).start()
    # One worker per core: keep each worker's software rasteriser (llvmpipe) to one thread
    # instead of every worker starting a thread per core.
    os.environ.setdefault("LP_NUM_THREADS", "1")
    os.environ.setdefault("OMP_NUM_THREADS", "1")


def _exit_with_parent(parent: int, period_s: float = 0.5) -> None:
    """End this worker once `generate` is gone (killed, or SIGTERM from a batch scheduler): a
    ProcessPoolExecutor's workers, unlike multiprocessing.Pool's, otherwise wait for work for ever
    after their parent dies. A scene being written then leaves its hidden temporary folder."""
    while os.getppid() == parent:
        time.sleep(period_s)
    os._exit(1)


def make_scene(job: Job, index: int) -> dict[str, float]:
    """Generate and write scene `index`; returns its timings."""
    from mikado.io import write_scene
    from mikado.pile import render_pile

    cpu0 = time.process_time()
    scene = render_pile(scene_seed(job.base_seed, index), job.preset, job.width, job.height, **job.overrides)
    t0 = time.perf_counter()
    write_scene(scene, Path(job.dataset), index)
    # CPU seconds (all threads of this process): with other jobs on the machine, wall time
    # measures the load as much as Mikado; CPU time per scene does not.
    return {**scene.timings, "write_s": time.perf_counter() - t0, "cpu_s": time.process_time() - cpu0}


def _worker(index: int) -> tuple[int, dict[str, float]]:
    global _IN_SCENE
    assert _WORKER_JOB is not None
    try:
        _IN_SCENE = True
        timings = make_scene(_WORKER_JOB, index)
        _IN_SCENE = False
    except _WorkerTerminated:  # write_scene removed its temporary folder on the way here
        os._exit(128 + signal.SIGTERM)
    return index, timings


def pending(job: Job, count: int, shard: tuple[int, int], resume: bool) -> list[int]:
    k, n = shard
    todo = [i for i in range(count) if i % n == k]
    if resume:
        todo = [i for i in todo if not is_complete(scene_dir(Path(job.dataset), i))]
    return todo


def run(job: Job, indices: list[int], workers: int) -> Iterator[tuple[int, dict[str, float]]]:
    """Yield (index, timings) as scenes finish, using `workers` processes (1 = in process).

    A worker that dies (killed, out of memory, a crash in the renderer) raises RuntimeError
    naming the scene: concurrent.futures reports a broken pool, where multiprocessing.Pool
    replaced the worker, lost its scene and left the command waiting for it for ever. A few
    scenes per worker are queued at a time, so a million-scene --count holds no million futures.
    """
    if workers <= 1 or len(indices) <= 1:
        for i in indices:
            yield i, make_scene(job, i)
        return
    pool = ProcessPoolExecutor(
        workers,
        mp.get_context("spawn"),
        initializer=_init_worker,
        initargs=(job, os.getpid()),
        max_tasks_per_child=200,
    )
    todo = iter(indices)
    running = {pool.submit(_worker, i): i for i in islice(todo, 2 * workers)}
    try:
        while running:
            finished, _ = wait(running, return_when=FIRST_COMPLETED)
            for future in finished:
                index = running.pop(future)
                try:
                    result = future.result()
                except BrokenProcessPool:  # which worker held which scene is not known
                    unfinished = ", ".join(str(i) for i in sorted([index, *running.values()]))
                    raise RuntimeError(
                        f"a worker process ended abruptly (killed, out of memory or crashed) with "
                        f"scene(s) {unfinished} unfinished; the finished scenes are kept and the same "
                        "command resumes"
                    ) from None
                running.update({pool.submit(_worker, i): i for i in islice(todo, 1)})
                yield result
    finally:
        pool.shutdown(wait=True, cancel_futures=True)


def validate_job(preset: str, width: int, height: int, overrides: dict) -> None:
    if preset not in PRESETS:
        raise ValueError(f"unknown preset {preset!r}; expected one of {sorted(PRESETS)}")
    if not (MIN_IMAGE_SIDE <= width <= MAX_IMAGE_SIDE and MIN_IMAGE_SIDE <= height <= MAX_IMAGE_SIDE):
        raise ValueError(
            f"image size {width}x{height}: expected {MIN_IMAGE_SIDE}..{MAX_IMAGE_SIDE} pixels per side"
        )
    get_preset(preset, **overrides)  # raises on unknown fields or bad values
