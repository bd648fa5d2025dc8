"""Tolerance-based boundary scoring (BSDS protocol, no NMS, no thinning): our counts (SciPy
KD-tree pairs + Hopcroft-Karp maximum bipartite matching per threshold) against the tool a user
would otherwise pick, pyEdgeEval (BSDS's C++ `correspondPixels` min-cost assignment per threshold).

Both score the same synthetic images (ellipse piles, boundaries displaced by a pixel, clutter) in
one run, one untimed warm-up run each and then alternating; the figure is the median over repeats
of the time to score all images, with the ODS/AP each side gets, the ratio, and the machine (CPU
model, cores, load average).

    python -m benchmarks.boundary_metrics [--images 3] [--size 160x200] [--thresholds 19] [--repeats 3]
"""

from __future__ import annotations

import argparse
import statistics
import time
from collections.abc import Callable

import cv2
import numpy as np

from benchmarks.arguments import positive_int
from benchmarks.machine_info import machine_line
from bicameral.evaluation.boundary_metrics import BoundaryAccumulator
from mikado.ground_truth import boundaries_from_labels

# sample()'s ellipse axes run from 8 px to a fifth of the side (exclusive): 45 px is the least.
MIN_SIDE = 45


def sample(rng: np.random.Generator, height: int, width: int) -> tuple[np.ndarray, np.ndarray]:
    labels = np.zeros((height, width), np.int32)
    for k in range(1, 12):
        centre = (int(rng.integers(0, width)), int(rng.integers(0, height)))
        axes = (int(rng.integers(8, width // 5)), int(rng.integers(8, height // 5)))
        cv2.ellipse(labels, centre, axes, float(rng.uniform(0, 180)), 0, 360, k, -1)
    gt = boundaries_from_labels(labels)
    shifted = np.roll(np.roll(gt, 1, axis=1), int(rng.integers(-1, 2)), axis=0)
    pred = np.where(shifted, rng.uniform(0.2, 1, gt.shape), 0.0)
    pred += rng.uniform(0, 1, gt.shape) * (rng.random(gt.shape) < 0.08)
    return np.clip(pred, 0, 1).astype(np.float32), gt


def time_side_by_side(
    fns: dict[str, Callable[[], tuple[float, float]]],
    repeats: int,
    clock: Callable[[], float] = time.perf_counter,
) -> dict[str, tuple[float, tuple[float, float]]]:
    """name -> (median seconds, result) of each scorer: one untimed run each first (imports,
    first-call set-up and caches are not the scoring's cost), then `repeats` rounds in which
    the scorers alternate, so that other load on the machine hits both sides of the ratio alike."""
    results = {name: fn() for name, fn in fns.items()}
    times: dict[str, list[float]] = {name: [] for name in fns}
    for _ in range(repeats):
        for name, fn in fns.items():
            t0 = clock()
            results[name] = fn()
            times[name].append(clock() - t0)
    return {name: (statistics.median(times[name]), results[name]) for name in fns}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--images", type=positive_int, default=3)
    parser.add_argument("--size", default="160x200", help="HxW")
    parser.add_argument("--thresholds", type=positive_int, default=19)
    parser.add_argument("--repeats", type=positive_int, default=3)
    args = parser.parse_args(argv)
    try:
        height, width = (int(v) for v in args.size.split("x"))
    except ValueError:
        parser.error(f"--size {args.size}: expected HxW, e.g. 160x200")
    if min(height, width) < MIN_SIDE:  # the ellipses' axes are 8 px to a fifth of the side
        parser.error(f"--size {args.size}: each side must be {MIN_SIDE} or more")
    rng = np.random.default_rng(0)
    images = [sample(rng, height, width) for _ in range(args.images)]
    thresholds = np.linspace(1 / (args.thresholds + 1), 1 - 1 / (args.thresholds + 1), args.thresholds)

    def ours():
        acc = BoundaryAccumulator("bsds", thresholds)
        for pred, gt in images:
            acc.add(pred, gt)
        s = acc.scores()
        return s.ods, s.ap

    try:
        from pyEdgeEval.common.binary_label.calculate_metrics import calculate_metrics
        from pyEdgeEval.common.binary_label.evaluate_boundaries import evaluate_boundaries_threshold
    except ImportError:
        print("pyEdgeEval is not installed (pip install pyedgeeval): nothing to compare with")
        return 1

    def theirs():
        counts = [
            evaluate_boundaries_threshold(thresholds, pred, gt, max_dist=0.0075, apply_thinning=False)
            for pred, gt in images
        ]
        _, _, overall = calculate_metrics(
            lambda s: counts[s["i"]],
            list(thresholds),
            [{"i": i, "name": str(i)} for i in range(len(images))],
            1,
        )
        return float(overall["ODS_f1"]), float(overall["AUC"])

    timed = time_side_by_side({"ours (SciPy matching)": ours, "pyEdgeEval (BSDS CSA)": theirs}, args.repeats)
    rows = [(name, seconds, result) for name, (seconds, result) in timed.items()]
    print("\n" + machine_line("numpy"))
    setting = f"{args.images} images {height}x{width}, {args.thresholds} thresholds"
    print(
        f"{setting}, tolerance 0.0075 x diagonal, "
        f"median of {args.repeats} alternating runs after one warm-up each"
    )
    print(f"{'scorer':<24} {'seconds':>8} {'ODS':>7} {'AP':>7}")
    for name, seconds, (ods, ap) in rows:
        print(f"{name:<24} {seconds:>8.3f} {ods:>7.4f} {ap:>7.4f}")
    print(f"ratio (pyEdgeEval / ours): {rows[1][1] / rows[0][1]:.1f}x")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
