"""`binpick mikado generate|stats|preview|coco`: synthetic piles with exact ground truth."""

from __future__ import annotations

import argparse
import os
import signal
import sys
import threading
import time
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import TYPE_CHECKING

from binpick_core.errors import CommandError
from edge.atomic_file import check_output

if TYPE_CHECKING:  # generation's modules import the simulator; --help must not
    from mikado.generate import Job


def configure(parser: argparse.ArgumentParser) -> None:
    sub = parser.add_subparsers(dest="mikado_command", metavar="ACTION", required=True)

    gen = sub.add_parser(
        "generate",
        help="generate a dataset of synthetic piles",
        description="Generate Mikado scenes (contracts.md §3) into --out.",
    )
    gen.add_argument("--preset", default="mikado+", help="mikado | mikado+ (default mikado+)")
    gen.add_argument("--count", type=int, required=True, help="number of scenes in the whole dataset")
    gen.add_argument("--out", required=True, help="dataset directory")
    gen.add_argument("--seed", type=int, default=0, help="base seed (default 0)")
    gen.add_argument("--width", type=int, default=640)
    gen.add_argument("--height", type=int, default=512)
    gen.add_argument(
        "--workers", type=int, default=os.cpu_count() or 1, help="local processes (default: all cores)"
    )
    gen.add_argument("--shard", default=None, help="k/N: make only scenes with index %% N == k (0 <= k < N)")
    gen.add_argument("--no-resume", action="store_true", help="regenerate scenes that already exist")
    gen.add_argument("--instances", default=None, help="MIN-MAX dropped instances (overrides the preset)")
    gen.add_argument("--families", default=None, help="comma-separated families (overrides the preset)")
    gen.add_argument("--heterogeneous", type=float, default=None, help="probability of a mixed scene (0..1)")
    gen.add_argument(
        "--textures", action="append", default=[], help="folder of print images (PNG/JPEG); repeatable"
    )
    gen.add_argument(
        "--backgrounds", action="append", default=[], help="folder of background images; repeatable"
    )
    gen.add_argument("--no-progress", action="store_true")

    st = sub.add_parser(
        "stats",
        help="instances, occlusions and background per image",
        description="Dataset statistics as in thesis Figures 3.16 and 5.4.",
    )
    st.add_argument("dataset")
    st.add_argument("--json", action="store_true", help="print JSON instead of a table")

    pv = sub.add_parser(
        "preview",
        help="contact sheet of RGB with boundaries and occluding sides",
        description="Contact sheet: boundaries in blue, occluding (upper) sides in orange.",
    )
    pv.add_argument("dataset")
    pv.add_argument("--out", default=None, help="PNG to write (default DATASET/preview.png)")
    pv.add_argument("--count", type=int, default=16, help="scenes on the sheet (default 16)")
    pv.add_argument("--columns", type=int, default=4)
    pv.add_argument("--tile", type=int, default=320, help="tile width in pixels (16..4096, default 320)")

    co = sub.add_parser(
        "coco",
        help="(re)write DATASET/annotations_coco.json from the scene files",
        description="Index every complete scene into one COCO file (after sharded runs).",
    )
    co.add_argument("dataset")


def _overrides(args: argparse.Namespace) -> dict:
    out: dict = {}
    if args.instances:
        try:
            lo, hi = (int(v) for v in args.instances.split("-"))
        except ValueError:
            raise CommandError(f"--instances {args.instances!r}: expected MIN-MAX, e.g. 15-40") from None
        out["instances"] = (lo, hi)
    if args.families:
        out["families"] = tuple(f.strip() for f in args.families.split(",") if f.strip())
    if args.heterogeneous is not None:
        if not 0.0 <= args.heterogeneous <= 1.0:  # also refuses nan
            raise CommandError(f"--heterogeneous {args.heterogeneous}: expected a probability in 0..1")
        out["heterogeneous"] = args.heterogeneous
    if args.textures:
        out["texture_dirs"] = tuple(str(Path(d).resolve()) for d in args.textures)
    if args.backgrounds:
        out["background_dirs"] = tuple(str(Path(d).resolve()) for d in args.backgrounds)
    return out


