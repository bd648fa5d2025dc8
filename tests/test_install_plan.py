"""systemd/install.sh's configuration step (edge.install_plan): every shipped configuration is
installed with its paths where the installer puts things, and passes the start's own check there;
what a source or backend needs beyond the appliance is named for pip."""

from __future__ import annotations

import shutil
import subprocess
import sys

import pytest
from appliance_helpers import ROOT

from edge.install_plan import InstallPlanError, cuda_python_requirement, installed_text, main, requirements

CONFIGS = ROOT / "firmware_config"


def host(tmp_path):
    """A fake host's folders, as install.sh lays them out, filled from this checkout."""
    models, examples, snapshots, etc = (tmp_path / name for name in ("models", "examples", "snaps", "etc"))
    models.symlink_to(ROOT / "models")
    shutil.copytree(ROOT / "examples", examples)
    etc.mkdir()
    shutil.copy(CONFIGS / "registers.toml", etc / "registers.toml")
    places = {
        "models": models,
        "out/snapshots": snapshots,
        "examples": examples,
        "firmware_config/registers.toml": etc / "registers.toml",
    }
    return etc, [f"--place={source}={dest}" for source, dest in places.items()]


def test_the_folder_camera_config_is_installed_where_its_example_pile_goes_and_passes_the_check(tmp_path):
    """The sed install.sh used moved only the model and snapshots: `folder = "../examples/pile"`
    then named /examples/pile on the host and --check-config refused the installed file."""
    etc, places = host(tmp_path)
    installed = etc / "binpick.toml"
    assert main([str(CONFIGS / "folder.toml"), "--out", str(installed), *places]) == 0
    text = installed.read_text()
    assert f'folder = "{tmp_path / "examples" / "pile"}"' in text
    assert f'model = "{tmp_path / "models" / "bicameral_f25_rgb.onnx"}"' in text
    assert "../" not in text.replace("# ", "")  # comments may still say what the checkout holds
    assert text.count("\n#") == (CONFIGS / "folder.toml").read_text().count("\n#")  # comments kept
    check = ["run", "--config", str(installed), "--check-config", "--before-calibration"]
    done = subprocess.run(
        [sys.executable, "-m", "edge", *check], capture_output=True, text=True, timeout=120, cwd=tmp_path
    )
    assert done.returncode == 0, done.stdout + done.stderr


def test_what_each_shipped_configuration_needs_beyond_the_appliance(tmp_path):
    no_cuda = tmp_path / "no-cuda"
    assert requirements(CONFIGS / "embedded.toml", no_cuda) == ([".[sim]"], False)
    assert requirements(CONFIGS / "folder.toml", no_cuda) == ([], False)
    # GenICam (harvesters) and TensorRT, which JetPack installs as a system package, with the
    # cuda-python bindings its backend allocates with (not part of JetPack)
    assert requirements(CONFIGS / "production.example.toml", no_cuda) == (["harvesters", "cuda-python"], True)


def test_cuda_python_is_pinned_to_the_hosts_cuda_major_version(tmp_path):
    """pip took the newest cuda-python (13.x) on a JetPack 6 host, whose CUDA is 12: its bindings
    do not run there. The pin now follows the CUDA that JetPack installed (version.json, or the
    older version.txt); without one it stays unpinned."""
    jetpack6 = tmp_path / "cuda-12.6"
    jetpack6.mkdir()
    (jetpack6 / "version.json").write_text('{"cuda": {"name": "CUDA SDK", "version": "12.6.68"}}')
    wanted, _ = requirements(CONFIGS / "production.example.toml", jetpack6)
    assert wanted == ["harvesters", "cuda-python>=12,<13"]
    jetpack5 = tmp_path / "cuda-11.4"
    jetpack5.mkdir()
    (jetpack5 / "version.txt").write_text("CUDA Version 11.4.315\n")
    assert cuda_python_requirement(jetpack5) == "cuda-python>=11,<12"
    jetpack4 = tmp_path / "cuda-10.2"
    jetpack4.mkdir()
    (jetpack4 / "version.txt").write_text("CUDA Version 10.2.300\n")
    assert cuda_python_requirement(jetpack4) == "cuda-python"
    broken = tmp_path / "broken"
    broken.mkdir()
    (broken / "version.json").write_text("{not json")
    assert cuda_python_requirement(broken) == "cuda-python"


def test_a_checkout_path_the_installer_does_not_copy_is_refused_by_file_line_and_key(tmp_path):
    config = tmp_path / "cell.toml"
    text = (CONFIGS / "folder.toml").read_text()
    config.write_text(text.replace('folder = "../examples/pile"', f'folder = "{ROOT / "tests"}"'))
    with pytest.raises(
        InstallPlanError, match=r"cell.toml:\d+: camera.folder = .*: tests is in the checkout"
    ):
        installed_text(config, ROOT, {})


def test_absolute_paths_outside_the_checkout_are_kept_as_written(tmp_path):
    text = installed_text(CONFIGS / "production.example.toml", ROOT, {})
    assert text == (CONFIGS / "production.example.toml").read_text()


def test_a_bad_place_is_one_line(tmp_path, capsys):
    out = tmp_path / "x.toml"
    code = main([str(CONFIGS / "folder.toml"), "--out", str(out), "--place", "models=relative"])
    message = "--place 'models=relative': expected CHECKOUT_PATH=/ABSOLUTE/HOST/PATH"
    assert code == 2 and message in capsys.readouterr().err
    assert not out.exists()


def test_a_camera_whose_packages_need_a_newer_python_is_refused_before_pip(monkeypatch, capsys):
    """On JetPack 6's Python 3.10 the simulated camera's MuJoCo 4.0.0 has no wheel: the plan says so
    in one line (the installer stops there) instead of pip failing halfway; folder replay installs."""
    from edge.camera.packages import install_hint

    monkeypatch.setattr(sys, "version_info", (3, 10, 12, "final", 0))
    assert main([str(CONFIGS / "embedded.toml"), "--requirements"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "camera.source = 'simulated' needs Python 3.11 or newer" in err[0], err
    assert requirements(CONFIGS / "folder.toml")[0] == []
    assert "needs Python 3.11 or newer (MuJoCo 4.0.0 has no wheel for 3.10)" in install_hint("simulated")
    monkeypatch.setattr(sys, "version_info", (3, 11, 7, "final", 0))
    assert "pip install .[sim]" in install_hint("simulated")
