"""Configuration values and files that used to pass `--check-config` (or end in a traceback) and then
fail every cycle or at start: each is refused in one line naming the file, the key, the value and
what was expected."""

from __future__ import annotations

import importlib.util
import os
import subprocess
import sys
import types
from pathlib import Path

import pytest

from edge.config import ConfigError, load_config, parse_config

ROOT = Path(__file__).resolve().parents[1]
RGB_MODEL = ROOT / "models" / "bicameral_f25_rgb.onnx"
PATH = Path("/etc/binpick/binpick.toml")
NO_SUCH_USER = "~binpick_no_such_user_7f3a"


def parse(text: str):
    return parse_config(text, PATH, check_files=False)


def write(tmp_path: Path, text: str, registers: str | None = None) -> Path:
    """A configuration beside a register map (the shipped one unless given) and a real model."""
    shipped = (ROOT / "firmware_config" / "registers.toml").read_text()
    (tmp_path / "registers.toml").write_text(shipped if registers is None else registers)
    (tmp_path / "m.onnx").symlink_to(RGB_MODEL)
    path = tmp_path / "cell.toml"
    path.write_text('[inference]\nmodel = "m.onnx"\n' + text)
    return path


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        # every cycle: GeometryError (nan) or OverflowError packing the float32 (-1e300)
        (
            "[calibration]\npick_height_mm = nan\n",
            "calibration.pick_height_mm = nan: expected a finite number",
        ),
        (
            "[calibration]\npick_height_mm = -1e300\n",
            "calibration.pick_height_mm = -1e+300: expected a value in [-500, 1000]",
        ),
        ("[calibration]\npick_height_mm = 1500\n", "expected a value in [-500, 1000]"),
        # every cycle: ValueError from the pile generator's seed
        ("[camera]\nseed = -1\n", "camera.seed = -1: expected a value in [0, 9223372036854775807]"),
        ("[camera]\nseed = 9223372036854775808\n", "camera.seed = 9223372036854775808: expected a value"),
        # no candidate could ever pass the area filter
        (
            "[ranking]\nmin_area = 100.0\nmax_area = 50.0\n",
            "ranking.min_area = 100 exceeds ranking.max_area = 50 (both pixels)",
        ),
        (
            "[ranking]\nmin_area = 0.4\nmax_area = 0.2\n",
            "ranking.min_area = 0.4 exceeds ranking.max_area = 0.2 (both image fractions)",
        ),
        # a NaN anywhere a number is read
        (
            "[bin]\npolygon = [[nan, 0], [10, 0], [10, 10]]\n",
            "bin.polygon = [[nan, 0], [10, 0], [10, 10]]: expected a list of [u, v] pairs of finite numbers",
        ),
        ("[bin]\npolygon = [[0, 0], [inf, 0], [10, 10]]\n", "pairs of finite numbers"),
        # corners out of order: a bow tie, two triangles for the bin's floor (`binpick bin` used it)
        (
            "[bin]\npolygon = [[402, 168], [938, 528], [936, 168], [400, 528]]\n",
            "bin.polygon: the outline crosses itself: the edge from corner 1 (402, 168) to corner 2 "
            "(938, 528) crosses the edge from corner 3 (936, 168) to corner 4 (400, 528)",
        ),
        ("[appliance]\ncycle_period_s = nan\n", "appliance.cycle_period_s = nan: expected a finite number"),
        ("[calibration]\npick_height_mm = 1" + "0" * 400 + "\n", "expected a finite number"),  # OverflowError
        ("[camera]\nseed = " + "1" * 5000 + "\n", "not valid TOML (Exceeds the limit (4300"),
        ("[ranking]\nmax_area = nan\n", "ranking.max_area = nan: expected a number that is not NaN"),
        # ports: 0 was taken as "any free port", so the PLC never knew where to connect
        ("[plc]\ntcp_port = 0\n", "plc.tcp_port = 0: expected a value in [1, 65535]"),
        ("[health]\nhttp_port = 0\n", "health.http_port = 0: expected a value in [1, 65535]"),
        (
            "[plc]\ntcp_port = 8080\n[health]\nhttp_port = 8080\n",
            "health.http_port = 8080 is plc.tcp_port too (hosts '127.0.0.1' and '127.0.0.1')",
        ),
        (
            '[plc]\ntcp_port = 8080\n[health]\nhttp_port = 8080\nhttp_host = "localhost"\n',
            "health.http_port = 8080 is plc.tcp_port too",
        ),
        # every grab: ValueError "unknown preset" from Mikado, logged with its traceback
        ("[camera]\npreset = 'foo'\n", "camera.preset = 'foo': expected one of 'mikado', 'mikado+'"),
        # a path under the home of a user who does not exist: RuntimeError before
        (
            f'[inference]\ntorch_checkpoint = "{NO_SUCH_USER}/x.pt"\n',
            f"inference.torch_checkpoint = '{NO_SUCH_USER}/x.pt': cannot expand '{NO_SUCH_USER}'",
        ),
    ],
)
def test_values_that_fail_every_cycle_are_refused(text, expected):
    with pytest.raises(ConfigError) as err:
        parse(text)
    assert str(PATH) in str(err.value)
    assert expected in str(err.value), str(err.value)


