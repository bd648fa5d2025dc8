"""What machine this runs on, for the reports of benchmarks, training runs and simulations."""

from __future__ import annotations

import platform
from pathlib import Path


def cpu_model_name() -> str | None:
    """The CPU's model name from /proc/cpuinfo; None where it has none (not Linux, most ARM)."""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return None


def cpu_model() -> str:
    """The CPU's model name, else what `platform` knows of it."""
    return cpu_model_name() or platform.processor() or platform.machine()
