"""`binpick calibrate --camera`: views and the floor image captured from the appliance's camera.

The camera is the appliance's real folder-replay source (`camera.source = "folder"`) over rendered
board views, opened through the same configuration loader and factory as `binpick run`; a dead
HTTP camera on 127.0.0.1 and an empty replay folder give one-line errors.
"""

import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from appliance_helpers import free_port
from synthetic_board_views import write_cell_images
from test_calibration_wizard import BOARD, ROOT, assert_matches_truth, env, robot_point_flags

from edge.calibration_file import load_calibration
from edge.wizard.boards import load_board

pytestmark = pytest.mark.timeout(120)


def camera_config(tmp: Path, camera: str) -> Path:
    """A complete appliance configuration (the wizard validates it like `binpick run`)."""
    path = tmp / "appliance.toml"
    path.write_text(
        f"""
[camera]
{camera}
timeout_s = 0.5
backoff_initial_s = 0.1
backoff_max_s = 0.5

[inference]
model = "{ROOT / "models" / "bicameral_f25_rgb.onnx"}"

[plc]
registers = "{ROOT / "firmware_config" / "registers.toml"}"
"""
    )
    return path


@pytest.fixture(scope="module")
def replay(tmp_path_factory):
    """Rendered cell images in the order a technician would show them: 14 views, then the floor."""
    tmp = tmp_path_factory.mktemp("camera")
    board = load_board(BOARD)
    truth = write_cell_images(board, tmp / "cell", views=12, seed=3)
    frames = tmp / "frames"
    frames.mkdir()
    views = sorted(truth["views"].glob("*.png"))  # view00..view11, view90_blurry, view91_again
    for i, view in enumerate(views):
        shutil.copy(view, frames / f"{i:02d}-{view.name}")
    shutil.copy(truth["floor"], frames / "99-floor.png")
    rng = np.random.default_rng(4)
    truth["typed"] = {k: v + rng.normal(0, 0.1, 3) for k, v in truth["robot_points"].items()}
    truth["frames"] = frames
    truth["count"] = len(views)
    return truth


def calibrate(out: Path, *flags: str) -> subprocess.CompletedProcess:
    argv = [sys.executable, "-m", "edge", "calibrate", "--non-interactive", "--cell", "cam"]
    argv += ["--out-dir", str(out), "--board", str(BOARD), "--pick-offset-mm", "20", *flags]
    return subprocess.run(argv, capture_output=True, text=True, timeout=90, env=env(), cwd=ROOT)


def test_scripted_capture_recovers_the_intrinsics_and_saves_a_reproducible_folder(replay, tmp_path):
    config = camera_config(tmp_path, f'source = "folder"\nfolder = "{replay["frames"]}"\nloop = false')
    n = replay["count"]
    camera_flags = ["--camera", str(config), "--camera-views", str(n), "--camera-interval", "0"]
    proc = calibrate(tmp_path / "out", *camera_flags, *robot_point_flags(replay["typed"]))
    assert proc.returncode == 0, proc.stdout + proc.stderr
    # each frame went through the per-view check and got its feedback line
    assert f"[ 1/{n}] view-001.png: ok, 54/54 corners" in proc.stdout
    assert f"[{n - 1}/{n}] view-{n - 1:03d}.png: refused: blurry" in proc.stdout
    assert f"[{n}/{n}] view-{n:03d}.png: refused: duplicate of view-003.png" in proc.stdout
    assert f"Accepted {n - 2} of {n} views" in proc.stdout
    cal = load_calibration(tmp_path / "out" / "cam.json")
    assert cal.passed
    assert_matches_truth(cal, replay, 20.0)
    # every captured frame is kept: the same run from folders gives the same calibration
    (captured,) = (tmp_path / "out" / "cam-report").glob("capture-*")
    assert len(list((captured / "views").glob("view-*.png"))) == n
    again = calibrate(
        tmp_path / "again",
        *["--images", str(captured / "views"), "--floor-image", str(captured / "floor.png")],
        *robot_point_flags(replay["typed"]),
    )
    assert again.returncode == 0, again.stdout + again.stderr
    np.testing.assert_array_equal(
        load_calibration(tmp_path / "again" / "cam.json").camera_matrix, cal.camera_matrix
    )