@pytest.mark.parametrize(
    ("good", "bad"),
    [
        # no upper bound (docs/hotpath.md) is above any pixel count
        ("[ranking]\nmin_area = 100\nmax_area = inf\n", "[ranking]\nmin_area = 100\nmax_area = 99\n"),
        # a fraction against pixels depends on the image size: not judged; equal bounds pass one area
        ("[ranking]\nmin_area = 0.5\nmax_area = 50\n", "[ranking]\nmin_area = 51\nmax_area = 50\n"),
        ("[ranking]\nmin_area = 50\nmax_area = 50\n", "[ranking]\nmin_area = 50.5\nmax_area = 50\n"),
        ("[calibration]\npick_height_mm = -500\n", "[calibration]\npick_height_mm = -500.5\n"),
        ("[camera]\nseed = 9223372036854775807\n", "[camera]\nseed = 9223372036854775808\n"),
        # a concave interior is a bin's; only one whose edges cross is not
        (
            "[bin]\npolygon = [[0, 0], [100, 0], [100, 50], [50, 50], [50, 100], [0, 100]]\n",
            "[bin]\npolygon = [[0, 0], [100, 0], [50, 50], [50, 100], [100, 50], [0, 100]]\n",
        ),
        # one port for both only collides when both listen, on one address
        (
            "[plc]\ntcp_port = 8080\n[health]\nhttp_port = 8080\nhttp_enabled = false\n",
            "[plc]\ntcp_port = 8080\n[health]\nhttp_port = 8080\n",
        ),
        (
            '[plc]\ntcp_port = 8080\n[health]\nhttp_port = 8080\nhttp_host = "127.0.0.2"\n',
            '[plc]\ntcp_port = 8080\n[health]\nhttp_port = 8080\nhttp_host = "0.0.0.0"\ntokens = ["t:viewer:'
            + 'scrypt$16384$8$1$MDEyMzQ1Njc4OWFiY2RlZg==$MDEyMzQ1Njc4OWFiY2RlZjAxMjM0NTY3ODlhYmNkZWY="]\n',
        ),
    ],
)
def test_the_limits_leave_the_meaningful_values(good, bad):
    parse(good)
    with pytest.raises(ConfigError):
        parse(bad)


def test_a_byte_order_mark_is_named(tmp_path):
    path = tmp_path / "cell.toml"
    path.write_bytes(b"\xef\xbb\xbf[appliance]\nname = 'x'\n")
    with pytest.raises(ConfigError, match="starts with a UTF-8 byte-order mark") as err:
        load_config(path, check_files=False)
    assert str(path) in str(err.value)