def _generate(args: argparse.Namespace) -> int:
    from mikado.coco import write_coco
    from mikado.generate import Job, parse_shard, pending, prepare_dataset, run, validate_job
    from mikado.io import MAX_SCENES, SCENE_DIGITS
    from mikado.textures import check_images, list_images

    if not 1 <= args.count <= MAX_SCENES:
        # --count 100000000 was recorded in dataset.json (which keeps the largest count ever
        # given), then ended in a MemoryError traceback listing the scenes to make.
        raise CommandError(
            f"--count {args.count}: expected 1..{MAX_SCENES} (scene folders have {SCENE_DIGITS} digits)"
        )
    if args.workers < 1:
        raise CommandError(f"--workers {args.workers}: expected at least 1")
    if args.seed < 0:  # numpy's SeedSequence refuses it, but only after dataset.json is written
        raise CommandError(f"--seed {args.seed}: expected a number >= 0")
    check_output("--out", args.out, folder=True)
    overrides = _overrides(args)
    try:
        shard = parse_shard(args.shard)
        validate_job(args.preset, args.width, args.height, overrides)
        for flag, folders in (("--textures", args.textures), ("--backgrounds", args.backgrounds)):
            for folder in folders:
                check_images(list_images(folder, f"{flag} {folder}"), f"{flag} {folder}", args.workers)
    except (ValueError, FileNotFoundError) as exc:
        raise CommandError(str(exc)) from None
    job = Job(str(Path(args.out)), args.preset, args.seed, args.width, args.height, overrides)
    try:
        prepare_dataset(job, args.count)
    except ValueError as exc:
        raise CommandError(str(exc)) from None
    todo = pending(job, args.count, shard, resume=not args.no_resume)
    total_in_shard = len(range(shard[0], args.count, shard[1]))
    print(
        f"mikado: {len(todo)} scene(s) to make ({total_in_shard - len(todo)} already done) "
        f"in {args.out}, preset {args.preset}, {args.width}x{args.height}, {args.workers} worker(s)",
        file=sys.stderr,
    )
    t0 = time.perf_counter()
    done = 0
    bar = None
    if not args.no_progress:
        from tqdm import tqdm

        bar = tqdm(total=len(todo), unit="scene", dynamic_ncols=True)
    try:
        with _terminate_as_exception():
            for _index, _timings in _checked(run(job, todo, min(args.workers, max(1, len(todo))))):
                done += 1
                if bar is not None:
                    bar.update(1)
                    bar.set_postfix_str(f"{done / (time.perf_counter() - t0):.2f} scenes/s")
    except (KeyboardInterrupt, _Terminated) as stop:
        if bar is not None:
            bar.close()
            bar = None
        terminated = isinstance(stop, _Terminated)
        _say_interrupted(job, args, shard, total_in_shard, "terminated" if terminated else "interrupted")
        if terminated:
            return 128 + signal.SIGTERM
        raise
    finally:
        if bar is not None:
            bar.close()
    elapsed = time.perf_counter() - t0
    if done:
        print(
            f"mikado: made {done} scene(s) in {elapsed:.1f} s ({done / elapsed:.2f} scenes/s)",
            file=sys.stderr,
        )
    if shard[1] == 1:
        try:
            path = write_coco(Path(args.out))
        except (FileNotFoundError, ValueError) as exc:
            raise CommandError(str(exc)) from None
        print(f"mikado: wrote {path}", file=sys.stderr)
    else:
        print(
            "mikado: sharded run; once every shard is done run `binpick mikado coco DATASET`", file=sys.stderr
        )
    return 0


class _Terminated(Exception):
    """SIGTERM arrived during generation (a batch scheduler's time limit, `kill`)."""


class _terminate_as_exception:
    """While generating, SIGTERM raises `_Terminated` in the main thread, as Ctrl-C raises
    KeyboardInterrupt: the scenes being made are finished or cleaned up (the pool shuts down, a
    half-written scene's temporary folder is removed) and the user is told what is on disk. It
    ended the command at once with exit 143 and no word, a worker's scene half written."""

    def __enter__(self) -> None:
        self._previous = None
        if threading.current_thread() is threading.main_thread():
            self._previous = signal.signal(signal.SIGTERM, self._raise)

    @staticmethod
    def _raise(_signum: int, _frame: object) -> None:
        raise _Terminated

    def __exit__(self, *_exc: object) -> None:
        if self._previous is not None:
            signal.signal(signal.SIGTERM, self._previous)


def _say_interrupted(
    job: Job, args: argparse.Namespace, shard: tuple[int, int], total: int, how: str = "interrupted"
) -> None:
    """One line on Ctrl-C or SIGTERM: how many scenes are finished and that the same command
    resumes. The command exited 130 (143) without a word, so nothing said whether the folder was
    usable or what to run next (training uses the finished scenes and says how many of how many)."""
    from mikado.generate import pending

    finished = total - len(pending(job, args.count, shard, resume=True))
    of = f"this shard's {total}" if shard[1] > 1 else f"the {total}"
    print(
        f"mikado: {how}; {finished} of {of} scene(s) in {args.out} are finished "
        "(unfinished ones leave no scene folder); the same command resumes",
        file=sys.stderr,
    )


