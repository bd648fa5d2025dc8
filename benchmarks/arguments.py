"""What the benchmarks share on their command lines (a helper, not a benchmark): argument types
that refuse a bad value with argparse's one line (exit 2) instead of a traceback later, and the
model the shipped configuration names, so that a benchmark's default is what ships."""

from __future__ import annotations

import argparse
from collections.abc import Callable
from pathlib import Path

from edge.atomic_file import output_problem, write_atomically

ROOT = Path(__file__).resolve().parents[1]
SHIPPED_CONFIG = ROOT / "firmware_config" / "embedded.toml"


def int_at_least(low: int) -> Callable[[str], int]:
    """An argparse type: a whole number of `low` or more (1 for a repeat or frame count, 0 for a
    warm-up count)."""

    def parse(text: str) -> int:
        try:
            value = int(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"{text!r}: expected a whole number") from None
        if value < low:
            raise argparse.ArgumentTypeError(f"{value}: expected {low} or more")
        return value

    return parse


positive_int = int_at_least(1)
non_negative_int = int_at_least(0)


def positive_float(text: str) -> float:
    """An argparse type: a number above 0 (a duration in seconds)."""
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r}: expected a number") from None
    if not value > 0:
        raise argparse.ArgumentTypeError(f"{value}: expected a number above 0")
    return value


def non_negative_float(text: str) -> float:
    """An argparse type: a number of 0 or more (a noise level; NaN refused)."""
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r}: expected a number") from None
    if not value >= 0 or value == float("inf"):
        raise argparse.ArgumentTypeError(f"{value}: expected a finite number of 0 or more")
    return value


def output_file(text: str) -> Path:
    """An argparse type: a file a run writes its figures to at the end, checked at the start (a
    run of minutes must not end in a traceback for want of its folder) by the commands' own
    check (`edge.atomic_file.output_problem`: not a folder, under a folder that exists or can be
    made, writable; the writer makes the missing folders)."""
    problem = output_problem(text)
    if problem:
        raise argparse.ArgumentTypeError(f"{text!r}: {problem}")
    return Path(text)


def write_output(path: Path, text: str) -> None:
    """Write an `output_file` in one step (`edge.atomic_file.write_atomically`, which makes its
    missing folders): an interrupted write leaves no half JSON."""
    write_atomically(path, text.encode("utf-8"))


def shipped_model() -> Path:
    """The model file the embedded default configuration (firmware_config/embedded.toml) names,
    resolved as the appliance resolves it (edge.config, the one parser)."""
    from edge.config import load_config

    return Path(load_config(SHIPPED_CONFIG, check_files=False).inference.model)
