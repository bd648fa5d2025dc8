"""What machine this runs on, for the reports of benchmarks, training runs and simulations."""

from __future__ import annotations

import os
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


# /proc/cpuinfo flags that decide which precisions an x86 CPU runs fast (benchmarks print them).
CPU_FEATURES = ("avx2", "avx512f", "avx512_vnni", "avx512_bf16", "amx_bf16", "amx_int8", "avx_vnni")


def cpu_features() -> list[str]:
    """The CPU_FEATURES this CPU has (empty where /proc/cpuinfo has no flags line, e.g. ARM)."""
    try:
        text = Path("/proc/cpuinfo").read_text()
    except OSError:
        return []
    flags = next(
        (line.split(":", 1)[1].split() for line in text.splitlines() if line.startswith("flags")), []
    )
    return [f for f in CPU_FEATURES if f in flags]


def cpu_model() -> str:
    """The CPU's model name, else what `platform` knows of it."""
    return cpu_model_name() or platform.processor() or platform.machine()


def physical_cores() -> int:
    """Physical cores, not hyper-threads: ONNX Runtime and torch run fastest with one thread per
    physical core (DESIGN.md). Counted from /proc/cpuinfo's (physical id, core id) pairs; where it
    has no core ids (most ARM boards, Jetsons included, which have no SMT) every logical CPU is a
    core."""
    try:
        pairs = set()
        physical = None
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            key, _, value = line.partition(":")
            key = key.strip()
            if key == "physical id":
                physical = value.strip()
            elif key == "core id":
                pairs.add((physical, value.strip()))
        if pairs:
            return len(pairs)
    except OSError:
        pass
    return os.cpu_count() or 1
