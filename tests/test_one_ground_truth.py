"""One ground truth: only `mikado/ground_truth.py` derives boundary or occlusion maps from labels.

Every synthetic pile in the tests, benchmarks and scripts (Mikado renders, `mikado.flat_piles`)
takes its maps from `mikado.ground_truth`, so what they measure is what the network is trained
on (DESIGN.md "Ground truth"). Copies drifted before (4-neighbour label order in a test helper, a
`n < labels` rule in a benchmark, one-sided boundaries in the metric tests); this scan fails when
a module writes such a rule again instead of calling the one implementation.
"""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np
import pytest

ROOT = Path(__file__).resolve().parents[1]
SCANNED = ("edge", "mikado", "bicameral", "simcell", "benchmarks", "scripts", "tests")
ALLOWED = {
    "mikado/ground_truth.py",  # the implementation
    "tests/test_mikado_ground_truth.py",  # checks it against a literal per-pixel transcription
    "tests/test_one_ground_truth.py",  # this scan (its patterns and samples)
}
# What a hand-written ground truth looks like: a label image compared with a shifted copy of
# itself, a neighbour image compared with the labels, labels rolled or shifted, or a function of
# the ground truth's own names defined again.
PATTERNS = {
    "label image compared with a shifted copy": re.compile(r"(\b\w+)\[[^\]\n]*:[^\]\n]*\]\s*!=\s*\1\["),
    "neighbour compared with the labels": re.compile(r"\b\w+\s*(!=|<|>)\s*labels\b(?!\.)"),
    "labels rolled or shifted": re.compile(r"(np\.roll|_shifted)\(\s*\w*label"),
    "ground-truth function defined again": re.compile(
        r"def\s+(boundaries_from_labels|occlusions_from_labels|ground_truth|ground_truth_maps)\s*\("
    ),
}
# The copies this project had: each must be caught.
OLD_COPIES = [
    "    dv = labels[1:, :] != labels[:-1, :]",
    "    gt[:, 1:] |= labels[:, 1:] != labels[:, :-1]",
    "        boundary |= (n != -1) & (n != labels)",
    "        occluding |= n < labels",
    "    neighbours = [_shifted(labels, dy, dx, -1) for dy, dx in NEIGHBOURS]",
    "def ground_truth_maps(labels: np.ndarray) -> tuple[np.ndarray, np.ndarray]:",
]


def offences(text: str) -> list[str]:
    return [
        f"line {n}: {name}: {line.strip()}"
        for n, line in enumerate(text.splitlines(), start=1)
        for name, pattern in PATTERNS.items()
        if pattern.search(line)
    ]


@pytest.mark.parametrize("line", OLD_COPIES)
def test_the_scan_catches_the_old_copies(line):
    assert offences(line)


def test_no_other_module_computes_boundary_or_occlusion_ground_truth():
    found = []
    for folder in SCANNED:
        for path in sorted((ROOT / folder).rglob("*.py")):
            rel = path.relative_to(ROOT).as_posix()
            if rel not in ALLOWED:
                found += [f"{rel} {o}" for o in offences(path.read_text(encoding="utf-8"))]
    assert not found, "call mikado.ground_truth instead:\n" + "\n".join(found)


def test_flat_piles_are_the_mikado_ground_truth_of_their_labels():
    from mikado.flat_piles import identical_pile, make_pile, shapes_pile, touching_pile
    from mikado.ground_truth import depth_from_order, ground_truth

    for pile in (make_pile(1, 96, 112, 12), shapes_pile(2, 96, 96, 10), identical_pile(3, 96, 96, 20)):
        b, o = ground_truth(pile.labels, depth_from_order(pile.labels))  # painter's order: label = level
        assert np.array_equal(pile.boundaries, b) and np.array_equal(pile.occlusions, o)
    pile = touching_pile(4, 96, 96)
    b, o = ground_truth(pile.labels, depth_from_order(pile.labels, pile.level))
    assert np.array_equal(pile.boundaries, b) and np.array_equal(pile.occlusions, o)
