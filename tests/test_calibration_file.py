"""The calibration file: validation naming the field, atomic writes, numbered backups."""

import json
import os
import signal
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

import edge.calibration_file as cf
from edge.atomic_file import backup_paths
from edge.calibration_file import (
    Calibration,
    CalibrationError,
    load_calibration,
    save_calibration,
)

ROOT = Path(__file__).resolve().parents[1]


def make_calibration(cell="cell-a", pick_offset=0.0) -> Calibration:
    k = np.array([[900.0, 0, 300.0], [0, 901.0, 260.0], [0, 0, 1]])
    t = np.eye(4)
    t[:3, :3] = np.diag([1.0, -1.0, -1.0])
    t[:3, 3] = [400.0, 0.0, 800.0]
    return Calibration(
        cell=cell,
        image_size=(640, 480),
        camera_matrix=k,
        dist_coeffs=np.array([-0.1, 0.02, 0.0, 0.0, 0.0]),
        robot_from_camera=t,
        plane_normal=np.array([0.0, 0.0, 1.0]),
        plane_offset_mm=20.0,
        pick_height_offset_mm=pick_offset,
        roi_polygon=np.array([[10.0, 10], [600, 10], [600, 470], [10, 470]]),
        intrinsics_report={"rms_px": 0.2, "passed": True, "threshold_px": 0.5},
        extrinsics_report={"rms_mm": 0.4, "passed": True, "threshold_mm": 2.0},
        board={"name": "test", "type": "chessboard"},
        validation=[{"pixel": [320, 240], "error_mm": 0.8}],
        created="2026-11-26T04:00:00+00:00",
        wizard_version="test",
    )


def test_round_trip_and_contract_api(tmp_path):
    path = tmp_path / "cell-a.json"
    assert save_calibration(make_calibration(pick_offset=15.0), path) is None
    cal = load_calibration(path)
    assert cal.image_size == (640, 480)
    assert cal.passed
    # pick plane = floor (z = 20) + 15 mm pick offset; height_mm raises it further
    xyz = cal.pixel_to_robot(300.0, 260.0)
    np.testing.assert_allclose(xyz, [400.0, 0.0, 35.0], atol=1e-9)
    np.testing.assert_allclose(cal.pixel_to_robot(300.0, 260.0, height_mm=5.0)[2], 40.0)
    np.testing.assert_allclose(cal.robot_to_pixel(xyz), (300.0, 260.0), atol=1e-6)
    assert cal.roi_polygon.shape == (4, 2)
    assert cal.mm_per_pixel_at(300.0, 260.0) == pytest.approx((800 - 35) / np.sqrt(900 * 901), rel=1e-4)
    assert json.loads(path.read_text())["version"] == 1


def test_save_keeps_numbered_backups(tmp_path):
    path = tmp_path / "cell-a.json"
    save_calibration(make_calibration(pick_offset=1.0), path)
    b1 = save_calibration(make_calibration(pick_offset=2.0), path)
    b2 = save_calibration(make_calibration(pick_offset=3.0), path)
    assert (b1.name, b2.name) == ("cell-a.json.bak1", "cell-a.json.bak2")
    assert backup_paths(path) == [b1, b2]
    assert load_calibration(b1).pick_height_offset_mm == 1.0
    assert load_calibration(b2).pick_height_offset_mm == 2.0
    assert load_calibration(path).pick_height_offset_mm == 3.0
    assert not list(tmp_path.glob(".*.tmp"))


def _write(tmp_path, mutate):
    data = make_calibration().to_dict()
    mutate(data)
    path = tmp_path / "bad.json"
    path.write_text(json.dumps(data))
    return path