def test_a_file_that_is_not_utf8_is_named(tmp_path):
    path = tmp_path / "cell.toml"
    path.write_bytes(b"[appliance]\nname = '\xff\xfe'\n")
    with pytest.raises(ConfigError, match=r"not a UTF-8 text file \(byte 0xff at offset 20\)") as err:
        load_config(path)
    assert str(path) in str(err.value)


def test_a_configuration_under_an_unknown_users_home_is_named():
    with pytest.raises(ConfigError, match=f"cannot expand '{NO_SUCH_USER}': no such user's home"):
        load_config(f"{NO_SUCH_USER}/cell.toml")


def test_check_config_loads_the_register_map(tmp_path):
    registers = (ROOT / "firmware_config" / "registers.toml").read_text()
    path = write(tmp_path, "", registers.replace("protocol_version = 2", "protocol_version = -7"))
    with pytest.raises(ConfigError) as err:
        load_config(path)
    assert f"{path}: plc.registers: {tmp_path / 'registers.toml'}: map.protocol_version = -7" in str(
        err.value
    )


def test_check_config_refuses_an_unknown_key_in_the_register_map(tmp_path):
    """`maximum = 5` for `max` on a PLC-writable register: accepted before, with no limit at all."""
    registers = (ROOT / "firmware_config" / "registers.toml").read_text()
    path = write(
        tmp_path, "", registers.replace('name = "trigger_id"\n', 'name = "trigger_id"\nmaximum = 5\n')
    )
    with pytest.raises(ConfigError) as err:
        load_config(path)
    where = f"{path}: plc.registers: {tmp_path / 'registers.toml'}"
    assert f"{where}: register[5] (trigger_id): unknown key 'maximum'" in str(err.value)


def check_config(path):
    """`binpick run --config PATH --check-config` as a user runs it."""
    return subprocess.run(
        [sys.executable, "-m", "edge", "run", "--config", str(path), "--check-config"],
        capture_output=True,
        text=True,
        timeout=120,
        cwd=ROOT,
    )


@pytest.mark.parametrize(
    ("content", "expected"),
    [
        (b"\x89PNG\r\n\x1a\n\x00\x00\xff", "not a UTF-8 text file"),
        (b"\xef\xbb\xbf[camera]\nseed = 1\n", "byte-order mark"),
    ],
)
def test_check_config_command_gives_one_line(tmp_path, content, expected):
    path = tmp_path / "cell.toml"
    path.write_bytes(content)
    proc = check_config(path)
    assert proc.returncode == 2, proc.stderr
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and str(path) in lines[0] and expected in lines[0], proc.stderr


def test_an_empty_model_file_is_named(tmp_path):
    path = write(tmp_path, "")
    (tmp_path / "m.onnx").unlink()
    (tmp_path / "m.onnx").write_bytes(b"")
    with pytest.raises(ConfigError) as err:
        load_config(path)
    assert f"{path}: inference.model: model file '{tmp_path / 'm.onnx'}' is an empty file (0 bytes)" in str(
        err.value
    )


def test_an_unknown_preset_stops_binpick_bin_in_one_line(tmp_path):
    """`binpick bin` loads the configuration without its files (it writes the bin model), yet the
    preset is refused there too: it used to end in a traceback from the simulated camera."""
    path = tmp_path / "a.toml"
    path.write_text("[camera]\nsource = 'simulated'\npreset = 'foo'\n")
    proc = subprocess.run(
        [sys.executable, "-m", "edge", "bin", "--config", str(path), "--out", str(tmp_path / "b.json")],
        capture_output=True,
        text=True,
        timeout=120,
        cwd=ROOT,
    )
    assert proc.returncode == 2, proc.stderr
    assert "Traceback" not in proc.stderr, proc.stderr
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and f"{path}: camera.preset = 'foo': expected one of" in lines[0], proc.stderr


def test_the_preset_is_only_checked_for_the_simulated_camera():
    """Another source never uses it (and never imports Mikado to check it)."""
    parse("[camera]\nsource = 'opencv'\nuri = '0'\npreset = 'foo'\n")
    with pytest.raises(ConfigError, match="camera.preset = 'foo'"):
        parse("[camera]\nsource = 'simulated'\npreset = 'foo'\n")


