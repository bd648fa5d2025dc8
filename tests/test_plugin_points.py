"""The appliance without the factory: its run path never reaches torch, SciPy, MuJoCo or the
factory's packages, and each plug-in point (docs/contracts.md section 0) chosen without its extra
ends in one line naming the extra to install, not a traceback.

"Without" is simulated in a fresh interpreter whose import system refuses the packages
(tests/appliance_only.py), which is what `import` does where they are not installed;
tests/test_appliance_only_install.py checks a real `pip install .` in a fresh venv.
"""

from __future__ import annotations

import pytest
import tomllib
from appliance_only import FACTORY_ONLY, ROOT, folder_config, run_without

from edge.cli import EXTRA_OF_MODULE

# What `pip install .` leaves out: the third-party packages of the `sim`, `train` and `x86` extras.
NOT_INSTALLED = ("torch", "mujoco", "tensorboard", "pycocotools", "tqdm", "matplotlib", "openvino", "nncf")


def error_lines(stderr: str) -> list[str]:
    return [line for line in stderr.splitlines() if ": error: " in line]


def assert_one_line_naming(proc, extra: str) -> None:
    assert proc.returncode == 2, proc.stdout + proc.stderr
    assert "Traceback" not in proc.stderr, proc.stderr
    lines = error_lines(proc.stderr)
    assert len(lines) == 1, proc.stderr
    assert f"pip install .[{extra}]" in lines[0], lines[0]


@pytest.mark.slow
def test_run_on_a_folder_camera_never_tries_the_factory(tmp_path):
    config, _ = folder_config(tmp_path)
    proc = run_without(FACTORY_ONLY, "run", "--config", str(config), "--cycles", "1")
    assert proc.returncode == 0, proc.stderr
    assert "cycle 1 seq 1 grasp x=" in proc.stdout, proc.stdout + proc.stderr
    # Not even a guarded attempt: the run path names none of them.
    assert "tried-blocked: \n" in proc.stderr + "\n", proc.stderr


def test_simulated_camera_without_sim_names_the_extra(tmp_path):
    config, _ = folder_config(tmp_path, source='source = "simulated"')
    proc = run_without(NOT_INSTALLED, "run", "--config", str(config), "--cycles", "1")
    assert_one_line_naming(proc, "sim")
    assert "simulated bin camera" in error_lines(proc.stderr)[0]


def test_torch_backend_without_train_names_the_extra(tmp_path):
    config, _ = folder_config(
        tmp_path, backend='backend = "torch"\ntorch_checkpoint = "../models/bicameral_f25_rgb.pt"'
    )
    proc = run_without(NOT_INSTALLED, "run", "--config", str(config), "--cycles", "1")
    assert_one_line_naming(proc, "train")
    assert "inference.backend = 'torch'" in error_lines(proc.stderr)[0]


@pytest.mark.parametrize(
    ("args", "extra"),
    [
        (("train", "--help"), "train"),
        (("eval", "--help"), "train"),
        (("export", "--help"), "train"),
        (("simcell", "run", "--out", "OUT"), "sim"),
    ],
)
def test_factory_command_without_its_extra_names_it(tmp_path, args, extra):
    args = tuple(str(tmp_path / "out") if a == "OUT" else a for a in args)
    proc = run_without(NOT_INSTALLED, *args)
    assert_one_line_naming(proc, extra)
    assert error_lines(proc.stderr)[0].startswith(f"binpick {args[0]}: error: ")


def test_extra_table_matches_pyproject():
    """`edge.cli.EXTRA_OF_MODULE` names, for each module, an extra that really brings it, and the
    import contract forbids each in `edge/`."""
    pyproject = tomllib.loads((ROOT / "pyproject.toml").read_text())
    extras = pyproject["project"]["optional-dependencies"]

    def names(extra: str) -> set[str]:
        out: set[str] = set()
        for requirement in extras[extra]:
            if requirement.startswith("binpick["):
                for inner in requirement[len("binpick[") : requirement.index("]")].split(","):
                    out |= names(inner.strip())
                continue
            out.add(requirement.split(";")[0].split("[")[0].split("=")[0].split(">")[0].split("<")[0].strip())
        return out

    for module, extra in EXTRA_OF_MODULE.items():
        assert module in names(extra), f"{module}: not in the {extra!r} extra of pyproject.toml"
    assert set(NOT_INSTALLED) == set(EXTRA_OF_MODULE)
    # and the import contract forbids every one of them in the appliance
    (forbidden,) = [
        c
        for c in pyproject["tool"]["importlinter"]["contracts"]
        if c["id"] == "appliance-without-factory-packages"
    ]
    assert set(EXTRA_OF_MODULE) <= set(forbidden["forbidden_modules"])