@pytest.mark.parametrize(
    "field,mutate",
    [
        ("format", lambda d: d.update(format="other")),
        ("version", lambda d: d.update(version=2)),
        ("image_size", lambda d: d.update(image_size=[640])),
        ("intrinsics.camera_matrix", lambda d: d["intrinsics"].update(camera_matrix=[[1, 0], [0, 1]])),
        ("intrinsics.camera_matrix", lambda d: d["intrinsics"]["camera_matrix"][0].__setitem__(0, -5)),
        ("intrinsics.dist_coeffs", lambda d: d["intrinsics"].update(dist_coeffs=[0.1, 0.2, 0.3])),
        ("intrinsics.dist_coeffs", lambda d: d["intrinsics"].update(dist_coeffs="none")),
        ("intrinsics.rms_px", lambda d: d["intrinsics"].pop("rms_px")),
        ("camera_to_robot.matrix", lambda d: d["camera_to_robot"]["matrix"][0].__setitem__(0, 2.0)),
        ("camera_to_robot", lambda d: d.pop("camera_to_robot")),
        ("plane.normal", lambda d: d["plane"].update(normal=[0, 0, 2])),
        ("plane.offset_mm", lambda d: d["plane"].update(offset_mm=float("nan"))),
        ("plane", lambda d: d["plane"].update(offset_mm=800.0)),  # camera on the plane
        ("pick_height_offset_mm", lambda d: d.update(pick_height_offset_mm="10")),
        ("roi_polygon", lambda d: d.update(roi_polygon=[[0, 0], [1, 1]])),
        # numbers each finite but absurd: they used to load and give grasps of 0 x 0 mm
        ("intrinsics.camera_matrix", lambda d: d["intrinsics"]["camera_matrix"][0].__setitem__(0, 1e308)),
        ("intrinsics.camera_matrix", lambda d: d["intrinsics"]["camera_matrix"][1].__setitem__(1, 1.0)),
        ("intrinsics.dist_coeffs", lambda d: d["intrinsics"].update(dist_coeffs=[1e300, 0, 0, 0, 0])),
        # a lens model that folds back inside the image: the corners map nowhere sensible
        ("intrinsics.dist_coeffs", lambda d: d["intrinsics"].update(dist_coeffs=[-5.0, 0, 0, 0, 0])),
        # a camera 1e17 mm away: robot coordinates lose every digit of the pixel
        ("plane", lambda d: d["camera_to_robot"]["matrix"][0].__setitem__(3, 1e17)),
        ("roi_polygon", lambda d: d.update(roi_polygon=[[0, 0], [0, 0], [0, 0]])),  # every cycle empty
        ("roi_polygon", lambda d: d.update(roi_polygon=[[0, 0], [100, 100], [200, 200]])),  # a line
        ("cell", lambda d: d.update(cell="")),
        ("validation", lambda d: d.update(validation={})),
    ],
)
def test_invalid_files_are_refused_naming_file_and_field(tmp_path, field, mutate):
    path = _write(tmp_path, mutate)
    with pytest.raises(CalibrationError) as err:
        load_calibration(path)
    assert err.value.field == field
    assert str(path) in str(err.value) and f"'{field}'" in str(err.value)


