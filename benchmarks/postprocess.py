"""Benchmark: the native ranking call vs what a user would write with OpenCV + NumPy.

Both sides get the same 512x512 boundary/occlusion maps of synthetic piles
(~30 instances, mikado.flat_piles) and compute the same thing: candidates,
s1, b, s2, the configured score (the appliance's default, "strict"), ranking,
angle/extents and the grasp. The alternative is a
careful user's version: OpenCV's connectedComponentsWithStats, then per
candidate NumPy/OpenCV work cropped to the candidate's bounding box (no
full-image mask per candidate). Its scores are checked against ours before
timing, so the comparison is of equal work.

Runs are interleaved, in an order shuffled every round, so machine load and
cache state hit all alike; the process is pinned to one core and OpenCV to
one thread.

Usage: python -m benchmarks.postprocess [--frames 5] [--repeats 40]
"""

from __future__ import annotations

import argparse
import math
import os
import random
import statistics
import sys
import time
from collections.abc import Callable

import cv2
import numpy as np

from benchmarks.arguments import non_negative_float, positive_int
from benchmarks.machine_info import machine_line
from edge.ranking import RankingParams, rank
from edge.ranking.params import OCCLUDED_SIDE_BELOW
from edge.ranking.reference import area_term, contour_term
from mikado.flat_piles import make_pile

CROSS = cv2.getStructuringElement(cv2.MORPH_CROSS, (3, 3))


def rank_opencv_numpy(y: np.ndarray, z: np.ndarray, p: RankingParams) -> dict:
    """The same ranking, written the way a NumPy/OpenCV user would (per candidate, bbox-cropped)."""
    non_boundary = (y <= p.alpha).astype(np.uint8)
    occluding = z > p.beta
    boundary = non_boundary == 0
    n, labels, stats, centroids = cv2.connectedComponentsWithStats(non_boundary, connectivity=4)
    image_px = y.size
    min_px = p.min_area if p.min_area >= 1 else p.min_area * image_px
    max_px = p.max_area if p.max_area >= 1 else p.max_area * image_px
    keep = [k for k in range(1, n) if min_px <= stats[k, cv2.CC_STAT_AREA] <= max_px]
    if not keep:
        return {"candidates": [], "grasp": None}
    r = p.patch // 2
    h, w = y.shape
    largest = max(int(stats[k, cv2.CC_STAT_AREA]) for k in keep)
    candidates = []
    for k in keep:
        x, yy, bw, bh, area = (int(v) for v in stats[k])
        y0, y1 = max(0, yy - r - 1), min(h, yy + bh + r + 1)
        x0, x1 = max(0, x - r - 1), min(w, x + bw + r + 1)
        mask = labels[y0:y1, x0:x1] == k
        ring = cv2.dilate(mask.astype(np.uint8), CROSS).astype(bool) & boundary[y0:y1, x0:x1]
        agree = (mask == occluding[y0:y1, x0:x1]).astype(np.float32)
        sums = cv2.boxFilter(agree, -1, (p.patch, p.patch), normalize=False, borderType=cv2.BORDER_CONSTANT)
        inside = cv2.boxFilter(
            np.ones_like(agree), -1, (p.patch, p.patch), normalize=False, borderType=cv2.BORDER_CONSTANT
        )
        means = sums[ring] / inside[ring]
        s1 = float(np.mean(means)) if ring.any() else 0.0
        b = float(np.mean(means < OCCLUDED_SIDE_BELOW)) if ring.any() else 0.0
        m = cv2.moments(mask.astype(np.uint8), binaryImage=True)
        angle = 0.5 * math.atan2(2 * m["mu11"], m["mu20"] - m["mu02"])
        ys, xs = np.nonzero(mask)
        along = (xs + x0) * math.cos(angle) + (ys + y0) * math.sin(angle)
        across = -(xs + x0) * math.sin(angle) + (ys + y0) * math.cos(angle)
        s2 = area / largest
        candidates.append(
            {
                "label": k,
                "area": area,
                "bbox": (x, yy, bw, bh),
                "centroid": tuple(centroids[k]),
                "s1": s1,
                "s2": s2,
                "score": p.w1 * contour_term(p.score, s1, b) + p.w2 * area_term(p.score, s2),
                "angle_deg": math.degrees(angle),
                "major_px": float(along.max() - along.min() + 1),
                "minor_px": float(across.max() - across.min() + 1),
            }
        )
    candidates.sort(key=lambda c: -c["score"])
    best = candidates[0]
    x, yy, bw, bh = best["bbox"]
    crop = np.pad((labels[yy : yy + bh, x : x + bw] == best["label"]).astype(np.uint8), 1)
    dist = cv2.distanceTransform(crop, cv2.DIST_L2, cv2.DIST_MASK_PRECISE)
    cu, cv_ = best["centroid"]
    if dist[math.floor(cv_ + 0.5) - yy + 1, math.floor(cu + 0.5) - x + 1] > p.margin:
        grasp = (cu, cv_)
    else:
        iy, ix = np.unravel_index(int(np.argmax(dist)), dist.shape)
        grasp = (float(ix + x - 1), float(iy + yy - 1))
    return {"candidates": candidates, "grasp": grasp}