@pytest.mark.parametrize(
    ("camera", "expected"),
    [
        ('source = "opencv"\nuri = "http://127.0.0.1:{port}/cam.mjpg"', "no frame within 1 s"),
        ('source = "folder"\nfolder = "{empty}"', "cannot be opened"),
    ],
    ids=["dead-http-camera", "empty-replay-folder"],
)
def test_a_camera_that_gives_no_frame_is_a_one_line_error(tmp_path, camera, expected):
    (tmp_path / "empty").mkdir()
    config = camera_config(tmp_path, camera.format(port=free_port(), empty=tmp_path / "empty"))
    proc = calibrate(tmp_path / "out", "--camera", str(config), "--camera-views", "3")
    assert proc.returncode == 2, proc.stdout + proc.stderr
    # (OpenCV's and FFmpeg's own C-level warnings may precede it: the wizard's answer is one line)
    (line,) = [x for x in proc.stderr.splitlines() if x.startswith("binpick calibrate: error:")]
    assert proc.stderr.strip().endswith(line)
    source = "opencv:http://127.0.0.1" if "opencv" in camera else f"folder:{tmp_path / 'empty'}"
    assert f"camera {source}" in line and expected in line and f"in {config}" in line
    assert "check camera." in line and "Traceback" not in proc.stderr
    assert not (tmp_path / "out" / "cam.json").exists()


def test_bad_configuration_and_missing_view_count_are_one_line_errors(tmp_path):
    missing = calibrate(tmp_path, "--camera", str(tmp_path / "nope.toml"), "--camera-views", "3")
    assert missing.returncode == 2 and "configuration file not found" in missing.stderr
    assert len(missing.stderr.strip().splitlines()) == 1
    config = camera_config(tmp_path, 'source = "folder"\nfolder = "."')
    no_count = calibrate(tmp_path, "--camera", str(config))
    assert no_count.returncode == 2
    assert "--camera-views is required with --camera and --non-interactive" in no_count.stderr


def test_interactive_capture_on_enter_until_done(replay, tmp_path):
    """At the cell: Enter captures a view (judged at once), 'done' ends step 1, Enter takes the floor."""
    from test_calibration_wizard import Terminal

    config = camera_config(tmp_path, f'source = "folder"\nfolder = "{replay["frames"]}"\nloop = false')
    argv = [sys.executable, "-m", "edge", "calibrate", "--out-dir", str(tmp_path / "out"), "--cell", "pty"]
    term = Terminal(argv + ["--board", str(BOARD), "--camera", str(config)], ROOT)
    seen = []

    def expect(text):
        seen.append(term.expect(text))

    try:
        expect("press Enter for each view, type 'done' when finished.")
        expect("View 1: Enter = capture, 'done' = finish: ")
        term.send("done")  # nothing accepted yet: refused, asked again
        expect("no view accepted yet")
        for i in range(1, replay["count"] + 1):
            expect(f"View {i}: Enter = capture, 'done' = finish: ")
            term.send("")
            expect(f"view-{i:03d}.png: ")
        expect("finish: ")
        term.send("done")
        expect("capture from folder:")
        term.send("")
        expect("floor.png (repeat this step with --floor-image")
        for label in "ABCD":
            expect(f"Robot coordinates of {label} [skip]: ")
            term.send(",".join(f"{x:.2f}" for x in replay["typed"][label]))
        for prompt in ("[board]: ", "[0]: ", "[image]: ", "[V]: ", "[skip]: "):
            expect(prompt)
            term.send("20" if prompt == "[0]: " else "")
        expect("Wrote ")
        code = term.wait()
    finally:
        seen.append(term.transcript)
    text = "".join(seen)
    assert code == 0, text
    assert "view-001.png: ok" in text and "refused: blurry" in text and "refused: duplicate" in text
    cal = load_calibration(tmp_path / "out" / "pty.json")
    assert cal.passed
    assert_matches_truth(cal, replay, 20.0)