def _checked(results: Iterable[tuple[int, dict[str, float]]]) -> Iterator[tuple[int, dict[str, float]]]:
    """Scene results, with a missing OpenGL backend or a full disk turned into one-line errors; a
    failed write names its file and says what is kept ("[Errno 28] No space left on device" said
    neither)."""
    try:
        yield from results
    except OSError as exc:
        where = f"{exc.filename}: " if exc.filename is not None else ""
        raise CommandError(
            f"{where}{exc.strerror or exc}; the finished scenes are kept and the same command resumes"
        ) from None
    except RuntimeError as exc:
        raise CommandError(str(exc)) from None


def _require_sim_extra(modules: tuple[str, ...] = ("mujoco", "pycocotools", "tqdm")) -> None:
    missing = []
    for module in modules:
        try:
            __import__(module)
        except ImportError:
            missing.append(module)
        except RuntimeError as exc:  # mujoco refuses a bad MUJOCO_GL at import time
            raise CommandError(f"cannot load {module}: {exc}") from None
    if missing:
        raise CommandError(
            f"Mikado needs {', '.join(missing)}: install the `sim` extra (pip install 'binpick[sim]')"
        )


def _stats(args: argparse.Namespace) -> int:
    import json

    from mikado.io import incomplete_note
    from mikado.stats import dataset_stats, format_stats

    try:
        stats = dataset_stats(Path(args.dataset))
    except (FileNotFoundError, ValueError) as exc:
        raise CommandError(str(exc)) from None
    # As coco, train and eval do: the figures of 2 of 30 scenes were printed as the dataset's.
    # On stderr, so that --json's output stays one JSON document.
    note = incomplete_note(Path(args.dataset), stats["scenes"])
    if note:
        print(f"mikado: {note}", file=sys.stderr)
    print(json.dumps(stats, indent=1) if args.json else format_stats(stats))
    return 0


PREVIEW_SUFFIXES = (".png", ".jpg", ".jpeg", ".webp", ".bmp", ".tif", ".tiff")
MIN_TILE = 16
MAX_TILE = 4096  # px: a tile at a full 4K frame's width (the whole sheet is bounded in contact_sheet)


def _preview(args: argparse.Namespace) -> int:
    import cv2

    from mikado.io import list_scenes
    from mikado.preview import contact_sheet

    if not MIN_TILE <= args.tile <= MAX_TILE:  # a huge tile failed as "--out: cannot write (allocate)"
        raise CommandError(f"--tile {args.tile}: expected {MIN_TILE}..{MAX_TILE} px")
    try:  # DATASET before --out: a file given as DATASET was blamed on the default --out inside it
        scenes = list_scenes(Path(args.dataset))
    except FileNotFoundError as exc:
        raise CommandError(str(exc)) from None
    out = Path(args.out) if args.out else Path(args.dataset) / "preview.png"
    if out.suffix.lower() not in PREVIEW_SUFFIXES:  # cv2 would fail only after reading every scene
        raise CommandError(f"--out {out}: expected an image file ({', '.join(PREVIEW_SUFFIXES)})")
    check_output("--out", out)
    try:
        path = contact_sheet(Path(args.dataset), out, args.count, args.columns, args.tile, scenes)
    except OSError as exc:  # a missing scene image; --out under a file, or without permission
        text = f"{exc.filename}: {exc.strerror}" if exc.filename is not None else str(exc)
        raise CommandError(text) from None
    except cv2.error as exc:  # OpenCV's message is several lines with its source path
        raise CommandError(f"--out {out}: cannot write ({exc.err or exc})") from None
    except ValueError as exc:
        raise CommandError(str(exc)) from None
    print(path)
    return 0


def _coco(args: argparse.Namespace) -> int:
    from mikado.coco import write_coco
    from mikado.io import incomplete_note, list_scenes

    dataset = Path(args.dataset)
    try:
        scenes = list_scenes(dataset)
        path = write_coco(dataset, scenes)
        # docs/training.md: an unfinished dataset is indexed as it is, with a line saying so (the
        # index of 8 of 30 scenes was written without a word).
        note = incomplete_note(dataset, len(scenes))
    except (FileNotFoundError, ValueError) as exc:
        raise CommandError(str(exc)) from None
    if note:
        print(f"mikado: {note}", file=sys.stderr)
    print(path)
    return 0


def main(args: argparse.Namespace) -> int:
    if args.mikado_command == "generate":
        _require_sim_extra()
    elif args.mikado_command == "coco":
        _require_sim_extra(("pycocotools",))
    return {"generate": _generate, "stats": _stats, "preview": _preview, "coco": _coco}[args.mikado_command](
        args
    )