@pytest.mark.parametrize(
    ("text", "what"),
    [
        ("", "empty file"),
        ("\n  \n", "empty file"),
        ("# binpick\n# nothing set yet\n", "only comments"),
        ("[camera]\n[inference]\n# model = 'x.onnx'\n", "only empty sections"),
    ],
)
def test_a_file_that_sets_nothing_is_refused(tmp_path, text, what):
    """It used to run entirely on the defaults: a simulated camera, Modbus on 5020, the page on 8080."""
    path = tmp_path / "empty.toml"
    path.write_text(text)
    for check_files in (True, False):
        with pytest.raises(ConfigError) as err:
            load_config(path, check_files=check_files)
        assert str(err.value).startswith(f"{path}: no settings ({what}): expected the cell's settings")


def test_one_setting_is_enough_to_be_a_configuration():
    assert parse("[camera]\nseed = 3\n").camera.seed == 3


def test_an_empty_snapshot_dir_is_refused():
    """An empty path was the working directory: snapshots among whatever files were there."""
    with pytest.raises(ConfigError, match=r"health.snapshot_dir = '': expected a folder"):
        parse('[health]\nsnapshot_dir = ""\n')


@pytest.mark.parametrize(
    ("where", "expected"),
    [
        ("note.txt", "is a file, expected a folder"),
        ("note.txt/snaps", "cannot be created: {tmp}/note.txt is a file"),
        ("/proc/binpick-snaps", "cannot be created in /proc ("),
        ("/proc/self", "cannot be written ("),
    ],
)
def test_a_snapshot_dir_that_cannot_take_snapshots_is_refused(tmp_path, where, expected):
    """It passed the check and failed at the first failed cycle's snapshot (as root too: /proc)."""
    (tmp_path / "note.txt").write_text("a file")
    path = write(tmp_path, f'[health]\nsnapshot_dir = "{where}"\n')
    with pytest.raises(ConfigError) as err:
        load_config(path)
    shown = where if where.startswith("/") else str(tmp_path / where)
    assert f"{path}: health.snapshot_dir = '{shown}': {expected.format(tmp=tmp_path)}" in str(err.value)


def test_a_snapshot_dir_is_checked_without_being_created(tmp_path):
    path = write(tmp_path, '[health]\nsnapshot_dir = "out/snaps"\n')
    assert load_config(path).health.snapshot_dir == str(tmp_path / "out" / "snaps")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["cell.toml", "m.onnx", "registers.toml"]
    (tmp_path / "snaps").mkdir()
    load_config(write(tmp_path / "snaps", '[health]\nsnapshot_dir = "."\n'))
    assert list((tmp_path / "snaps").glob(".binpick-check-*")) == []


def bin_model_file(tmp_path: Path, content: str) -> Path:
    path = tmp_path / "binbad.json"
    path.write_text(content)
    return path


@pytest.mark.parametrize(
    ("extra", "files", "expected"),
    [
        # run exited 2 at start with the bin model's own error; the check said OK
        (
            '[bin]\nenabled = true\nmodel = "binbad.json"\n',
            {"binbad.json": '{"garbage": 1}'},
            "bin.model: {tmp}/binbad.json: format: missing (expected 1; is this a bin model?)",
        ),
        # every cycle failed with calibration_missing
        (
            '[calibration]\nfile = "absent.json"\nrequired = true\n',
            {},
            "calibration.file = '{tmp}/absent.json': file not found, and calibration.required = true",
        ),
        (
            '[calibration]\nfile = "cal.json"\nrequired = true\n',
            {"cal.json": "{"},
            "calibration.file: {tmp}/cal.json: field '<file>' is 'invalid JSON at line 1 column 2'",
        ),
        # every cycle failed with camera_lost "needs `pip install pyrealsense2`"
        (
            '[camera]\nsource = "realsense"\n',
            {},
            "camera.source = 'realsense': needs `pip install pyrealsense2` "
            "(module 'pyrealsense2' is not installed)",
        ),
    ],
)
def test_check_config_refuses_what_run_would_fail_on(tmp_path, monkeypatch, extra, files, expected):
    if "pyrealsense2" in expected and importlib.util.find_spec("pyrealsense2") is not None:
        pytest.skip("pyrealsense2 is installed here")
    for name, content in files.items():
        (tmp_path / name).write_text(content)
    path = write(tmp_path, extra)
    with pytest.raises(ConfigError) as err:
        load_config(path)
    assert f"{path}: {expected.format(tmp=tmp_path)}" in str(err.value), str(err.value)
    proc = check_config(path)
    lines = proc.stderr.strip().splitlines()
    assert proc.returncode == 2 and len(lines) == 1 and expected.format(tmp=tmp_path) in lines[0], proc.stderr


