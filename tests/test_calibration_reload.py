"""The calibration file changed under a running appliance (`binpick run` as a subprocess, free-run
on a replay folder), seen by a real Modbus client on 127.0.0.1 polling the status bits and the
result block in one read (the bank answers a read under its lock: one consistent instant)."""

from __future__ import annotations

import json
import os
import threading
import urllib.request

import pytest
from appliance_helpers import (
    Appliance,
    appliance_config,
    tiny_model,
    wait_port,
    wait_until,
    write_pile_folder,
)
from pymodbus.client import ModbusTcpClient
from test_appliance_geometry import calibration

from edge.calibration_file import save_calibration
from edge.plc.register_map import RegisterMap

pytestmark = pytest.mark.timeout(150)
MAP = RegisterMap.load()
STATUS = MAP["status"].address
SEQUENCE = MAP["sequence_id"].address
FLOOR_Z_MM = 20.0  # test_appliance_geometry.calibration(): the pick plane's z; 0 in pixel mode


class Plc:
    """A polling PLC: reads status .. sequence_id in one request, as fast as it can, and keeps
    (pixel_mode, result_valid, result_error, z, sequence) for every read."""

    def __init__(self, port: int):
        self.client = ModbusTcpClient("127.0.0.1", port=port, timeout=2)
        assert self.client.connect(), f"no Modbus server on 127.0.0.1:{port}"
        self.reads: list[tuple[bool, bool, int, float, int]] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._poll, daemon=True)
        self._thread.start()

    def _poll(self) -> None:
        z = MAP["z"].address - STATUS
        while not self._stop.is_set():
            reply = self.client.read_holding_registers(STATUS, count=SEQUENCE - STATUS + 1, device_id=1)
            if reply.isError():
                continue
            w = reply.registers
            status = w[0]
            self.reads.append((
                bool(status & (1 << MAP.bits["pixel_mode"].bit)),
                bool(status & (1 << MAP.bits["result_valid"].bit)),
                w[MAP["result_error"].address - STATUS],
                MAP.words_to_float(w[z], w[z + 1]),
                w[-1],
            ))  # fmt: skip

    def latest(self) -> tuple[bool, bool, int, float, int] | None:
        return self.reads[-1] if self.reads else None

    def close(self) -> None:
        self._stop.set()
        self._thread.join(10)
        self.client.close()


@pytest.fixture(scope="module")
def model(tmp_path_factory):
    return tiny_model(tmp_path_factory.mktemp("model"))


@pytest.fixture
def cell(tmp_path, model):
    """A free-run appliance whose calibration file is `cal/cell.json` (absent at the start: pixel
    mode) and a polling PLC; yields (calibration path, Plc, Appliance, status page port)."""
    folder = write_pile_folder(tmp_path / "frames", count=2)
    cal = tmp_path / "cal" / "cell.json"
    cal.parent.mkdir()
    config, port, http = appliance_config(
        tmp_path, model, camera=f'source = "folder"\nfolder = "{folder}"', mode="free-run",
        appliance="cycle_period_s = 0.02",
    )  # fmt: skip
    config.write_text(config.read_text() + f'\n[calibration]\nfile = "{cal}"\n')
    app = Appliance(config, tmp_path)
    plc = None
    try:
        wait_port(port, 60)
        plc = Plc(port)
        wait_until(lambda: (plc.latest() or (0, 0, 0, 0, 0))[4] > 0, 30, what="a first published cycle")
        yield cal, plc, app, http
    finally:
        if plc is not None:
            plc.close()
        code = app.stop()
        assert code == 0, app.log()


def wait_units(plc: Plc, pixel_mode: bool, timeout: float = 20.0) -> None:
    """Until the PLC reads a valid grasp in the wanted units (z on the floor, or 0 in pixels)."""

    def seen() -> bool:
        r = plc.latest()
        return r is not None and r[1] and r[2] == 0 and r[0] == pixel_mode

    wait_until(seen, timeout, what=f"a grasp with pixel_mode={pixel_mode}")


