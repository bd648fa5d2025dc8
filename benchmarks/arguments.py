"""What the benchmarks share on their command lines (a helper, not a benchmark): argument types
that refuse a bad value with argparse's one line (exit 2) instead of a traceback later, and the
model the shipped configuration names, so that a benchmark's default is what ships."""

from __future__ import annotations

import argparse
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
SHIPPED_CONFIG = ROOT / "firmware_config" / "embedded.toml"


def positive_int(text: str) -> int:
    """An argparse type: an integer of 1 or more (a repeat or frame count)."""
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r}: expected a whole number") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"{value}: expected 1 or more")
    return value


def non_negative_int(text: str) -> int:
    """An argparse type: an integer of 0 or more (a warm-up count)."""
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r}: expected a whole number") from None
    if value < 0:
        raise argparse.ArgumentTypeError(f"{value}: expected 0 or more")
    return value


def positive_float(text: str) -> float:
    """An argparse type: a number above 0 (a duration in seconds)."""
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r}: expected a number") from None
    if not value > 0:
        raise argparse.ArgumentTypeError(f"{value}: expected a number above 0")
    return value


def shipped_model() -> Path:
    """The model file the embedded default configuration (firmware_config/embedded.toml) names,
    resolved against that file's folder as the appliance resolves it."""
    import tomllib

    with SHIPPED_CONFIG.open("rb") as f:
        model = tomllib.load(f)["inference"]["model"]
    return (SHIPPED_CONFIG.parent / model).resolve()