def test_what_run_needs_passes_when_it_is_there(tmp_path, monkeypatch):
    """The same keys pass once their file or package is there: a calibration that is not
    required may be missing (pixel mode), and a depth camera's package is looked for, not imported."""
    load_config(write(tmp_path, '[calibration]\nfile = "absent.json"\nrequired = false\n'))
    monkeypatch.setitem(sys.modules, "pyrealsense2", types.ModuleType("pyrealsense2"))
    path = tmp_path / "cell.toml"
    path.write_text('[inference]\nmodel = "m.onnx"\n[camera]\nsource = "realsense"\n')
    assert load_config(path).camera.source == "realsense"


def test_the_calibration_wizard_loads_a_configuration_whose_calibration_it_is_to_write(tmp_path):
    path = write(tmp_path, '[calibration]\nfile = "cal.json"\nrequired = true\n')
    with pytest.raises(ConfigError, match="file not found, and calibration.required = true"):
        load_config(path)
    assert load_config(path, check_calibration=False).calibration.required


@pytest.mark.parametrize(
    ("model", "refused"), [("bicameral_f25_rgbd.onnx", True), ("bicameral_f25_rgb.onnx", False)]
)
def test_a_torch_checkpoint_must_take_the_models_input(tmp_path, model, refused):
    """The frames are prepared as inference.model says; an RGB checkpoint behind the RGB-D model
    passed the check, then every cycle failed "expected input [N, 3, H, W], got [1, 4, 512, 512]".
    Without torch, the same configuration names the `train` extra (tests/test_plugin_points.py)."""
    pytest.importorskip("torch", reason="the torch backend is the `train` extra")
    checkpoint = ROOT / "models" / "bicameral_f25_rgb.pt"
    path = tmp_path / "cell.toml"
    (tmp_path / "registers.toml").write_text((ROOT / "firmware_config" / "registers.toml").read_text())
    path.write_text(
        f'[camera]\nsource = "simulated"\n[inference]\nmodel = "{ROOT / "models" / model}"\n'
        f'backend = "torch"\ntorch_checkpoint = "{checkpoint}"\n'
    )
    if not refused:
        assert load_config(path).inference.torch_checkpoint == str(checkpoint)
        return
    with pytest.raises(ConfigError) as err:
        load_config(path)
    assert (
        f"{path}: inference.torch_checkpoint = '{checkpoint}' takes 'rgb' input (3 channels), but "
        f"inference.model = '{ROOT / 'models' / model}' prepares 'rgbd' input (4 channels)"
    ) in str(err.value), str(err.value)


