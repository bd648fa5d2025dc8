"""Benchmark: how close is the interior `binpick bin` detects (no polygon given) to the bin's
floor? (docs/bin.md, "Detecting the interior")

For the synthetic empty bin of the tests (tests/bin_scenes.py, which knows its true floor
corners), with and without depth, and for every frame of the real-bin set (benchmarks/real_bins.py:
the annotated interior as the truth; the frames are not empty bins), prints the detected
interior's IoU with the truth, the share of it outside the truth and, for four corners each, the
largest distance from a true corner to the nearest detected one, and the time (median of
`--repeats` runs). There is no alternative a user would pick to time it against: the times are
absolute figures of the machine printed first.

    PYTHONPATH=. python -m benchmarks.bin_detection [--data DIR] [--repeats 3]
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

import cv2
import numpy as np

from benchmarks import real_bins
from benchmarks.arguments import positive_int
from benchmarks.machine_info import machine_line
from edge.bin_model import detect_interior, interior_mask

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))
from bin_scenes import INTERIOR, bin_scene  # noqa: E402  (the synthetic scene of the tests)


def score(found: np.ndarray | None, truth: np.ndarray, shape: tuple[int, int]) -> str:
    if found is None:
        return "no quadrilateral found"
    a, b = interior_mask(found, shape), interior_mask(truth, shape)
    iou, outside = (a & b).sum() / max((a | b).sum(), 1), (a & ~b).sum() / max(a.sum(), 1)
    text = f"IoU {iou:.3f}, outside the truth {100 * outside:.1f} %"
    if len(found) == 4 and len(truth) == 4:
        error = np.linalg.norm(found[:, None, :] - truth[None, :, :], axis=2).min(axis=0).max()
        text += f", max corner error {error:.1f} px"
    return text


def one(name: str, gray: np.ndarray, depth_m: np.ndarray | None, truth: np.ndarray, repeats: int = 1) -> None:
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        found = detect_interior(gray, depth_m)
        times.append(time.perf_counter() - start)
    took = statistics.median(times)
    how = "" if found is None else f" [{found.note}]"
    polygon = None if found is None else found.polygon
    print(f"{name}: {score(polygon, truth, gray.shape)}{how} ({1000 * took:.0f} ms)")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--data", type=Path, default=real_bins.DEFAULT_DATA, help="the real-bin files")
    parser.add_argument("--repeats", type=positive_int, default=3, help="timed runs per frame (median)")
    args = parser.parse_args(argv)
    print(machine_line("opencv-python-headless"))
    print(f"time: median of {args.repeats} runs per frame")
    empty = bin_scene(products=0)
    one("synthetic empty bin, depth", empty.rgb[..., 0], empty.depth_m, INTERIOR, args.repeats)
    one("synthetic empty bin, no depth", empty.rgb[..., 0], None, INTERIOR, args.repeats)
    if not args.data.is_dir():
        print(f"(real frames skipped: {args.data} is not a folder)")
        return 0
    for entry in real_bins.load_manifest(real_bins.DEFAULT_MANIFEST):
        try:
            frame = real_bins.load_frame(entry, args.data)
        except real_bins.DataError as exc:
            print(f"bin_detection: {exc}", file=sys.stderr)
            return 2
        depth = None if frame.depth_mm is None else frame.depth_mm / 1000.0
        gray = cv2.cvtColor(frame.rgb, cv2.COLOR_RGB2GRAY)
        one(
            f"{frame.id} ({'depth' if depth is not None else 'no depth'})",
            gray,
            depth,
            frame.interior,
            args.repeats,
        )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
