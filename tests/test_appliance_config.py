"""Configuration: the shipped files parse, and every kind of mistake gets a message naming the
file, the key, the value and what was expected."""

from __future__ import annotations

import logging
import re
import subprocess
import sys
from pathlib import Path

import pytest

from edge.config import ConfigError, load_config, parse_config

ROOT = Path(__file__).resolve().parents[1]

RGB_MODEL = Path(__file__).resolve().parents[1] / "models" / "bicameral_f25_rgb.onnx"


@pytest.mark.parametrize("name", ["embedded.toml", "production.example.toml"])
def test_shipped_configurations_parse(name):
    config = load_config(ROOT / "firmware_config" / name, check_files=False)
    assert config.plc.registers.endswith("registers.toml")


def test_the_shipped_files_name_every_key():
    """docs/appliance.md tells users the shipped files list every key: each key of each section
    is set, or shown commented out, in at least one of them (a new key must be documented there)."""
    import dataclasses
    import re

    from edge.config import Config

    bodies = []
    for name in ("embedded.toml", "folder.toml", "production.example.toml"):
        parts = re.split(r"^\[(\w+)\]", (ROOT / "firmware_config" / name).read_text(), flags=re.M)
        bodies.append({parts[i]: parts[i + 1] for i in range(1, len(parts), 2)})
    missing = [
        f"{section.name}.{key.name}"
        for section in dataclasses.fields(Config)
        if section.default_factory is not dataclasses.MISSING
        for key in dataclasses.fields(section.default_factory())
        if not any(re.search(rf"^#?\s*{key.name}\s*=", b.get(section.name, ""), flags=re.M) for b in bodies)
    ]
    assert not missing


def test_embedded_default_needs_no_hardware():
    c = load_config(ROOT / "firmware_config" / "embedded.toml", check_files=False)
    assert c.camera.source == "simulated"
    assert (c.inference.backend, c.inference.device) == ("onnxruntime", "cpu")
    assert (c.plc.tcp_host, c.plc.tcp_port, c.plc.rtu_enabled) == ("127.0.0.1", 5020, False)
    assert c.calibration.file == ""  # pixel mode
    assert c.inference.model == str(ROOT / "models" / "bicameral_f25_rgbd.onnx")
    assert c.camera.simulated_depth == "stereo"  # the RGB-D model's depth


def write(tmp_path, text: str) -> Path:
    (tmp_path / "registers.toml").write_text((ROOT / "firmware_config" / "registers.toml").read_text())
    (tmp_path / "m.onnx").symlink_to(RGB_MODEL)  # a real model: its input kind is checked
    path = tmp_path / "cell.toml"
    path.write_text('[inference]\nmodel = "m.onnx"\n' + text)
    return path


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("[camera]\nsource = 'usb'\n", "camera.source = 'usb': expected one of 'simulated', 'opencv'"),
        ("[camera]\nwidth = '512'\n", "camera.width = '512': expected an integer"),
        ("[camera]\ntimeout_s = true\n", "camera.timeout_s = True: expected a number"),
        ("[plc]\ntcp_port = 70000\n", "plc.tcp_port = 70000: expected a value in [1, 65535]"),
        ("[plc]\nheartbeat_period_s = 2.0\n", "plc.heartbeat_period_s = 2.0: expected a value in [0.05, 1]"),
        ("[plc]\ntcp_idle_timeout_s = 0\n", "plc.tcp_idle_timeout_s = 0.0: expected a value in [5, 86400]"),
        ("[plc]\nport = 502\n", "unknown key 'plc.port'"),
        ("[cameras]\n", "unknown section [cameras]"),
        ("[camera]\nsource = 'opencv'\n", "camera.uri = '': expected a device"),
        ("[camera]\nsource = 'folder'\nfolder = 'nope'\n", "camera.folder = "),
        ("[calibration]\nrequired = true\n", "calibration.required = true: expected calibration.file"),
        ("[appliance]\nmode = 'triggered'\n[plc]\ntcp_enabled = false\n", "needs plc.tcp_enabled"),
        ("[camera\n", "not valid TOML"),
        ("[ranking]\npatch = 4\n", "ranking.patch: expected an odd integer"),
        (
            "[ranking]\nscore = 'area'\n",
            "ranking.score: expected one of 'thesis', 'contour', 'strict', got 'area'",
        ),
        # the limits are the hot path's own (binpick::validate), read through RankingParams
        ("[ranking]\npatch = 101\n", "ranking.patch: expected an odd integer in [1, 99], got 101"),
        ("[ranking]\nalpha = 1.5\n", "ranking.alpha: expected a number in [0, 1], got 1.5"),
        ("[suction]\nmax_tilt_deg = 95.0\n", "suction.max_tilt_deg = 95.0: expected a value in [1, 89]"),
        ("[suction]\ncup_mm = 5.0\n", "unknown key 'suction.cup_mm'"),
        (
            "[camera]\nsource = 'opencv'\nuri = '0'\n[suction]\nenabled = true\n",
            "suction.enabled = true: camera.source 'opencv' delivers no depth",
        ),
    ],
)
def test_mistakes_are_named(tmp_path, text, expected):
    path = write(tmp_path, text)
    with pytest.raises(ConfigError) as err:
        load_config(path)
    assert str(path) in str(err.value)
    assert expected in str(err.value)


@pytest.mark.parametrize("score", ["thesis", "contour", "strict"])
def test_ranking_score_reaches_the_ranking_params(tmp_path, score):
    config = load_config(write(tmp_path, f"[ranking]\nscore = '{score}'\n"))
    assert config.ranking.params().score == score