def test_the_start_reads_the_torch_checkpoint_once_not_again_after_the_check(tmp_path, monkeypatch):
    """The configuration check reads the whole checkpoint (torch.load, weights included) to
    compare its input with the model's; the backend built at the start read it a second time.
    It now takes the check's read, unless the file changed in between (then it reads it again).
    torch.load is wrapped to count the reads; each one is the real thing."""
    torch = pytest.importorskip("torch", reason="the torch backend is the `train` extra")
    import numpy as np

    from edge.inference import load_backend

    checkpoint = tmp_path / "f25.pt"
    checkpoint.write_bytes((ROOT / "models" / "bicameral_f25_rgb.pt").read_bytes())
    path = write(
        tmp_path, f'backend = "torch"\ntorch_checkpoint = "{checkpoint}"\n[camera]\nsource = "simulated"\n'
    )
    reads = []
    real_load = torch.load
    monkeypatch.setattr(torch, "load", lambda f, *a, **k: reads.append(str(f)) or real_load(f, *a, **k))

    backend = load_backend(load_config(path).inference, (1, 3, 64, 64))
    assert reads == [str(checkpoint)]  # the check's read only
    boundaries, occlusions = backend.infer(np.zeros((1, 3, 64, 64), np.float32))
    assert boundaries.shape == occlusions.shape == (64, 64)

    config = load_config(path)
    checkpoint.write_bytes(checkpoint.read_bytes())  # rewritten after the check: read again
    later = checkpoint.stat().st_mtime_ns + 10**9  # (a clock tick apart on any file system)
    os.utime(checkpoint, ns=(later, later))
    load_backend(config.inference, (1, 3, 64, 64))
    assert reads == [str(checkpoint)] * 3


def test_check_config_refuses_what_the_start_refuses(tmp_path):
    """An RGB-D model on a replay folder without depth files passed --check-config (the installer's
    gate) and then stopped the start with exit 2 (a unit restarted in a loop); --check-config now
    builds what the start builds and says so."""
    folder = tmp_path / "frames"
    folder.mkdir()
    (folder / "a.png").write_bytes((ROOT / "examples" / "pile" / "rgb.png").read_bytes())
    path = write(tmp_path, f'[camera]\nsource = "folder"\nfolder = "{folder}"\n')
    (tmp_path / "m.onnx").unlink()
    (tmp_path / "m.onnx").symlink_to(RGB_MODEL.with_name("bicameral_f25_rgbd.onnx"))
    proc = check_config(path)
    assert proc.returncode == 2, proc.stderr
    line = proc.stderr.strip().splitlines()[-1]
    assert (
        f"{path}: the start would fail: {folder}: the model takes depth, but no image has a depth file"
        in line
    )
    (folder / "a_depth.npy").write_bytes(b"")  # named beside it: the folder can deliver depth
    proc = check_config(path)
    assert proc.returncode == 0 and proc.stderr.strip().endswith(f"{path}: OK"), proc.stderr


def test_check_config_does_not_open_a_camera_device(tmp_path):
    """A running appliance holds its camera: the check names what it did not open instead of
    failing on a device that is busy (here: one that does not exist)."""
    path = write(tmp_path, '[camera]\nsource = "opencv"\nuri = "/dev/video_binpick_absent"\n')
    proc = check_config(path)
    assert proc.returncode == 0, proc.stderr
    assert f"{path}: camera.source = 'opencv' not opened (the running appliance may hold it)" in proc.stderr


def test_before_calibration_lets_the_installer_pass_a_required_calibration_not_written_yet(tmp_path):
    path = write(tmp_path, f'[calibration]\nfile = "{tmp_path / "current.json"}"\nrequired = true\n')
    assert check_config(path).returncode == 2  # the technician's check still says it is missing
    run = [sys.executable, "-m", "edge", "run", "--config", str(path)]
    proc = subprocess.run(
        [*run, "--check-config", "--before-calibration"], capture_output=True, text=True, timeout=120
    )
    assert proc.returncode == 0 and proc.stderr.strip().endswith(f"{path}: OK"), proc.stderr
    proc = subprocess.run([*run, "--before-calibration"], capture_output=True, text=True, timeout=60)
    assert proc.returncode == 2 and "--before-calibration: only with --check-config" in proc.stderr


def test_a_file_without_ranking_prefers_the_occluding_side(tmp_path):
    """What every shipped configuration sets is the key's default: a cell file written by hand
    without [ranking] got the plain order, which picks floor gaps (docs/simcell.md)."""
    assert load_config(write(tmp_path, "")).ranking.prefer_occluding_side is True


