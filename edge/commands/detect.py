"""`binpick detect`: rank the instance candidates of saved boundary/occlusion maps, write JSON and an overlay.

The offline twin of the appliance's per-frame step: it lets an integrator
check thresholds and weights on frames saved from the cell, and is the quick
start's demonstration on the bundled example (examples/pile/).
"""

from __future__ import annotations

import argparse
import json
import math
import time
from pathlib import Path

import cv2
import numpy as np

from binpick_core.errors import CommandError
from edge.atomic_file import output_problem, write_atomically
from edge.config import area_bounds_problem
from edge.ranking import SCORES, RankingParams, rank

DEFAULTS = RankingParams()


def configure(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--boundaries", required=True, type=Path, help="boundary map Y: 8/16-bit grey PNG or .npy"
    )
    parser.add_argument(
        "--occlusions", required=True, type=Path, help="occlusion map Z: 8/16-bit grey PNG or .npy"
    )
    parser.add_argument("--image", type=Path, help="camera image drawn under the overlay (same size)")
    parser.add_argument("--out", required=True, type=Path, help="JSON result to write")
    parser.add_argument(
        "--overlay", type=Path, help="overlay image to write, in the format of its extension (.png, .jpg)"
    )
    parser.add_argument(
        "--alpha", type=float, default=DEFAULTS.alpha, help="boundary threshold (default %(default)s)"
    )
    parser.add_argument(
        "--beta", type=float, default=DEFAULTS.beta, help="occlusion threshold (default %(default)s)"
    )
    parser.add_argument(
        "--min-area",
        type=float,
        default=DEFAULTS.min_area,
        help="px if >= 1, image fraction if < 1 (%(default)s)",
    )
    parser.add_argument(
        "--max-area",
        type=float,
        default=DEFAULTS.max_area,
        help="px if >= 1, image fraction if < 1 (%(default)s)",
    )
    parser.add_argument(
        "--patch", type=int, default=DEFAULTS.patch, help="odd XNOR patch size (default %(default)s)"
    )
    parser.add_argument("--w1", type=float, default=DEFAULTS.w1, help="weight of s1 (default %(default)s)")
    parser.add_argument("--w2", type=float, default=DEFAULTS.w2, help="weight of s2 (default %(default)s)")
    parser.add_argument(
        "--score",
        choices=SCORES,
        default=DEFAULTS.score,
        help="how s1 and s2 combine: strict = w1*max(0, s1 - b) + w2*[s2 >= 0.05], contour = "
        "w1*s1 + w2*[s2 >= 0.05], thesis = w1*s1 + w2*s2 (default %(default)s; docs/hotpath.md)",
    )
    parser.add_argument(
        "--margin",
        type=float,
        default=DEFAULTS.margin,
        help="px from the border below which the grasp moves "
        "to the inscribed-circle centre (default %(default)s)",
    )


MIN_MAP_SIDE = 2  # px: an empty or one-pixel map is no camera frame's map, whatever it ranks to


def read_map(path: Path) -> np.ndarray:
    """A probability map as uint8 (8-bit PNG: probability*255) or float32 (16-bit PNG scaled, or .npy).

    A float .npy must hold probabilities, in [0, 1], or NaN (docs/hotpath.md: NaN in Y is a
    boundary, in Z not occluding): anything else (inf, 7.0, -3.0) is a wrong file, not a map in
    which no candidate survives."""
    _require_file(path, "a map file")
    if path.suffix.lower() == ".npy":
        try:
            data = np.load(path, allow_pickle=False)
        except (OSError, ValueError, EOFError) as exc:  # EOFError: an empty file
            raise CommandError(f"{path}: not a readable .npy file ({exc})") from exc
        if not isinstance(data, np.ndarray):  # an .npz archive under a .npy name
            raise CommandError(f"{path}: expected one array (.npy), got an archive of several (.npz)")
        if data.ndim != 2 or data.dtype not in (np.float32, np.float64, np.uint8):
            raise CommandError(
                f"{path}: expected a 2-D float32/float64/uint8 array, got {data.dtype} {data.shape}"
            )
        if data.dtype != np.uint8:
            data = data.astype(np.float32)
            outside = ~np.isnan(data) & ((data < 0) | (data > 1))  # inf included
            if outside.any():
                example = data[outside].flat[0]
                raise CommandError(
                    f"{path}: {int(outside.sum())} value(s) outside [0, 1] (e.g. {example}): "
                    "expected probabilities in [0, 1] (or NaN)"
                )
    else:
        data = cv2.imread(str(path), cv2.IMREAD_UNCHANGED)
        if data is None:
            raise CommandError(f"{path}: not a readable image")
        if data.ndim != 2:
            raise CommandError(f"{path}: expected a single-channel (grey) map, got {data.shape[2]} channels")
        if data.dtype == np.uint16:
            data = data.astype(np.float32) / np.float32(65535.0)
        elif data.dtype != np.uint8:
            raise CommandError(f"{path}: expected 8- or 16-bit pixels, got {data.dtype}")
    if min(data.shape) < MIN_MAP_SIDE:
        raise CommandError(
            f"{path}: {_size(data)} map, expected at least {MIN_MAP_SIDE}x{MIN_MAP_SIDE} pixels"
        )
    return data