class NotEqualWork(RuntimeError):
    """The two sides computed different results: a ratio of their times would not compare work."""


def _angle_gap_deg(a: float, b: float) -> float:
    """Axis angles are defined modulo 180 degrees ((-90, 90] on our side)."""
    gap = abs(a - b) % 180.0
    return min(gap, 180.0 - gap)


def check_same_result(y: np.ndarray, z: np.ndarray, p: RankingParams) -> None:
    """Raise NotEqualWork unless both sides find the same candidates, scores, axes, extents and
    grasp. An explicit raise, not `assert`, which `python -O` removes; the axes, extents and grasp
    were not compared, so half of the timed work was taken on trust."""
    ours = rank(y, z, p)
    theirs = rank_opencv_numpy(y, z, p)
    key = lambda bbox, area: (area, tuple(bbox))  # noqa: E731
    a = {key(c.bbox, c.area): c for c in ours.candidates}
    b = {key(c["bbox"], c["area"]): c for c in theirs["candidates"]}
    if a.keys() != b.keys():
        raise NotEqualWork("the two implementations found different candidates")
    if not a:
        return
    worst = max(abs(a[k].score - b[k]["score"]) for k in a)
    if worst >= 1e-5:
        raise NotEqualWork(f"scores differ by {worst}")
    angle = max(_angle_gap_deg(a[k].angle_deg, b[k]["angle_deg"]) for k in a)
    extent = max(max(abs(a[k].major_px - b[k]["major_px"]), abs(a[k].minor_px - b[k]["minor_px"])) for k in a)
    if angle >= 1e-3 or extent >= 1e-3:
        raise NotEqualWork(f"axes differ by {angle:.2g} deg or extents by {extent:.2g} px")
    grasp = ours.grasp
    gap = math.dist((grasp.u, grasp.v), theirs["grasp"])
    if gap >= 1e-3:
        raise NotEqualWork(
            f"grasps differ by {gap:.3g} px: ({grasp.u:.2f}, {grasp.v:.2f}) against {theirs['grasp']}"
        )