def depth_folder(tmp_path: Path) -> Path:
    """A replay folder as a RealSense tool saves it: a.png with its 16-bit depth a_depth.png."""
    import cv2
    import numpy as np

    folder = tmp_path / "frames"
    folder.mkdir()
    (folder / "a.png").write_bytes((ROOT / "examples" / "pile" / "rgb.png").read_bytes())
    cv2.imwrite(str(folder / "a_depth.png"), np.full((8, 8), 800, np.uint16))
    return folder


def test_a_depth_suffix_written_with_its_extension_is_refused(tmp_path):
    """`depth_suffix = "_depth.png"` passed the check; the source then looked for a_depth.png.png
    (no depth, ever) and left out only stems ending in "_depth.png", so a_depth.png was replayed
    as an image. Refused at load in one line naming file, key, value and what is expected."""
    folder = depth_folder(tmp_path)
    path = write(tmp_path, f'[camera]\nsource = "folder"\nfolder = "{folder}"\ndepth_suffix = "_depth.png"\n')
    with pytest.raises(ConfigError) as err:
        load_config(path)
    assert str(err.value) == (
        f"{path}: camera.depth_suffix = '_depth.png': expected the name's part before the extension, "
        "e.g. '_depth' (NAME_depth.png|.npy|.exr beside NAME.png)"
    )
    path.write_text(path.read_text().replace('"_depth.png"', '"_depth"'))
    assert load_config(path).camera.depth_suffix == "_depth"


def test_no_depth_suffix_where_the_pattern_matches_depth_maps_is_refused(tmp_path):
    """`depth_suffix = ""` (no depth) with the default `pattern = "*.png"` replayed a_depth.png as
    a frame of its own. Refused where the folder holds such a pair; a folder of images alone, or a
    pattern that leaves the maps out, still loads with no depth."""
    from edge.camera.base import CameraError
    from edge.camera.folder_source import FolderSource

    folder = depth_folder(tmp_path)
    path = write(tmp_path, f'[camera]\nsource = "folder"\nfolder = "{folder}"\ndepth_suffix = ""\n')
    with pytest.raises(ConfigError) as err:
        load_config(path)
    assert str(err.value) == (
        f"{path}: camera.depth_suffix = '': pattern '*.png' matches depth maps in {folder} (a_depth.png "
        "beside a.png), which would be replayed as images: expected depth_suffix = '_depth' (their "
        "suffix), or a pattern that leaves them out"
    )
    with pytest.raises(CameraError, match="a_depth.png beside a.png"):  # the source refuses it too
        FolderSource(str(folder), "*.png", depth_suffix="").open()
    path.write_text(path.read_text() + 'pattern = "a.png"\n')
    assert load_config(path).camera.pattern == "a.png"
    (folder / "a_depth.png").unlink()
    path.write_text(path.read_text().replace('pattern = "a.png"\n', ""))
    assert load_config(path).camera.depth_suffix == ""
    source = FolderSource(str(folder), "*.png", depth_suffix="")
    source.open()
    assert [p.name for p in source.files] == ["a.png"]


def test_a_realsense_without_a_size_takes_a_mode_the_camera_offers(tmp_path):
    """camera.width/height default to 512x512 (the simulated bin's and the model's size), which
    no RealSense colour sensor offers: a RealSense configured without a size never started. Left
    out, the size is now 640x480 for it; written, it is kept; other sources keep 512x512."""
    path = tmp_path / "c.toml"

    def size(camera: str) -> tuple[int, int]:
        cfg = parse_config(f"[camera]\n{camera}\n", path, check_files=False)
        return cfg.camera.width, cfg.camera.height

    assert size('source = "realsense"') == (640, 480)
    assert size('source = "realsense"\nwidth = 1280\nheight = 720') == (1280, 720)
    assert size('source = "simulated"') == (512, 512)
    assert size('source = "orbbec"') == (512, 512)  # unused: the device's default profiles
