"""The machine a benchmark ran on, written the same way by every benchmark.

Figures from different machines differ (an AMD EPYC and an Intel Xeon differ 4x on denormals),
so each report says which CPU, how many cores, and how loaded the machine was; ratios measured
side by side in one run are what travel between machines.
"""

from __future__ import annotations

import os
import platform
from importlib import metadata

from edge.machine import cpu_features, cpu_model, physical_cores


def _version(package: str) -> str | None:
    try:
        return metadata.version(package)
    except metadata.PackageNotFoundError:
        return None


def machine_info(*packages: str) -> dict:
    """CPU, cores, load and Python, plus the installed version of each of `packages`
    (distribution names, e.g. "onnxruntime", "torch"; None where not installed)."""
    return {
        "cpu": cpu_model(),
        "cpu_features": cpu_features(),
        "physical_cores": physical_cores(),
        "logical_cpus": os.cpu_count(),
        # Other work on the machine inflates every figure (ratios less so): report it.
        "load_average": [round(v, 2) for v in os.getloadavg()] if hasattr(os, "getloadavg") else None,
        "python": platform.python_version(),
        **{package: _version(package) for package in packages},
    }


def machine_line(*packages: str) -> str:
    """`machine_info` as one line for a report's header."""
    info = machine_info(*packages)
    features = ", ".join(info["cpu_features"]) or "none listed"
    load = ", ".join(f"{v:.2f}" for v in info["load_average"] or [])
    versions = "".join(f", {p} {info[p] or 'not installed'}" for p in packages)
    return (
        f"machine: {info['cpu']} ({features}); {info['physical_cores']} physical cores, "
        f"{info['logical_cpus']} logical CPUs; load average {load}; Python {info['python']}{versions}"
    )