def time_interleaved(
    funcs: dict[str, Callable[[], object]], repeats: int
) -> dict[str, list[tuple[float, float]]]:
    """(wall, CPU) seconds per run. CPU time of this thread shows the cost without the
    waiting a loaded machine adds; the native call runs in this thread too. The order is
    shuffled every round (fixed seed): a run right after the OpenCV version finds the maps
    evicted from the caches by its temporaries, and no method should always be the one
    that follows it."""
    times: dict[str, list[tuple[float, float]]] = {name: [] for name in funcs}
    order = list(funcs)
    shuffle = random.Random(0).shuffle
    for _ in range(repeats):
        shuffle(order)
        for name in order:
            f = funcs[name]
            cpu0, start = time.thread_time(), time.perf_counter()
            f()
            times[name].append((time.perf_counter() - start, time.thread_time() - cpu0))
    return times


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--frames", type=positive_int, default=5, help="different synthetic piles (default 5)"
    )
    parser.add_argument(
        "--repeats", type=positive_int, default=40, help="timed runs per frame and method (default 40)"
    )
    parser.add_argument("--size", type=positive_int, default=512)
    parser.add_argument("--instances", type=positive_int, default=30)
    parser.add_argument(
        "--noise", type=non_negative_float, default=0.03, help="blur+noise of the maps (0 = ideal maps)"
    )
    parser.add_argument("--all-cores", action="store_true", help="do not pin the process to one core")
    args = parser.parse_args(argv)

    pinned = "no"
    if not args.all_cores and hasattr(os, "sched_setaffinity"):
        core = sorted(os.sched_getaffinity(0))[-1]
        os.sched_setaffinity(0, {core})
        pinned = f"core {core}"
    cv2.setNumThreads(1)
    params = RankingParams()

    samples: dict[str, list[tuple[float, float]]] = {}
    n_candidates = []
    for i in range(args.frames):
        pile = make_pile(1000 + i, args.size, args.size, args.instances, noise=args.noise)
        y, z = pile.boundaries, pile.occlusions
        try:
            check_same_result(y, z, params)
        except NotEqualWork as exc:  # a ratio of unequal work would be a wrong figure: none is printed
            print(f"postprocess: error: frame {i}: {exc}; no timing of unequal work", file=sys.stderr)
            return 1
        n_candidates.append(len(rank(y, z, params).candidates))
        non_boundary = (y <= params.alpha).astype(np.uint8)
        funcs = {
            "binpick rank() (native, one call)": lambda y=y, z=z: rank(y, z, params),
            "  binpick rank(return_labels=True), as the appliance calls it": lambda y=y, z=z: rank(
                y, z, params, return_labels=True
            ),
            "OpenCV CCWithStats + NumPy scoring": lambda y=y, z=z: rank_opencv_numpy(y, z, params),
            "  for scale: OpenCV connectedComponents only": lambda nb=non_boundary: cv2.connectedComponents(
                nb, connectivity=4
            ),
            "  for scale: OpenCV connectedComponentsWithStats only": lambda nb=non_boundary: (
                cv2.connectedComponentsWithStats(nb, connectivity=4)
            ),
        }
        for _ in range(3):  # warm-up
            for f in funcs.values():
                f()
        for name, t in time_interleaved(funcs, args.repeats).items():
            samples.setdefault(name, []).extend(t)

    ours_wall = statistics.median(w for w, _ in samples["binpick rank() (native, one call)"])
    ours_cpu = statistics.median(c for _, c in samples["binpick rank() (native, one call)"])
    print(f"# Post-processing benchmark: {args.size}x{args.size} maps, {args.instances} instances drawn")
    print(machine_line("numpy", "opencv-python-headless") + f"; pinned: {pinned}")
    print(
        f"{args.frames} frames x {args.repeats} runs, noise {args.noise}; "
        f"candidates per frame: {min(n_candidates)}-{max(n_candidates)}"
    )
    print()
    print("| method | median wall ms | p90 wall ms | median CPU ms | wall / binpick | CPU / binpick |")
    print("|---|---:|---:|---:|---:|---:|")
    for name, t in samples.items():
        wall = [w for w, _ in t]
        cpu = [c for _, c in t]
        med, cpu_med = statistics.median(wall), statistics.median(cpu)
        print(
            f"| {name} | {med * 1e3:.3f} | {np.percentile(wall, 90) * 1e3:.3f} | {cpu_med * 1e3:.3f} "
            f"| {med / ours_wall:.1f}x | {cpu_med / ours_cpu:.1f}x |"
        )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