def test_missing_model_is_named(tmp_path):
    path = tmp_path / "c.toml"
    path.write_text('[inference]\nmodel = "absent.onnx"\n')
    with pytest.raises(
        ConfigError, match=r"inference.model = '.*absent.onnx': expected an existing ONNX file"
    ):
        load_config(path)


def test_relative_paths_are_relative_to_the_file(tmp_path):
    c = parse_config('[health]\nsnapshot_dir = "snaps"\n', tmp_path / "x.toml", check_files=False)
    assert c.health.snapshot_dir == str(tmp_path / "snaps")


def check_config(path: Path) -> subprocess.CompletedProcess:
    """`binpick run --check-config` on `path`, as a subprocess."""
    return subprocess.run(
        [sys.executable, "-m", "edge", "run", "--config", str(path), "--check-config"],
        capture_output=True, text=True, timeout=60, cwd=ROOT,
    )  # fmt: skip


def test_check_config_command_reports_one_line_and_exit_2(tmp_path):
    proc = check_config(write(tmp_path, "[ranking]\nalpha = 1.5\n"))
    assert proc.returncode == 2
    assert proc.stderr.strip().count("\n") == 0
    assert "ranking.alpha: expected a number in [0, 1], got 1.5" in proc.stderr


def test_check_config_accepts_a_good_file(tmp_path):
    proc = check_config(write(tmp_path, "[camera]\nsource = 'simulated'\n"))
    assert proc.returncode == 0, proc.stderr
    assert '"source": "simulated"' in proc.stdout


def test_check_config_warns_about_a_calibration_that_failed_its_checks(tmp_path):
    """`--check-config` passed a calibration written with `--accept-failed` in silence; the
    appliance uses it (exit status 0 still), but the gate now says which checks it failed."""
    from test_appliance_geometry import calibration

    from edge.calibration_file import save_calibration

    failed = calibration(None)
    failed.intrinsics_report = {"rms_px": 0.81, "threshold_px": 0.5, "passed": False}
    save_calibration(failed, tmp_path / "cell.json")
    text = "[camera]\nsource = 'simulated'\n[calibration]\nfile = 'cell.json'\n"
    proc = check_config(write(tmp_path, text))
    assert proc.returncode == 0, proc.stderr
    warning = [line for line in proc.stderr.splitlines() if "did not pass its checks" in line]
    assert len(warning) == 1, proc.stderr
    assert str(tmp_path / "cell.json") in warning[0]
    assert "intrinsics: RMS reprojection error 0.81 px (limit 0.5 px)" in warning[0]

    save_calibration(calibration(None), tmp_path / "cell.json")  # passed: nothing to say
    proc = check_config(tmp_path / "cell.toml")
    assert proc.returncode == 0 and "did not pass" not in proc.stderr, proc.stderr


def test_a_calibration_written_for_another_cell_is_refused_where_the_cell_is_named(tmp_path, caplog):
    """A file copied from the cell beside this one passes every check and puts every grasp where
    that other camera would have: `[calibration] cell` refuses it (the start's check where it is
    required, a warning line where not), and the running appliance keeps the file it had."""
    import dataclasses

    from test_appliance_geometry import calibration

    from edge.calibration_file import save_calibration
    from edge.calibration_watch import CalibrationWatcher

    ours, theirs = calibration(None), dataclasses.replace(calibration(None), cell="cell-b")
    ours.cell = "cell-a"
    save_calibration(theirs, tmp_path / "cell.json")
    required = "[camera]\nsource = 'simulated'\n[calibration]\nfile = 'cell.json'\ncell = 'cell-a'\n"
    path = write(tmp_path, required + "required = true\n")
    expected = "calibration is for cell 'cell-b', but this appliance is cell 'cell-a' ([calibration] cell)"
    with pytest.raises(ConfigError, match=re.escape(expected)):
        load_config(path)
    installer = subprocess.run(  # what systemd/install.sh runs: the required file's load is skipped
        [sys.executable, "-m", "edge", "run", "--config", str(path), "--check-config",
         "--before-calibration"],
        capture_output=True, text=True, timeout=60, cwd=ROOT,
    )  # fmt: skip
    assert installer.returncode == 0 and expected in installer.stderr
    assert "the appliance refuses it (every cycle fails with calibration_missing)" in installer.stderr
    path.write_text(path.read_text().replace("cell = 'cell-a'", "cell = 'cell-a '"))
    with pytest.raises(ConfigError, match=re.escape("calibration.cell = 'cell-a ': use letters, digits")):
        load_config(path)
    path.write_text('[inference]\nmodel = "m.onnx"\n' + required)  # not required
    proc = check_config(path)
    assert proc.returncode == 0 and expected in proc.stderr and "refuses it (pixel mode)" in proc.stderr
    path.write_text('[inference]\nmodel = "m.onnx"\n' + required.replace("cell-a", "cell-b"))
    proc = check_config(path)
    assert proc.returncode == 0 and "warning" not in proc.stderr, proc.stderr

    watcher = CalibrationWatcher(str(tmp_path / "cell.json"), required=False, cell="cell-a")
    assert watcher.current is None and expected in watcher.error
    save_calibration(ours, tmp_path / "cell.json")
    watcher.refresh()
    assert watcher.current.cell == "cell-a" and watcher.error == ""
    save_calibration(theirs, tmp_path / "cell.json")
    with caplog.at_level(logging.WARNING, logger="binpick"):
        watcher.refresh()
    assert watcher.current.cell == "cell-a" and expected in watcher.error  # the one it had stays
    assert "the one loaded before stays in use (cell cell-a" in caplog.text
    assert (
        CalibrationWatcher(str(tmp_path / "cell.json"), required=False).current.cell == "cell-b"
    )  # any cell