def test_truncated_empty_and_missing_files(tmp_path):
    good = tmp_path / "good.json"
    save_calibration(make_calibration(), good)
    text = good.read_text()
    for name, content in [("partial.json", text[: len(text) // 2]), ("empty.json", ""), ("list.json", "[]")]:
        path = tmp_path / name
        path.write_text(content)
        with pytest.raises(CalibrationError, match=name):
            load_calibration(path)
    (tmp_path / "binary.json").write_bytes(b"\xff\xfe\x00garbage")
    with pytest.raises(CalibrationError, match="UTF-8"):
        load_calibration(tmp_path / "binary.json")
    with pytest.raises(CalibrationError, match="binpick calibrate"):
        load_calibration(tmp_path / "absent.json")


def test_deeply_nested_json_is_refused_naming_the_file(tmp_path):
    path = tmp_path / "deep.json"
    path.write_text("[" * 100_000 + "]" * 100_000)
    with pytest.raises(CalibrationError, match="deep.json") as err:
        load_calibration(path)
    assert err.value.field == "<file>"


def test_a_rewrite_keeps_the_files_mode(tmp_path):
    """The appliance (its own user) must still read the file after a technician recalibrates."""
    path = tmp_path / "cell-a.json"
    old = os.umask(0o077)
    try:
        save_calibration(make_calibration(pick_offset=1.0), path)
        assert path.stat().st_mode & 0o777 == 0o600  # a new file: 0666 less this umask
        path.chmod(0o644)
        save_calibration(make_calibration(pick_offset=2.0), path)
    finally:
        os.umask(old)
    assert path.stat().st_mode & 0o777 == 0o644
    assert load_calibration(path).pick_height_offset_mm == 2.0


def test_save_refuses_an_invalid_calibration_and_keeps_the_old_file(tmp_path):
    path = tmp_path / "cell-a.json"
    save_calibration(make_calibration(), path)
    before = path.read_bytes()
    bad = make_calibration()
    bad.camera_matrix = np.array([[0.0, 0, 1], [0, 1, 1], [0, 0, 1]])
    with pytest.raises(CalibrationError, match="camera_matrix"):
        save_calibration(bad, path)
    assert path.read_bytes() == before and not backup_paths(path)


def test_exception_between_temp_write_and_rename_keeps_old_file(tmp_path, monkeypatch):
    path = tmp_path / "cell-a.json"
    save_calibration(make_calibration(pick_offset=1.0), path)
    before = path.read_bytes()

    def boom(src, dst):
        raise OSError("disk pulled out")

    monkeypatch.setattr(cf.os, "replace", boom)
    with pytest.raises(OSError, match="disk pulled"):
        save_calibration(make_calibration(pick_offset=2.0), path)
    assert path.read_bytes() == before
    assert not list(tmp_path.glob(".*.tmp"))  # the temp file is cleaned up


def test_writer_killed_between_temp_write_and_rename_keeps_old_file(tmp_path):
    """A real SIGKILL of the writing process right before the rename."""
    path = tmp_path / "cell-a.json"
    save_calibration(make_calibration(pick_offset=1.0), path)
    before = path.read_bytes()
    code = f"""
import os, signal, sys
sys.path.insert(0, {str(ROOT)!r}); sys.path.insert(0, {str(Path(__file__).parent)!r})
import edge.calibration_file as cf
from test_calibration_file import make_calibration
cf.os.replace = lambda a, b: os.kill(os.getpid(), signal.SIGKILL)
cf.save_calibration(make_calibration(pick_offset=2.0), {str(path)!r})
"""
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert proc.returncode == -signal.SIGKILL, proc.stderr
    assert path.read_bytes() == before
    assert load_calibration(path).pick_height_offset_mm == 1.0
    leftovers = list(tmp_path.glob(".cell-a.json.*.tmp"))
    assert len(leftovers) == 1 and json.loads(leftovers[0].read_text())["pick_height_offset_mm"] == 2.0
    # the next save still works and does not mistake the stale temp file for a backup
    save_calibration(make_calibration(pick_offset=3.0), path)
    assert [p.name for p in backup_paths(path)] == ["cell-a.json.bak1", "cell-a.json.bak2"]
    assert os.path.exists(path)


def test_an_roi_above_the_horizon_is_refused_naming_it(tmp_path):
    """A camera tilted 10 degrees below the horizontal, an ROI on the image's top rows: no pixel
    of it meets the pick plane, so no grasp there could be published (it had escaped the
    round-trip check as an AttributeError from OpenCV's empty projection)."""
    import math

    a = math.radians(10)
    x_c, z_c = np.array([0, -1.0, 0]), np.array([math.cos(a), 0, -math.sin(a)])
    t = np.eye(4)
    t[:3, :3] = np.column_stack([x_c, np.cross(z_c, x_c), z_c])
    t[:3, 3] = [0, 0, 800.0]
    cal = make_calibration()
    cal.robot_from_camera = t
    cal.roi_polygon = np.array([[10.0, 0], [600, 0], [600, 40], [10, 40]])
    with pytest.raises(CalibrationError, match=r"roi_polygon.*rays meet the pick plane"):
        save_calibration(cal, tmp_path / "c.json")
