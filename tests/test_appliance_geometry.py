"""Pixel → robot through a real calibration file, the ROI filter, and pixel mode, exercised through
the supervisor's own cycle (`Supervisor.cycle_once`) on a replayed frame."""

from __future__ import annotations

import cv2
import numpy as np
import pytest
from appliance_helpers import ROOT, looking_down, tiny_model, write_pile_folder

from edge.calibration_file import Calibration, save_calibration
from edge.config import Config
from edge.supervisor import Supervisor

pytestmark = pytest.mark.timeout(120)


def calibration(roi: list[list[float]] | None, size: tuple[int, int] = (96, 96)) -> Calibration:
    """A camera 800 mm above a floor at z = 20 mm, looking down (same layout as the calibration tests);
    `size` the image size it claims to be made for (the replayed frames are 96x96)."""
    return looking_down(size, 120.0, (48.0, 48.0), roi)


@pytest.fixture(scope="module")
def setup(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("geometry")
    return tiny_model(tmp_path_factory.mktemp("model")), write_pile_folder(tmp / "frames", count=1), tmp


def supervisor(setup, calibration_file: str = "") -> Supervisor:
    model, folder, tmp = setup
    c = Config()
    c.camera.source, c.camera.folder = "folder", str(folder)
    c.inference.model, c.inference.threads = str(model), 1
    c.ranking.alpha, c.ranking.min_area, c.ranking.max_area = 0.999, 16, 1e9  # whole image = one candidate
    c.calibration.file = calibration_file
    c.plc.registers = str(ROOT / "firmware_config" / "registers.toml")
    c.health.snapshot_dir = str(tmp / "snapshots")
    sup = Supervisor(c)
    sup.open_parts()
    return sup


def test_pixel_mode_reports_pixels_and_sets_the_status_bit(setup, caplog):
    sup = supervisor(setup)
    outcome = sup.cycle_once()
    png = sup.overlay_png()
    assert png.startswith(b"\x89PNG") and "overlay failed" not in caplog.text  # edge.overlay drew it
    assert outcome.error == "ok" and outcome.pixel_mode and sup.bank.flag("pixel_mode")
    (_, _, ranking), _ = sup._last  # the grasped candidate is named for the overlay's fill
    assert outcome.detail["candidate_label"] == ranking.candidates[0].label
    assert (
        abs(outcome.result.x - 47.5) < 1.5 and abs(outcome.result.y - 47.5) < 1.5 and outcome.result.z == 0.0
    )
    assert "[pixel mode]" in outcome.line(1)


def test_calibrated_grasp_is_in_robot_millimetres_on_the_pick_plane(setup, tmp_path):
    path = tmp_path / "cal.json"
    save_calibration(calibration([[0, 0], [95, 0], [95, 95], [0, 95]]), path)
    sup = supervisor(setup, str(path))
    outcome = sup.cycle_once()
    assert outcome.error == "ok" and not outcome.pixel_mode and not sup.bank.flag("pixel_mode")
    pick = outcome.detail["pick"]
    expected = sup.calibration.current.pixel_to_robot(pick["u"], pick["v"])
    r = outcome.result
    np.testing.assert_allclose([r.x, r.y, r.z], expected, atol=1e-3)
    assert abs(r.z - 20.0) < 1e-6  # on the floor plane
    scale = sup.calibration.current.mm_per_pixel_at(pick["u"], pick["v"])
    assert r.extent_major == pytest.approx(pick["major_px"] * scale, rel=1e-5)
    assert 5.0 < scale < 8.0  # 800 mm away at f = 120 px: about 6.5 mm per pixel


def test_calibrated_grasp_matches_the_pinhole_worked_by_hand(setup, tmp_path):
    """The robot point against the camera model worked out by hand, not through the calibration's
    own `pixel_to_robot`: a wide frame (grasp at u != v) and an asymmetric camera (cx != cy,
    fx != fy), so that swapped or transposed pixel coordinates cannot pass. The camera looks
    straight down from (400, 0, 800) mm with its y axis along -y: a pixel's ray meets the floor
    (z = 20 mm) 780 mm below, at x = 400 + 780 (u - cx) / fx, y = -780 (v - cy) / fy."""
    import cv2

    model, _, _ = setup
    frames = tmp_path / "wide"
    frames.mkdir()
    image = np.full((96, 128, 3), 60, np.uint8)
    cv2.ellipse(image, (80, 40), (30, 18), 20.0, 0, 360, (200, 150, 90), -1)
    cv2.imwrite(str(frames / "frame_000.png"), image)
    fx, fy, cx, cy = 120.0, 110.0, 60.0, 52.0
    cal = calibration(None, size=(128, 96))
    cal.camera_matrix = np.array([[fx, 0, cx], [0, fy, cy], [0, 0, 1]])
    save_calibration(cal, tmp_path / "cal.json")
    sup = supervisor((model, frames, tmp_path), str(tmp_path / "cal.json"))
    outcome = sup.cycle_once()
    assert outcome.error == "ok" and not outcome.pixel_mode
    u, v = outcome.detail["pick"]["u"], outcome.detail["pick"]["v"]
    assert abs(u - 63.5) < 1.5 and abs(v - 47.5) < 1.5  # the whole frame is the one candidate
    r = outcome.result
    expected = [400.0 + 780.0 * (u - cx) / fx, -780.0 * (v - cy) / fy, 20.0]
    np.testing.assert_allclose([r.x, r.y, r.z], expected, atol=1e-3)


def test_a_grasp_outside_the_roi_is_an_empty_roi_error(setup, tmp_path):
    path = tmp_path / "cal.json"
    save_calibration(
        calibration([[0, 0], [20, 0], [20, 20], [0, 20]]), path
    )  # a corner, away from the centre
    sup = supervisor(setup, str(path))
    outcome = sup.cycle_once()
    assert outcome.error == "empty_roi"
    assert sup.bank.value("error_code") == sup.register_map.error_code("empty_roi")
    assert not sup.bank.flag("result_valid")


def test_a_calibration_without_roi_accepts_the_whole_image(setup, tmp_path):
    path = tmp_path / "cal.json"
    save_calibration(calibration(None), path)
    sup = supervisor(setup, str(path))
    outcome = sup.cycle_once()
    assert outcome.error == "ok" and not outcome.pixel_mode


def test_a_required_calibration_gone_while_running_fails_cycles_with_its_error_code(setup, tmp_path):
    """The start refuses a required calibration that is missing (edge/config.py); one removed
    afterwards fails each cycle until the wizard writes it again."""
    path = tmp_path / "cal.json"
    save_calibration(calibration(None), path)
    sup = supervisor(setup, str(path))
    sup.config.calibration.required = sup.calibration.required = True
    assert sup.cycle_once().error == "ok"
    path.unlink()
    outcome = sup.cycle_once()
    assert outcome.error == "calibration_missing"
    assert "cal.json: calibration file not found" in outcome.message
    assert sup.bank.value("error_code") == sup.register_map.error_code("calibration_missing")


@pytest.mark.parametrize("required", [False, True])
def test_a_calibration_for_another_image_size_is_not_used(setup, tmp_path, caplog, required):
    """Its pixels are not the camera's: the grasp would come out in wrong millimetres without an
    error. Pixel mode with a warning naming both sizes, or failed cycles where it is required."""
    path = tmp_path / "cal.json"
    save_calibration(calibration(None, size=(128, 96)), path)
    sup = supervisor(setup, str(path))
    sup.config.calibration.required = sup.calibration.required = required
    outcome = sup.cycle_once()
    assert sup.calibration.current is None and sup.bank.flag("pixel_mode")
    assert "128x96 images but the camera delivers 96x96" in caplog.text
    if required:
        assert outcome.error == "calibration_missing" and "128x96" in outcome.message
        assert sup.bank.value("error_code") == sup.register_map.error_code("calibration_missing")
    else:
        assert outcome.error == "ok" and outcome.pixel_mode and outcome.result.z == 0.0


def test_a_calibration_is_used_again_once_the_camera_delivers_its_size_again(setup, tmp_path, caplog):
    """One frame of another size (a stream renegotiated after a reconnect, a replay folder with
    one odd picture) refuses that frame's grasp; the next frame at the calibrated size uses the
    calibration again, as the warning's "or set the camera back to it" says. Before, the
    calibration stayed dropped until its file changed: every later cycle failed."""
    model, _, _ = setup
    frames = write_pile_folder(tmp_path / "frames", count=3)
    odd = cv2.imread(str(frames / "frame_001.png"))
    cv2.imwrite(str(frames / "frame_001.png"), cv2.resize(odd, (128, 96)))
    path = tmp_path / "cal.json"
    save_calibration(calibration(None), path)
    sup = supervisor((model, frames, tmp_path), str(path))
    sup.config.calibration.required = sup.calibration.required = True
    assert sup.cycle_once().error == "ok"
    outcome = sup.cycle_once()
    mismatch = "96x96 images but the camera delivers 128x96"
    assert outcome.error == "calibration_missing" and mismatch in outcome.message
    assert mismatch in caplog.text
    outcome = sup.cycle_once()
    assert outcome.error == "ok" and not outcome.pixel_mode and not sup.bank.flag("pixel_mode")


def _frames_with_an_odd_one(folder, count: int = 4):
    """A replay folder of 96x96 frames whose second (frame_001) is 128x96."""
    frames = write_pile_folder(folder, count=count)
    odd = cv2.imread(str(frames / "frame_001.png"))
    cv2.imwrite(str(frames / "frame_001.png"), cv2.resize(odd, (128, 96)))
    return frames


@pytest.mark.parametrize("calibrated_before", [False, True])
def test_a_file_written_after_an_odd_frame_is_taken_up_by_the_next_frame_of_its_size(
    setup, tmp_path, calibrated_before
):
    """A new file was judged against the last frame's size: after one odd frame, the wizard's
    good file was refused for good (before the first calibration: pixel mode on every later
    cycle; calibrated before: the old calibration stayed, the page saying the camera delivers the
    odd size). The file is now judged by each frame's size."""
    model, _, _ = setup
    frames = _frames_with_an_odd_one(tmp_path / "frames")
    path = tmp_path / "cal.json"
    if calibrated_before:
        save_calibration(calibration(None), path)
    sup = supervisor((model, frames, tmp_path), str(path))
    # not required before the first calibration: pixel-mode cycles go on (and see the odd frame)
    sup.config.calibration.required = sup.calibration.required = calibrated_before
    first = sup.cycle_once()
    assert first.error == "ok" and first.pixel_mode is not calibrated_before
    odd = sup.cycle_once()  # frame_001, 128x96
    assert odd.pixel_mode and odd.error == ("calibration_missing" if calibrated_before else "ok")
    new = calibration(None)
    new.plane_offset_mm = 30.0  # the re-calibrated floor: grasps at z = 30
    save_calibration(new, path)
    outcome = sup.cycle_once()
    assert outcome.error == "ok" and abs(outcome.result.z - 30.0) < 1e-6, outcome.message
    assert sup.calibration.error == ""


def test_a_file_for_another_size_keeps_the_one_before_for_frames_of_its_size(setup, tmp_path, caplog):
    """A file for 128x96 put in place while the camera delivers 96x96: the calibration in use
    before stays for the 96x96 frames (one WARNING), and the 128x96 frame uses the new file."""
    model, _, _ = setup
    frames = _frames_with_an_odd_one(tmp_path / "frames")
    (frames / "frame_000.png").rename(frames / "frame_004.png")  # replay 001 (odd) after a good one
    path = tmp_path / "cal.json"
    save_calibration(calibration(None), path)
    sup = supervisor((model, frames, tmp_path), str(path))
    other = calibration(None, size=(128, 96))
    other.plane_offset_mm = 30.0
    save_calibration(other, path)
    first = sup.cycle_once()  # frame_001: 128x96, the new file's size
    assert first.error == "ok" and abs(first.result.z - 30.0) < 1e-6
    for _ in range(3):  # frames 002-004: 96x96, the calibration in use before
        outcome = sup.cycle_once()
        assert outcome.error == "ok" and abs(outcome.result.z - 20.0) < 1e-6, outcome.message
    assert caplog.text.count("calibration file refused, the one loaded before stays in use") == 1
    assert "128x96 images but the camera delivers 96x96" in sup.calibration.error