def _require_file(path: Path, expected: str) -> None:
    if path.is_dir():
        raise CommandError(f"{path}: is a folder, expected {expected}")
    if not path.is_file():
        raise CommandError(f"{path}: no such file")


def read_image(path: Path) -> np.ndarray:
    _require_file(path, "an image file")
    bgr = cv2.imread(str(path), cv2.IMREAD_COLOR)
    if bgr is None:
        raise CommandError(f"{path}: not a readable image")
    return cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB)


OVERLAY_SUFFIXES = (".png", ".jpg", ".jpeg", ".bmp", ".webp", ".tif", ".tiff")


def _can_encode(path: Path) -> bool:
    """An image file name whose extension OpenCV writes (the overlay is encoded in that format)."""
    return path.suffix.lower() in OVERLAY_SUFFIXES and cv2.haveImageWriter(f"x{path.suffix.lower()}")


def _size(a: np.ndarray) -> str:
    return f"{a.shape[1]}x{a.shape[0]}"


def _write(flag: str, path: Path, data: bytes) -> None:
    try:
        write_atomically(path, data)
    except OSError as exc:  # what the checks above cannot see: permissions, a full disk
        raise CommandError(f"{flag} {path}: cannot write it ({exc.strerror or exc})") from None


def main(args: argparse.Namespace) -> int:
    try:
        params = RankingParams(
            alpha=args.alpha,
            beta=args.beta,
            min_area=args.min_area,
            max_area=math.inf if math.isinf(args.max_area) else args.max_area,
            patch=args.patch,
            w1=args.w1,
            w2=args.w2,
            margin=args.margin,
            score=args.score,
        )
    except ValueError as exc:
        raise CommandError(f"--{str(exc).replace('_', '-')}") from exc
    problem = area_bounds_problem(params.min_area, params.max_area, "--min-area", "--max-area")
    if problem:
        raise CommandError(problem)
    for flag, path in (("--out", args.out), ("--overlay", args.overlay)):
        problem = "" if path is None else output_problem(path)
        if problem:
            raise CommandError(f"{flag} {path}: {problem}")
    if args.overlay is not None and not _can_encode(args.overlay):
        raise CommandError(
            f"--overlay {args.overlay}: expected an image file name OpenCV can write "
            f"({', '.join(OVERLAY_SUFFIXES)})"
        )
    boundaries = read_map(args.boundaries)
    occlusions = read_map(args.occlusions)
    if occlusions.shape != boundaries.shape:
        raise CommandError(
            f"{args.occlusions}: size {_size(occlusions)} does not match "
            f"{args.boundaries} ({_size(boundaries)})"
        )
    image = read_image(args.image) if args.image is not None else None
    if image is not None and image.shape[:2] != boundaries.shape:
        raise CommandError(
            f"{args.image}: size {_size(image)} does not match {args.boundaries} ({_size(boundaries)})"
        )

    start = time.perf_counter()
    ranking = rank(boundaries, occlusions, params, return_labels=args.overlay is not None)
    elapsed_ms = (time.perf_counter() - start) * 1e3

    result = {
        "image": {"width": int(boundaries.shape[1]), "height": int(boundaries.shape[0])},
        "inputs": {
            "boundaries": str(args.boundaries),
            "occlusions": str(args.occlusions),
            "image": None if args.image is None else str(args.image),
        },
        "params": params.to_dict(),
        "rank_ms": round(elapsed_ms, 3),
        **ranking.to_dict(),
    }
    _write("--out", args.out, (json.dumps(result, indent=2) + "\n").encode())
    if args.overlay is not None:
        from edge.overlay import draw_overlay

        picture = draw_overlay(image, boundaries, occlusions, ranking, params)
        suffix = args.overlay.suffix.lower()  # the format the name asks for
        ok, encoded = cv2.imencode(suffix, cv2.cvtColor(picture, cv2.COLOR_RGB2BGR))
        if not ok:
            raise CommandError(f"--overlay {args.overlay}: could not encode the overlay as {suffix}")
        _write("--overlay", args.overlay, encoded.tobytes())

    g = ranking.grasp
    if g is None:
        print(f"no candidate survived the area filter; wrote {args.out}")
    else:
        print(
            f"{len(ranking.candidates)} candidates; grasp at u={g.u:.1f} v={g.v:.1f} "
            f"angle={g.angle_deg:.1f} deg "
            f"score={g.score:.3f} ({g.method}); wrote {args.out}"
            + (f" and {args.overlay}" if args.overlay else "")
        )
    return 0
