"""The appliance installs and runs alone: `pip install .` (no extras) into a fresh venv builds the
native module, and `binpick run` there replays a folder camera through the bundled model and prints
grasps, with torch and MuJoCo absent. Choosing what needs an extra there ends in one line
naming it.

Slow (a venv, the dependencies from pip's cache or index, a C++ build: about 2 minutes on two
cores) but run by default: it is the only proof that the appliance does not lean on the factory.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
from appliance_only import ROOT, folder_config


def clean_env() -> dict[str, str]:
    """This process's environment without what would make the venv see the source tree."""
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "PYTHONHOME", "VIRTUAL_ENV")}
    env["PIP_DISABLE_PIP_VERSION_CHECK"] = "1"
    return env


@pytest.fixture(scope="module")
def appliance_venv(tmp_path_factory) -> Path:
    """A fresh venv with `pip install <repository>`, nothing else."""
    tmp = tmp_path_factory.mktemp("appliance_only")
    venv = tmp / "venv"
    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True, timeout=120, env=clean_env())
    proc = subprocess.run(
        [
            str(venv / "bin" / "python"), "-m", "pip", "install", "-q",
            # A build folder of its own (the developer's build/ stays untouched) and the CPU
            # module only: the appliance board has no CUDA, and nvcc would double the build time.
            "-C", f"build-dir={tmp / 'build'}",
            "-C", "cmake.define.BINPICK_CUDA=OFF",
            str(ROOT),
        ],
        capture_output=True, text=True, timeout=480, env=clean_env(), cwd=tmp,
    )  # fmt: skip
    assert proc.returncode == 0, (proc.stdout + proc.stderr)[-4000:]
    return venv


def in_venv(venv: Path, *args: str, cwd: Path, timeout: float = 120) -> subprocess.CompletedProcess:
    return subprocess.run(
        [str(venv / "bin" / args[0]), *args[1:]],
        capture_output=True,
        text=True,
        timeout=timeout,
        env=clean_env(),
        cwd=cwd,
    )


@pytest.mark.slow
@pytest.mark.timeout(600)
def test_pip_install_without_extras_runs_the_appliance(appliance_venv, tmp_path):
    probe = in_venv(
        appliance_venv,
        "python",
        "-c",
        "import importlib.util as u, edge, binpick_core\n"
        "print([m for m in ('torch', 'mujoco') if u.find_spec(m)])\n"
        "print(edge.__file__)",
        cwd=tmp_path,
    )
    missing, edge_file = probe.stdout.splitlines()
    assert missing == "[]", probe.stdout  # the factory's packages are not installed
    assert "site-packages" in edge_file, edge_file  # the installed appliance, not the source tree

    config, _ = folder_config(tmp_path)
    proc = in_venv(appliance_venv, "binpick", "run", "--config", str(config), "--cycles", "2", cwd=tmp_path)
    assert proc.returncode == 0, proc.stdout + proc.stderr[-3000:]
    grasps = [line for line in proc.stdout.splitlines() if " grasp x=" in line]
    assert [line.split(" grasp")[0] for line in grasps] == ["cycle 1 seq 1", "cycle 2 seq 2"], proc.stdout


@pytest.mark.slow
@pytest.mark.timeout(600)
@pytest.mark.parametrize(
    ("args", "extra"),
    [
        (("run", "--config", "SIMULATED", "--cycles", "1"), "sim"),
        (("train", "--help"), "train"),
    ],
)
def test_what_needs_an_extra_names_it(appliance_venv, tmp_path, args, extra):
    if "SIMULATED" in args:
        config, _ = folder_config(tmp_path, source='source = "simulated"')
        args = tuple(str(config) if a == "SIMULATED" else a for a in args)
    proc = in_venv(appliance_venv, "binpick", *args, cwd=tmp_path)
    assert proc.returncode == 2, proc.stdout + proc.stderr
    assert "Traceback" not in proc.stderr, proc.stderr
    errors = [line for line in proc.stderr.splitlines() if ": error: " in line]
    assert len(errors) == 1 and f"pip install .[{extra}]" in errors[0], proc.stderr
