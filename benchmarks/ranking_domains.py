"""Benchmark: is the top candidate unoccluded? The ranking's scores on exact maps of six pile domains.

The ranking (edge.ranking.rank) gets each frame's exact boundary and occlusion maps
(mikado.ground_truth, DESIGN.md), so any wrong pick is the score's fault, not a network's. Per
domain, the share of frames whose top candidate is an unoccluded instance, for every score rule
(`RankingParams.score`: "thesis" = w1*s1 + w2*s2, "contour" = w1*s1 + w2*[s2 >= 0.05], "strict" =
w1*max(0, s1 - b) + w2*[s2 >= 0.05], b the contour's occluded-side share) side by
side on the same frames, and the ceiling: frames where some candidate is an unoccluded instance.

Domains (seeds 0..N-1, 512x512 unless --size):
- mikado, mikado+: rendered Mikado piles (mikado.render_pile, the presets' own instance counts);
- packages: 30 rounded packages (ellipses) in painter's order (mikado.flat_piles.make_pile);
- shapes: 30 flat shapes of many kinds and sizes in painter's order (flat_piles.shapes_pile);
- identical: a dense pile of 60 identical sachets in painter's order (flat_piles.identical_pile);
- touching: layers of tiles touching at one height, no occlusion within a layer (touching_pile).

The top candidate's instance is the ground-truth label covering most of its pixels (the floor,
label 0, is a miss). "Unoccluded":
- flat domains: no pixel of the instance's own silhouette shows a nearer instance (exact);
- Mikado: under 5 % of its amodal silhouette, shrunk by 2 px, shows another instance (the
  amodal mask is the rasterised mesh projection, exact to about a pixel; 5 % is the simulated
  cell's "not occluded", simcell.scoring Q3).

Usage: python -m benchmarks.ranking_domains [--frames 60] [--size 512] [--domains ...]
"""

from __future__ import annotations

import argparse
import sys
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass

import cv2
import numpy as np

from benchmarks.arguments import int_at_least, positive_int
from benchmarks.machine_info import machine_line
from edge.ranking import SCORES, RankingParams, rank
from mikado import flat_piles

MIKADO_COVERED = 0.05  # simcell.scoring.Thresholds.weak_occlusion
MIKADO_SHRINK_PX = 2


@dataclass
class Frame:
    labels: np.ndarray  # ground-truth instance labels, 0 = floor
    boundaries: np.ndarray  # float32 exact maps
    occlusions: np.ndarray
    unoccluded: np.ndarray  # bool per label (index 0, the floor, False)


def flat_frames(make: Callable, frames: int, size: int) -> Iterator[Frame]:
    for seed in range(frames):
        pile = make(seed, size, size)
        unoccluded = pile.occluded_share == 0
        unoccluded[0] = False
        yield Frame(pile.labels, pile.boundaries, pile.occlusions, unoccluded)


def mikado_frames(preset: str, frames: int, size: int) -> Iterator[Frame]:
    import mikado

    kernel = np.ones((2 * MIKADO_SHRINK_PX + 1,) * 2, np.uint8)
    for seed in range(frames):
        scene = mikado.render_pile(seed, preset, size, size)
        labels = scene.labels.astype(np.int32)
        unoccluded = np.zeros(max([int(labels.max())] + [i.id for i in scene.instances]) + 1, bool)
        for inst in scene.instances:
            core = cv2.erode(inst.amodal.astype(np.uint8), kernel).astype(bool)
            covered = core & (labels != 0) & (labels != inst.id)
            unoccluded[inst.id] = core.any() and covered.sum() < MIKADO_COVERED * core.sum()
        y, z = scene.boundaries.astype(np.float32), scene.occlusions.astype(np.float32)
        yield Frame(labels, y, z, unoccluded)


DOMAINS: dict[str, Callable[[int, int], Iterator[Frame]]] = {
    "mikado": lambda n, s: mikado_frames("mikado", n, s),
    "mikado+": lambda n, s: mikado_frames("mikado+", n, s),
    "packages": lambda n, s: flat_frames(flat_piles.make_pile, n, s),
    "shapes": lambda n, s: flat_frames(flat_piles.shapes_pile, n, s),
    "identical": lambda n, s: flat_frames(flat_piles.identical_pile, n, s),
    "touching": lambda n, s: flat_frames(flat_piles.touching_pile, n, s),
}


def instance_of(frame: Frame, candidate_labels: np.ndarray, count: int) -> np.ndarray:
    """For candidates 1..count, the ground-truth label covering most of each one's pixels."""
    inside = candidate_labels > 0
    pairs = np.stack([candidate_labels[inside], frame.labels[inside]])
    keys, hits = np.unique(pairs, axis=1, return_counts=True)
    best = np.zeros(count + 1, np.int64)
    most = np.zeros(count + 1, np.int64)
    for (c, g), n in zip(keys.T, hits, strict=True):
        if n > most[c]:
            best[c], most[c] = g, n
    return best


def evaluate(frame: Frame) -> dict[str, bool]:
    """Per score rule: is its top candidate an unoccluded instance? And the ceiling."""
    out = {}
    for score in SCORES:
        r = rank(frame.boundaries, frame.occlusions, RankingParams(score=score), return_labels=True)
        if not r.candidates:
            out[score] = False
            out["ceiling"] = False
            continue
        owner = instance_of(frame, r.labels, len(r.candidates))
        out[score] = bool(frame.unoccluded[owner[r.candidates[0].label]])
        out["ceiling"] = bool(frame.unoccluded[owner[1:]].any())
    return out


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--frames", type=positive_int, default=60, help="frames per domain (default 60)")
    parser.add_argument(
        "--size",
        type=int_at_least(16),
        default=512,
        help="square frame side in px, 16 or more (Mikado's least; default 512)",
    )
    parser.add_argument("--domains", nargs="+", choices=list(DOMAINS), default=list(DOMAINS))
    args = parser.parse_args(argv)

    start = time.perf_counter()
    rows = []
    for name in args.domains:
        t0 = time.perf_counter()
        results = [evaluate(f) for f in DOMAINS[name](args.frames, args.size)]
        share = {k: sum(r[k] for r in results) / len(results) for k in (*SCORES, "ceiling")}
        rows.append((name, len(results), share, time.perf_counter() - t0))
        print(f"{name}: " + ", ".join(f"{k} {v:.3f}" for k, v in share.items()), file=sys.stderr, flush=True)

    print(f"# Ranking on exact maps: top candidate unoccluded, {args.size}x{args.size}")
    print(machine_line("numpy"))
    took = time.perf_counter() - start
    print(f"{args.frames} frames per domain, {took:.0f} s\n")
    formulas = {
        "thesis": "w1·s1 + w2·s2",
        "contour": "w1·s1 + w2·[s2 ≥ 0.05]",
        "strict": "w1·max(0, s1 − b) + w2·[s2 ≥ 0.05]",
    }
    print("| domain | frames | " + " | ".join(f"{s} ({formulas[s]})" for s in SCORES) + " | ceiling |")
    print("|---|---:|" + "---:|" * (len(SCORES) + 1))
    for name, n, share, _ in rows:
        cells = " | ".join(f"{share[s]:.2f}" for s in (*SCORES, "ceiling"))
        print(f"| {name} | {n} | {cells} |")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
