"""The CUDA ranking's kernel bodies, replayed on the host, against the CPU hot path.

No GPU is needed: src_cpp/cuda/host_check.cpp runs the same kernel bodies as the GPU
(kernel_bodies.cuh) sequentially, with CUB's sorts and scans replaced by their sequential
definitions and the union-find merges in a shuffled order, and must give exactly the CPU
path's result. This checks the algorithm (run linking, union-find, numbering, statistics,
raster-order contour sums, sorting, host finish); the GPU test checks the hardware side.
"""

from __future__ import annotations

import math
import shutil
import subprocess
from pathlib import Path

import numpy as np
import pytest

from edge.ranking import Candidate, Grasp, Ranking, RankingParams, rank

ROOT = Path(__file__).resolve().parents[1]
SOURCES = [
    "src_cpp/cuda/host_check.cpp",
    "src_cpp/cuda/host_finish.cpp",
    "src_cpp/hotpath/connected_components.cpp",
    "src_cpp/hotpath/contour_score.cpp",
    "src_cpp/hotpath/distance_transform.cpp",
    "src_cpp/hotpath/ranking.cpp",
]


@pytest.fixture(scope="module")
def host_check(tmp_path_factory: pytest.TempPathFactory) -> Path:
    compiler = shutil.which("g++") or shutil.which("c++")
    if compiler is None:
        pytest.skip("no C++ compiler to build src_cpp/cuda/host_check.cpp")
    binary = tmp_path_factory.mktemp("host_check") / "host_check"
    command = [
        compiler,
        "-std=c++17",
        "-O2",
        "-I",
        "src_cpp",
        "-I",
        "src_cpp/cuda",
        *SOURCES,
        "-o",
        str(binary),
    ]
    subprocess.run(command, cwd=ROOT, check=True, timeout=240)
    return binary


def replay(
    binary: Path,
    tmp: Path,
    y: np.ndarray,
    z: np.ndarray,
    params: RankingParams,
    seed: int,
    padded: bool = False,
) -> Ranking:
    """The host replay's ranking; `padded` replays graph mode (capacity-sized steps, padded sorts)."""
    dtype = {np.dtype(np.float32): "f32", np.dtype(np.uint8): "u8"}
    np.ascontiguousarray(y).tofile(tmp / "y.raw")
    np.ascontiguousarray(z).tofile(tmp / "z.raw")
    args = [
        str(binary), str(tmp / "y.raw"), str(tmp / "z.raw"), str(y.shape[0]), str(y.shape[1]),
        dtype[y.dtype], dtype[z.dtype], repr(params.alpha), repr(params.beta),
        repr(params.min_area), repr(float(params.max_area)), str(params.patch), repr(params.w1),
        repr(params.w2), repr(params.margin), params.score, str(seed), str(tmp / "labels.raw"),
    ] + (["padded"] if padded else [])  # fmt: skip
    out = subprocess.run(args, capture_output=True, text=True, timeout=60, check=True).stdout
    candidates, grasp = [], None
    for line in out.splitlines():
        f = line.split()
        if f[0] == "grasp":
            grasp = Grasp(*map(float, f[1:7]), 0, f[7])  # the best candidate's: index 0
            continue
        label, area, bx, by, bw, bh = map(int, f[:6])
        cu, cv = float(f[6]), float(f[7])
        contour = int(f[8])
        s1, s2, share, score, angle, major, minor = map(float, f[9:16])
        candidates.append(
            Candidate(
                label, area, (bx, by, bw, bh), (cu, cv), contour, s1, s2, share, score, angle, major, minor
            )
        )
    labels = np.fromfile(tmp / "labels.raw", dtype=np.int32).reshape(y.shape)
    return Ranking(candidates=candidates, grasp=grasp, labels=labels)


def assert_identical(cpu: Ranking, replayed: Ranking, context: str) -> None:
    """Bit-identical: the host replay uses the CPU's libm for the axes, so even extents match."""
    assert [c.to_dict() for c in replayed.candidates] == [c.to_dict() for c in cpu.candidates], context
    assert (None if replayed.grasp is None else replayed.grasp.to_dict()) == (
        None if cpu.grasp is None else cpu.grasp.to_dict()
    ), context
    np.testing.assert_array_equal(replayed.labels, cpu.labels, err_msg=context)


def smooth(rng: np.random.Generator, h: int, w: int, passes: int) -> np.ndarray:
    a = rng.random((h, w))
    for _ in range(passes):
        a = (a + np.roll(a, 1, 0) + np.roll(a, -1, 0) + np.roll(a, 1, 1) + np.roll(a, -1, 1)) / 5
    return a


CASES = [
    ((1, 1), RankingParams(min_area=0)),
    ((1, 40), RankingParams(alpha=0.5, min_area=0, max_area=math.inf)),
    ((37, 1), RankingParams(alpha=0.5, min_area=0, max_area=math.inf, patch=3)),
    ((33, 65), RankingParams(alpha=0.5, beta=0.5, min_area=0, max_area=math.inf, patch=1)),
    ((64, 64), RankingParams(alpha=0.5, beta=0.4, min_area=3, max_area=0.9, patch=9, margin=0.0)),
    ((70, 97), RankingParams(alpha=0.5, beta=0.6, min_area=1.0, max_area=2000, patch=15, w1=2.0, w2=0.5)),
    ((128, 160), RankingParams(alpha=0.5, beta=0.5, min_area=0.0005, max_area=0.5, patch=9, margin=8.0)),
]