def test_the_pixel_mode_bit_changes_with_the_result_it_describes(cell):
    """The bit was set at the start of the cycle that took up a new calibration (or lost it), while
    the result block still held the previous cycle's grasp, valid, in the previous units: a PLC read
    pixels as millimetres (z = 0 with pixel_mode 0) or the reverse until the cycle published."""
    cal, plc, app, _ = cell
    for _ in range(3):
        save_calibration(calibration(None), cal)  # as the wizard writes it
        wait_units(plc, pixel_mode=False)
        cal.unlink()  # documented: no file, pixel mode
        wait_units(plc, pixel_mode=True)
    mixed = [
        r for r in plc.reads
        if r[1] and r[2] == 0 and (r[0] != (r[3] == 0.0) or (not r[0] and abs(r[3] - FLOOR_Z_MM) > 1e-3))
    ]  # fmt: skip
    assert len(plc.reads) > 100, plc.reads
    assert not mixed, f"{len(mixed)} of {len(plc.reads)} reads mix the units: {mixed[:3]}"


REFUSED = "calibration file refused, the one loaded before stays in use"


def replace_atomically(path, text: str) -> None:
    """As the wizard (and `mv` of a prepared file) does: a whole file renamed over the old one."""
    spare = path.with_name(f".{path.name}.new")
    spare.write_text(text)
    os.replace(spare, path)


def test_a_file_that_cannot_be_used_is_refused_and_the_one_loaded_before_stays(cell):
    """A file that is there but unusable (an editor's in-place save caught half-written, a field
    that fails validation, a file for another image size) had dropped the running cell to pixel
    mode: the PLC got pixels where it had millimetres until the file was fixed. Now one WARNING
    line each, the grasps stay in the last good calibration's millimetres, and a good file put in
    place afterwards, by an editor's in-place rewrite, is taken up without a restart."""
    cal, plc, app, _ = cell
    save_calibration(calibration(None), cal)
    wait_units(plc, pixel_mode=False)
    good = json.loads(cal.read_text())
    other_size = json.loads(cal.read_text())
    other_size["image_size"] = [128, 96]
    invalid = json.loads(cal.read_text())
    invalid["plane"]["normal"] = [0.0, 0.0, 2.0]
    bad = {
        # one ftruncate: the cycle's stat cannot see an empty file first (two refusals)
        "half-written in place": lambda: os.truncate(cal, 300),
        "another image size": lambda: replace_atomically(cal, json.dumps(other_size)),
        "a field that fails validation": lambda: replace_atomically(cal, json.dumps(invalid)),
    }
    first = len(plc.reads)
    for count, (what, put) in enumerate(bad.items(), start=1):
        put()
        wait_until(lambda c=count: app.log().count(REFUSED) >= c, 20, what=f"the refusal of {what}")
        sequence = plc.latest()[4]
        wait_until(lambda s=sequence: plc.latest()[4] >= s + 3, 20, what="3 more cycles")
        assert app.log().count(REFUSED) == count, (what, app.log())  # one line, not one per cycle
    assert "128x96 images but the camera delivers 96x96" in app.log()
    assert "field 'plane.normal' is [0.0, 0.0, 2.0]" in app.log()
    grasps = [r for r in plc.reads[first:] if r[1] and r[2] == 0]
    assert grasps and all(not r[0] and abs(r[3] - FLOOR_Z_MM) < 1e-3 for r in grasps), grasps[-3:]
    assert not [r for r in plc.reads[first:] if r[2] != 0], "a cycle failed meanwhile"

    good["plane"]["offset_mm"] = 30.0  # floor 10 mm higher: grasps at z = 30
    with open(cal, "w", encoding="utf-8") as handle:  # an editor's in-place save, completed
        handle.write(json.dumps(good))
    wait_until(lambda: abs(plc.latest()[3] - 30.0) < 1e-3, 20, what="grasps on the new floor")
    assert not plc.latest()[0]


