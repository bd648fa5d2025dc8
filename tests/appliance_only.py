"""Helpers of the appliance-alone tests: the shipped folder-camera configuration on free ports, and
`binpick` run in a subprocess where chosen packages cannot be imported (an install without them)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from appliance_helpers import free_port

ROOT = Path(__file__).resolve().parents[1]

# The packages `pip install .` leaves out (the `sim` and `train` extras) and the factory itself, and
# SciPy: installed with the appliance for the calibration wizard's hand-eye refinement only, so the
# run path must not even try it.
FACTORY_ONLY = ("torch", "scipy", "mujoco", "tensorboard", "pycocotools", "bicameral", "mikado", "simcell")

# A finder ahead of all others refuses the blocked packages, as on a machine without them
# (`No module named ...`), and records every attempt: the appliance's run path must not even try.
_BLOCKED_MAIN = """
import sys

BLOCKED = set(filter(None, sys.argv[1].split(",")))
TRIED = []


class Refuse:
    def find_spec(self, name, path=None, target=None):
        if name.split(".")[0] in BLOCKED:
            TRIED.append(name)
            raise ModuleNotFoundError(f"No module named {name!r}", name=name)
        return None


sys.meta_path.insert(0, Refuse())
from edge.cli import main

try:
    code = main(sys.argv[2:])
finally:
    print("tried-blocked:", ",".join(sorted(set(TRIED))), file=sys.stderr)
sys.exit(code)
"""


def folder_config(tmp: Path, **replace: str) -> tuple[Path, int]:
    """`firmware_config/folder.toml` under `tmp` with its Modbus and HTTP ports made free ones.

    The copy sits in `tmp/firmware_config/` next to links to the repository's `models/` and
    `examples/`, so its relative paths resolve as in the repository. `replace` maps a key's line
    in the shipped file, by key (`source`, `backend`), to its new line(s), for the plug-in tests.
    Returns (path, Modbus port).
    """
    (tmp / "firmware_config").mkdir(parents=True, exist_ok=True)
    for name in ("models", "examples"):
        if not (tmp / name).exists():
            (tmp / name).symlink_to(ROOT / name, target_is_directory=True)
    (tmp / "firmware_config" / "registers.toml").write_text(
        (ROOT / "firmware_config" / "registers.toml").read_text()
    )
    tcp_port, http_port = free_port(), free_port()
    lines = (ROOT / "firmware_config" / "folder.toml").read_text().splitlines()
    replace = {"tcp_port": f"tcp_port = {tcp_port}", "http_port": f"http_port = {http_port}", **replace}
    for key, new in replace.items():
        index = next((i for i, line in enumerate(lines) if line.startswith(f"{key} = ")), None)
        assert index is not None, f"firmware_config/folder.toml no longer sets {key}"
        lines[index] = new
    path = tmp / "firmware_config" / "folder.toml"
    path.write_text("\n".join(lines) + "\n")
    return path, tcp_port


def run_without(blocked: tuple[str, ...], *args: str, timeout: float = 180) -> subprocess.CompletedProcess:
    """`binpick ARGS` in a fresh interpreter in which the `blocked` packages cannot be imported."""
    path = os.pathsep.join(filter(None, [str(ROOT), os.environ.get("PYTHONPATH")]))
    env = {**os.environ, "PYTHONPATH": path}
    return subprocess.run(
        [sys.executable, "-c", _BLOCKED_MAIN, ",".join(blocked), *args],
        capture_output=True,
        text=True,
        timeout=timeout,
        env=env,
        cwd=ROOT,
    )
