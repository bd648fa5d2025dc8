"""The packages a camera source needs beyond the appliance's own, and what to install for them.

One table for the two places that need it: edge/config.py, which refuses a source whose package
is missing when the file is loaded (`--check-config` said OK, then every cycle failed with
camera_lost), and the sources, which say the same when they are opened regardless (a tool that
builds a source without the loader).
"""

from __future__ import annotations

import sys
from importlib.util import find_spec

# source: (modules it imports, in order; what the user does about a missing one; what pip installs
# for it, relative to the checkout: systemd/install.sh installs it through edge.install_plan)
NEEDS: dict[str, tuple[tuple[str, ...], str, str]] = {
    "simulated": (
        ("mikado", "mujoco"),
        "the simulated bin camera needs Mikado and MuJoCo: install them with `pip install .[sim]` "
        "or choose another camera.source",
        ".[sim]",
    ),
    "genicam": (("harvesters",), "needs `pip install harvesters` and a GenTL producer (.cti)", "harvesters"),
    "realsense": (("pyrealsense2",), "needs `pip install pyrealsense2`", ".[realsense]"),
    "orbbec": (
        ("pyorbbecsdk",),
        "needs the Orbbec SDK's Python wrapper: `pip install pyorbbecsdk2`",
        ".[orbbec]",
    ),
}


# Sources whose packages need a newer Python than the appliance's 3.10: mujoco 4.0.0 (the `sim`
# extra's pin, the version Mikado's scenes are made with) publishes wheels for 3.11 and newer only.
MIN_PYTHON: dict[str, tuple[tuple[int, int], str]] = {"simulated": ((3, 11), "MuJoCo 4.0.0")}


def python_too_old(source: str, version: tuple[int, ...] | None = None) -> str:
    """Why `source` cannot be installed on this Python (or `version`); "" when it can."""
    version = tuple(sys.version_info[:2]) if version is None else version
    need, package = MIN_PYTHON.get(source, ((0, 0), ""))
    if tuple(version[:2]) >= need:
        return ""
    return (
        f"needs Python {need[0]}.{need[1]} or newer ({package} has no wheel for "
        f"{version[0]}.{version[1]}): choose camera.source 'folder' (a replay) or a real camera "
        "on this Python"
    )


def pip_requirement(source: str) -> str:
    """What pip installs for `source` ("" for a source that needs nothing beyond the appliance)."""
    return NEEDS[source][2] if source in NEEDS else ""


def install_hint(source: str) -> str:
    """What to install for `source`, e.g. "needs `pip install pyrealsense2`"; on a Python too old
    for its packages, that instead (installing them would fail)."""
    return python_too_old(source) or NEEDS[source][1]


def missing_module(source: str) -> str:
    """The first module `source` needs that cannot be found ("" if all can, or it needs none).
    Found, not imported: a driver's import can take seconds or touch the hardware."""
    for name in NEEDS.get(source, ((), "", ""))[0]:
        if name in sys.modules:
            continue
        try:
            if find_spec(name) is None:
                return name
        except (ImportError, ValueError):  # a finder that refuses it, or a module without a spec
            return name
    return ""
