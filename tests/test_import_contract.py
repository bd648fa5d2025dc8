"""The layers of docs/contracts.md section 0, as import-linter contracts (pyproject.toml
`[tool.importlinter]`): they hold on this tree, and a wrong-way import, even one inside a
function, breaks them.

The linter runs in a fresh interpreter without site hooks (`-S`): an editable install's import
redirect would otherwise point it at the installed tree instead of the one under test.
"""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import pytest

importlinter = pytest.importorskip("importlinter", reason="import-linter is in the `test` extra")

ROOT = Path(__file__).resolve().parents[1]
PACKAGES = ("binpick_core", "edge", "bicameral", "mikado", "simcell")


def lint(tree: Path) -> subprocess.CompletedProcess:
    """`lint-imports` on `tree`, which holds pyproject.toml and the packages."""
    import click
    import grimp

    # The linter and its dependencies, without the rest of site-packages' start-up hooks.
    path = [str(tree)] + sorted(
        {str(Path(m.__file__).resolve().parents[1]) for m in (importlinter, grimp, click)}
    )
    code = "from importlinter.cli import lint_imports_command; lint_imports_command()"
    return subprocess.run(
        [sys.executable, "-S", "-c", code, "--no-cache", "--no-logo"],
        cwd=tree,
        env={"PYTHONPATH": ":".join(path), "PATH": "/usr/bin:/bin"},
        capture_output=True,
        text=True,
        timeout=120,
    )


def test_the_layers_hold():
    proc = lint(ROOT)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "0 broken" in proc.stdout, proc.stdout


@pytest.fixture(scope="module")
def tree_copy(tmp_path_factory) -> Path:
    """The packages' sources and pyproject.toml in a temporary folder, to break on purpose."""
    tree = tmp_path_factory.mktemp("tree")
    shutil.copy(ROOT / "pyproject.toml", tree)
    for package in PACKAGES:
        shutil.copytree(ROOT / package, tree / package, ignore=shutil.ignore_patterns("__pycache__", "*.so"))
    return tree


@pytest.mark.parametrize(
    ("module", "line", "contract", "shown"),
    [
        # the appliance reaching the factory, at module level and lazily inside a function
        (
            "edge/overlay.py",
            "import bicameral.losses",
            "The factory above",
            "edge.overlay -> bicameral.losses",
        ),
        ("edge/supervisor.py", "def _f():\n    import simcell.cell", "The factory above", "simcell.cell"),
        # the core reaching either half
        (
            "binpick_core/errors.py",
            "import edge.config",
            "The factory above",
            "binpick_core.errors -> edge.config",
        ),
        ("binpick_core/model_file.py", "import mikado.io", "The factory above", "mikado.io"),
        # torch / MuJoCo in the appliance outside a plug-in point, directly or through the factory
        ("edge/geometry.py", "import torch", "import no package of", "edge.geometry -> torch"),
        (
            "edge/camera/folder_source.py",
            "import mujoco",
            "import no package of",
            "edge.camera.folder_source -> mujoco",
        ),
    ],
)
def test_a_wrong_way_import_breaks_the_contract(tree_copy, module, line, contract, shown):
    path = tree_copy / module
    original = path.read_text()
    path.write_text(original + "\n\n" + line + "\n")
    try:
        proc = lint(tree_copy)
    finally:
        path.write_text(original)
    assert proc.returncode != 0, proc.stdout
    broken = [text for text in proc.stdout.split("\n\n") if contract in text and "BROKEN" in text]
    assert broken, proc.stdout
    assert shown in proc.stdout, proc.stdout