@pytest.mark.parametrize("padded", [False, True], ids=["direct", "graph"])
@pytest.mark.parametrize("case", range(len(CASES) * 3))
def test_replay_matches_cpu(host_check: Path, tmp_path: Path, case: int, padded: bool) -> None:
    (h, w), params = CASES[case % len(CASES)]
    rng = np.random.default_rng(case)
    passes = int(rng.integers(0, 6))
    y = smooth(rng, h, w, passes)
    y = (y / max(float(np.median(y)), 1e-9) * 0.5).clip(0, 1).astype(np.float32)  # about half below 0.5
    z = smooth(rng, h, w, 2).astype(np.float32)
    if case % 3 == 1:
        y = np.round(y * 255).astype(np.uint8)
    if case % 2 == 1:
        z = np.round(z * 255).astype(np.uint8)
    cpu = rank(y, z, params, return_labels=True)
    assert_identical(
        cpu, replay(host_check, tmp_path, y, z, params, seed=case, padded=padded), f"case {case}"
    )


def test_replay_edge_cases(host_check: Path, tmp_path: Path) -> None:
    loose = RankingParams(min_area=0, max_area=math.inf)
    checker = (np.indices((40, 40)).sum(axis=0) % 2).astype(np.float32)
    nan_map = smooth(np.random.default_rng(1), 50, 60, 3).astype(np.float32)
    nan_map[::7, ::5] = np.nan
    tile = (np.random.default_rng(0).random((26, 26)) < 0.5).astype(np.float32)
    squares = np.ones((100, 100), np.float32)
    occ = np.zeros((100, 100), np.float32)
    for top, left in [(10, 10), (10, 60), (60, 10), (60, 60)]:  # equal scores: a tie to keep in order
        squares[top : top + 16, left : left + 16] = 0.0
        occ[top - 5 : top + 21, left - 5 : left + 21] = tile
    maps = {
        "all boundary": (np.ones((9, 70), np.float32), np.ones((9, 70), np.float32)),
        "no boundary": (np.zeros((9, 70), np.float32), np.zeros((9, 70), np.float32)),
        "checkerboard": (checker, checker),
        "NaN": (nan_map, nan_map[::-1].copy()),
        "identical squares": (squares, occ),
        "uint8 at alpha*255": (
            np.array([[25, 26, 25], [26, 25, 26]], np.uint8),
            np.full((2, 3), 26, np.uint8),
        ),
    }
    for name, (y, z) in maps.items():
        for params in (loose, RankingParams(min_area=10)):
            cpu = rank(y, z, params, return_labels=True)
            for padded in (False, True):
                assert_identical(cpu, replay(host_check, tmp_path, y, z, params, seed=3, padded=padded), name)


@pytest.mark.parametrize("noise", [0.0, 0.15])
def test_replay_synthetic_pile(host_check: Path, tmp_path: Path, noise: float) -> None:
    pytest.importorskip("cv2", reason="mikado.flat_piles draws with OpenCV")
    from mikado.flat_piles import make_pile

    pile = make_pile(1, 512, 512, instances=30, noise=noise)
    cpu = rank(pile.boundaries, pile.occlusions, return_labels=True)
    assert cpu.candidates
    for padded in (False, True):
        replayed = replay(host_check, tmp_path, pile.boundaries, pile.occlusions, RankingParams(), 5, padded)
        assert_identical(cpu, replayed, f"pile noise {noise}, padded {padded}")


def test_replay_grasp_rules(host_check: Path, tmp_path: Path) -> None:
    """The device-side grasp: both methods, and both of choose_grasp's centroid tests (the window
    search, and the transform when the margin's window exceeds the candidate's box)."""
    y = np.ones((90, 120), np.float32)
    y[20:60, 10:50] = 0.0  # a 40x40 square
    yy, xx = np.mgrid[0:90, 0:120]
    r = np.hypot(yy - 45, xx - 90)
    y[(r >= 10) & (r <= 22)] = 0.0  # a ring: its centroid lies in the hole
    z = np.zeros_like(y)
    loose = dict(min_area=0, max_area=math.inf)
    seen = set()
    for margin, w2 in [(3.0, 1.0), (30.0, 1.0), (3.0, 0.0), (25.0, 0.0), (0.0, 0.0)]:
        params = RankingParams(margin=margin, w2=w2, **loose)
        cpu = rank(y, z, params, return_labels=True)
        replayed = replay(host_check, tmp_path, y, z, params, seed=2)
        assert_identical(cpu, replayed, f"margin {margin} w2 {w2}")
        seen.add(cpu.grasp.method)
    assert seen == {"centroid", "inscribed"}