def test_a_new_file_with_the_old_files_mtime_is_taken_up(cell):
    """The watcher compared the mtime alone: a file put in place with the same mtime (copied with
    its timestamp: `cp -p`, `rsync -t`, tar; or written within one timestamp tick, 4 ms on a
    kernel with coarse timestamps, 1-2 s on some filesystems) was never loaded, and the cell kept
    the old calibration for ever while the file said otherwise. Here an editor's in-place save is
    seen half-written, then completed, both with the old file's mtime."""
    cal, plc, app, _ = cell
    save_calibration(calibration(None), cal)
    wait_units(plc, pixel_mode=False)
    old = cal.stat()
    new = json.loads(cal.read_text())
    new["plane"]["offset_mm"] = 30.0
    text = json.dumps(new)
    with open(cal, "w", encoding="utf-8") as handle:
        handle.write(text[:300])
    os.utime(cal, ns=(old.st_atime_ns, old.st_mtime_ns))
    # >= 1: a cycle's stat between the truncation and the write sees an empty file first
    wait_until(lambda: app.log().count(REFUSED) >= 1, 20, what="the half-written file's refusal")
    with open(cal, "w", encoding="utf-8") as handle:
        handle.write(text)
    os.utime(cal, ns=(old.st_atime_ns, old.st_mtime_ns))
    wait_until(lambda: abs(plc.latest()[3] - 30.0) < 1e-3, 20, what="grasps on the new floor")


def failed_calibration():
    """What `binpick calibrate --accept-failed` writes after a failed camera-to-robot fit and a
    failed touch test: usable geometry, checks recorded as failed."""
    cal = calibration(None)
    cal.extrinsics_report = {"rms_mm": 2.6, "threshold_mm": 2.0, "passed": False}
    cal.validation = [{"pixel": [48, 48], "error_mm": 3.7, "threshold_mm": 2.0, "passed": False}]
    return cal


def test_a_calibration_written_with_accept_failed_is_used_and_shown_as_failed(cell):
    """A file whose checks failed (`--accept-failed`) was loaded with "calibration loaded" alone:
    nothing in the log, on the page or in /metrics said that its millimetres were unchecked. It is
    still used (the technician accepted it), with one WARNING naming the file and what failed, and
    the status JSON, the overview and /metrics say so until a file that passed replaces it."""
    cal, plc, app, http = cell
    base = f"http://127.0.0.1:{http}"

    def get(path: str) -> bytes:
        return urllib.request.urlopen(base + path, timeout=5).read()

    save_calibration(failed_calibration(), cal)
    wait_units(plc, pixel_mode=False)  # used: grasps in millimetres
    sequence = plc.latest()[4]
    wait_until(lambda: plc.latest()[4] >= sequence + 3, 20, what="3 more cycles")
    failed = [
        "camera_to_robot: RMS residual 2.6 mm (limit 2 mm)",
        "validation at pixel (48, 48): error 3.7 mm (limit 2 mm)",
    ]
    lines = [line for line in app.log().splitlines() if "did not pass its checks" in line]
    assert len(lines) == 1, app.log()
    assert "WARNING" in lines[0] and str(cal) in lines[0] and "; ".join(failed) in lines[0], lines[0]
    assert json.loads(get("/status.json"))["calibration"]["failed_checks"] == failed
    summary = json.loads(get("/api/overview.json"))["calibration"]
    assert summary["passed"] is False and summary["failed_checks"] == failed
    assert "\nbinpick_calibration_failed_checks 2\n" in get("/metrics").decode()

    save_calibration(calibration(None), cal)  # recalibrated: every check passed
    wait_until(
        lambda: json.loads(get("/status.json"))["calibration"]["failed_checks"] == [], 20,
        what="the passing calibration in use",
    )  # fmt: skip
    assert json.loads(get("/api/overview.json"))["calibration"]["passed"] is True
    assert "\nbinpick_calibration_failed_checks 0\n" in get("/metrics").decode()
    assert len([line for line in app.log().splitlines() if "did not pass its checks" in line]) == 1
