"""`binpick detect` end to end (real files, real subprocess) and the overlay drawing."""

from __future__ import annotations

import json
import math
import os
import subprocess
import sys
from pathlib import Path

import cv2
import numpy as np
import pytest

from edge.overlay import BOUNDARY_RGB, GRASP_RGB, OCCLUDING_RGB, PickMark, draw_overlay
from edge.ranking import Grasp, RankingParams, rank
from mikado.flat_piles import make_pile

ROOT = Path(__file__).resolve().parents[1]
EXAMPLE = ROOT / "examples" / "pile"


def binpick(*args: str | Path, cwd: Path | None = None) -> subprocess.CompletedProcess:
    env = dict(os.environ, PYTHONPATH=str(ROOT) + os.pathsep + os.environ.get("PYTHONPATH", ""))
    return subprocess.run(
        [sys.executable, "-m", "edge", "detect", *map(str, args)],
        capture_output=True,
        text=True,
        timeout=120,
        cwd=cwd or ROOT,
        env=env,
    )


@pytest.fixture
def small_maps(tmp_path: Path) -> tuple[Path, Path, np.ndarray, np.ndarray]:
    pile = make_pile(8, 96, 128, instances=10, noise=0.03)
    y8 = np.round(pile.boundaries * 255).astype(np.uint8)
    z8 = np.round(pile.occlusions * 255).astype(np.uint8)
    cv2.imwrite(str(tmp_path / "y.png"), y8)
    cv2.imwrite(str(tmp_path / "z.png"), z8)
    return tmp_path / "y.png", tmp_path / "z.png", y8, z8


def test_bundled_example_quick_start_command(tmp_path: Path):
    out, overlay = tmp_path / "out" / "result.json", tmp_path / "out" / "overlay.png"
    proc = binpick(
        "--boundaries", EXAMPLE / "boundaries.png", "--occlusions", EXAMPLE / "occlusions.png",
        "--image", EXAMPLE / "rgb.png", "--out", out, "--overlay", overlay,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    assert "candidates; grasp at" in proc.stdout
    result = json.loads(out.read_text())
    assert result["image"] == {"width": 512, "height": 512}
    assert result["params"] == RankingParams().to_dict()
    assert len(result["candidates"]) >= 20
    scores = [c["score"] for c in result["candidates"]]
    assert scores == sorted(scores, reverse=True)
    for c in result["candidates"]:  # the default strict score: max(0, s1 - b) + [s2 >= 0.05]
        assert c["score"] == pytest.approx(max(0.0, c["s1"] - c["occluded_share"]) + (c["s2"] >= 0.05))
    assert result["grasp"]["score"] == scores[0]
    picture = cv2.imread(str(overlay))
    assert picture.shape == (512, 512, 3)


def test_json_matches_the_api(small_maps, tmp_path: Path):
    y_path, z_path, y8, z8 = small_maps
    out = tmp_path / "r.json"
    proc = binpick(
        "--boundaries", y_path, "--occlusions", z_path, "--out", out, "--patch", "5", "--w2", "0.5",
        "--score", "thesis",
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    params = RankingParams(patch=5, w2=0.5, score="thesis")
    expected = rank(y8, z8, params)
    result = json.loads(out.read_text())
    assert result["params"] == params.to_dict()
    assert result["candidates"] == [c.to_dict() for c in expected.candidates]
    assert result["grasp"] == expected.grasp.to_dict()
    assert not list(tmp_path.glob(".*.tmp"))  # atomic write left nothing behind


def test_sixteen_bit_and_npy_maps(small_maps, tmp_path: Path):
    _, _, y8, z8 = small_maps
    y16 = (y8.astype(np.uint32) * 257).astype(np.uint16)  # exact: 255 -> 65535
    cv2.imwrite(str(tmp_path / "y16.png"), y16)
    np.save(tmp_path / "z.npy", z8.astype(np.float32) / 255)
    out = tmp_path / "r.json"
    proc = binpick("--boundaries", tmp_path / "y16.png", "--occlusions", tmp_path / "z.npy", "--out", out)
    assert proc.returncode == 0, proc.stderr
    expected = rank(y8, z8)
    assert [c["area"] for c in json.loads(out.read_text())["candidates"]] == [
        c.area for c in expected.candidates
    ]


def test_no_candidate_writes_null_grasp(tmp_path: Path):
    cv2.imwrite(str(tmp_path / "y.png"), np.full((8, 8), 255, np.uint8))  # all boundary
    cv2.imwrite(str(tmp_path / "z.png"), np.zeros((8, 8), np.uint8))
    out = tmp_path / "r.json"
    proc = binpick("--boundaries", tmp_path / "y.png", "--occlusions", tmp_path / "z.png", "--out", out,
                   "--overlay", tmp_path / "o.png")  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    result = json.loads(out.read_text())
    assert result["candidates"] == [] and result["grasp"] is None
    assert (tmp_path / "o.png").is_file()


def _one_line_error(proc: subprocess.CompletedProcess, *needles: str) -> None:
    assert proc.returncode == 2, proc.stdout + proc.stderr
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1, proc.stderr
    assert lines[0].startswith("binpick detect: error:")
    for needle in needles:
        assert needle in lines[0], lines[0]


def test_missing_file(small_maps, tmp_path: Path):
    y_path, _, _, _ = small_maps
    proc = binpick(
        "--boundaries", y_path, "--occlusions", tmp_path / "nope.png", "--out", tmp_path / "r.json"
    )
    _one_line_error(proc, "nope.png", "no such file")
    assert not (tmp_path / "r.json").exists()


def test_unreadable_file(small_maps, tmp_path: Path):
    y_path, _, _, _ = small_maps
    (tmp_path / "junk.png").write_text("not a png")
    proc = binpick(
        "--boundaries", tmp_path / "junk.png", "--occlusions", y_path, "--out", tmp_path / "r.json"
    )
    _one_line_error(proc, "junk.png", "not a readable image")


def test_colour_map_is_rejected(small_maps, tmp_path: Path):
    y_path, z_path, y8, _ = small_maps
    cv2.imwrite(str(tmp_path / "rgb_y.png"), np.dstack([y8] * 3))
    proc = binpick(
        "--boundaries", tmp_path / "rgb_y.png", "--occlusions", z_path, "--out", tmp_path / "r.json"
    )
    _one_line_error(proc, "rgb_y.png", "single-channel")


def test_mismatched_sizes(small_maps, tmp_path: Path):
    y_path, _, _, _ = small_maps
    cv2.imwrite(str(tmp_path / "small.png"), np.zeros((10, 10), np.uint8))
    proc = binpick(
        "--boundaries", y_path, "--occlusions", tmp_path / "small.png", "--out", tmp_path / "r.json"
    )
    _one_line_error(proc, "small.png", "10x10", "128x96")
    cv2.imwrite(str(tmp_path / "img.png"), np.zeros((10, 10, 3), np.uint8))
    proc = binpick("--boundaries", y_path, "--occlusions", y_path, "--image", tmp_path / "img.png",
                   "--out", tmp_path / "r.json")  # fmt: skip
    _one_line_error(proc, "img.png", "does not match")


def test_bad_parameter(small_maps, tmp_path: Path):
    y_path, z_path, _, _ = small_maps
    proc = binpick(
        "--boundaries", y_path, "--occlusions", z_path, "--out", tmp_path / "r.json", "--patch", "4"
    )
    _one_line_error(proc, "--patch", "odd")
    proc = binpick(
        "--boundaries", y_path, "--occlusions", z_path, "--out", tmp_path / "r.json", "--min-area", "-1"
    )
    _one_line_error(proc, "--min-area")


def test_overlay_colours():
    y = np.zeros((40, 60), np.float32)
    y[:, 30] = 1  # two halves, the left one on top
    z = np.zeros_like(y)
    z[:, 29] = 1
    params = RankingParams(min_area=1, max_area=math.inf)
    ranking = rank(y, z, params, return_labels=True)
    image = np.full((40, 60, 3), 100, np.uint8)
    out = draw_overlay(image, y, z, ranking, params)
    assert out.shape == image.shape and out.dtype == np.uint8
    assert tuple(out[38, 30]) == BOUNDARY_RGB  # bottom rows: away from the grasp mark and its text
    assert tuple(out[38, 29]) == OCCLUDING_RGB
    best_fill = out[35, 5].astype(int)  # inside the best (left) candidate
    assert best_fill[1] > best_fill[0] and best_fill[1] > best_fill[2]  # tinted green
    assert tuple(out[35, 45]) == (100, 100, 100)  # the other candidate keeps the image
    g = ranking.grasp
    assert tuple(out[round(g.v), round(g.u)]) == GRASP_RGB
    assert (image == 100).all()  # drawn on a copy


def test_the_appliance_marks_the_grasp_it_published_not_the_rankings():
    """The seal check, the bin's rules or depth alone may send the robot elsewhere than the ranking's
    own grasp: the page's picture marks the published pick (camera pixels, maps at half size), names
    its rule, and marks nothing on a cycle that sent nothing."""
    from edge.inference.predictor import Maps
    from edge.plc.bank import PublishedResult
    from edge.supervisor import CycleOutcome, annotate

    y = np.zeros((80, 120), np.float32)
    y[:, 60] = 1  # two halves, the left one on top: the ranking's grasp is in the left half
    z = np.zeros_like(y)
    z[:, 59] = 1
    params = RankingParams(min_area=1, max_area=math.inf)
    ranking = rank(y, z, params, return_labels=True)
    rgb = np.full((80, 120, 3), 100, np.uint8)
    maps = Maps(y, z, 2.0, 2.0, rgb)  # the camera's frame is 240 x 160
    pick = {"u": 180.0, "v": 100.0, "score": 0.0, "angle_deg": 0.0, "major_px": 60.0, "minor_px": 40.0}
    sent = CycleOutcome(1, 0, "ok", "", PublishedResult(0, 0), {}, False, {"pick": pick, "method": "raised"})
    out = annotate(maps, ranking, params, rgb, sent)
    red = np.all(out == GRASP_RGB, axis=2)
    assert red[50, 90] and red[50, 78] and red[50, 102] and red[58, 90]  # its point and axes, in map pixels

    def tinted(picture):  # the grasped candidate's translucent green fill
        r, g, b = (picture[..., k].astype(int) for k in range(3))
        return (g > r + 40) & (g > b + 40)

    assert not tinted(out).any()  # depth alone: none of the ranking's candidates is the one grasped
    sent.detail["candidate_label"] = int(ranking.labels[50, 100])  # the right one, not the ranking's best
    filled = tinted(annotate(maps, ranking, params, rgb, sent))
    assert filled[70, 100] and not filled[70, 20]
    g = ranking.grasp
    assert not red[round(g.v) - 8 : round(g.v) + 9, round(g.u) - 8 : round(g.u) + 9].any()  # no ranking grasp
    unnamed = draw_overlay(
        rgb, y, z, ranking, params, PickMark(Grasp(90.0, 50.0, 0.0, 30.0, 20.0, 0.0, -1, ""))
    )
    assert (out != unnamed).any()  # the rule is named beside the point
    failed = CycleOutcome(2, 0, "empty_roi", "none", PublishedResult(0, 1), {}, False)
    assert not np.all(annotate(maps, ranking, params, rgb, failed) == GRASP_RGB, axis=2).any()
    assert np.all(draw_overlay(rgb, y, z, ranking, params) == GRASP_RGB, axis=2)[round(g.v), round(g.u)]


@pytest.mark.parametrize("angle", [-89.0, -50.0, -12.5, 0.0, 30.0, 61.0, 90.0])
def test_a_published_pick_maps_back_onto_the_map_it_came_from(angle):
    """PickMark.from_camera undoes plan._planned (map -> camera pixels) with unequal scales, as a
    1280x720 frame on a 512x512 model has: the same point, axis and both extents."""
    from edge.ranking.plan import _planned

    scale = (2.5, 1.40625)
    option = Grasp(
        u=100.0,
        v=60.0,
        angle_deg=angle,
        major_px=40.0,
        minor_px=18.0,
        score=0.5,
        candidate_index=0,
        method="centroid",
    )
    planned = _planned(option, scale, None, 0.0)
    mark = PickMark.from_camera(planned.pixel_dict(), scale)
    got = (mark.grasp.u, mark.grasp.v, mark.grasp.major_px, mark.grasp.minor_px)
    assert got == pytest.approx((option.u, option.v, option.major_px, option.minor_px), abs=1e-9)
    assert math.isclose(
        math.sin(math.radians(2 * (mark.grasp.angle_deg - angle))), 0.0, abs_tol=1e-9
    )  # same axis
    assert mark.shown_angle_deg == planned.angle_deg  # the label prints the published angle


def test_overlay_needs_labels():
    y = np.zeros((4, 4), np.float32)
    with pytest.raises(ValueError, match="labels"):
        draw_overlay(None, y, y, rank(y, y, RankingParams(max_area=math.inf)), RankingParams())


ONE_INF = np.full((16, 16), 0.5, np.float32)
ONE_INF[3, 4] = np.inf  # one bad value among good ones is enough


@pytest.mark.parametrize(
    ("values", "needles"),
    [
        (ONE_INF, ["1 value(s)", "outside [0, 1] (e.g. inf)"]),
        (np.full((16, 16), 7.0), ["outside [0, 1] (e.g. 7.0)", "expected probabilities in [0, 1] (or NaN)"]),
        (np.full((16, 16), -3.0, np.float32), ["256 value(s) outside [0, 1] (e.g. -3.0)"]),
        (np.zeros((0, 0), np.float32), ["0x0 map, expected at least 2x2 pixels"]),
        (np.zeros((1, 1), np.uint8), ["1x1 map, expected at least 2x2 pixels"]),
    ],
)
def test_a_map_that_holds_no_probabilities_is_refused(tmp_path: Path, values, needles):
    np.save(tmp_path / "y.npy", values)
    np.save(tmp_path / "z.npy", np.zeros(values.shape, np.float32))
    proc = binpick(
        "--boundaries", tmp_path / "y.npy", "--occlusions", tmp_path / "z.npy", "--out", tmp_path / "r.json"
    )
    _one_line_error(proc, "y.npy", *needles)
    assert not (tmp_path / "r.json").exists()


def test_nan_stays_a_boundary(tmp_path: Path):
    y = np.zeros((32, 32), np.float32)
    y[:, 16] = np.nan  # docs/hotpath.md: NaN in Y is a boundary
    np.save(tmp_path / "y.npy", y)
    np.save(tmp_path / "z.npy", np.zeros_like(y))
    np.save(tmp_path / "bad.npy", np.full_like(y, 2.0))
    out = tmp_path / "r.json"
    common = ("--occlusions", tmp_path / "z.npy", "--out", out, "--min-area", "1", "--max-area", "inf")
    proc = binpick("--boundaries", tmp_path / "y.npy", *common)
    assert proc.returncode == 0, proc.stderr
    assert sorted(c["area"] for c in json.loads(out.read_text())["candidates"]) == [15 * 32, 16 * 32]
    _one_line_error(binpick("--boundaries", tmp_path / "bad.npy", *common), "bad.npy", "outside [0, 1]")


def test_area_bounds_that_no_candidate_can_meet(small_maps, tmp_path: Path):
    y_path, z_path, _, _ = small_maps
    maps = ("--boundaries", y_path, "--occlusions", z_path, "--out", tmp_path / "r.json")
    proc = binpick(*maps, "--min-area", "100", "--max-area", "50")
    _one_line_error(proc, "--min-area = 100 exceeds --max-area = 50 (both pixels)")
    proc = binpick(*maps, "--min-area", "0.3", "--max-area", "0.2")
    _one_line_error(proc, "--min-area = 0.3 exceeds --max-area = 0.2 (both image fractions)")
    assert binpick(*maps, "--min-area", "0.3", "--max-area", "50").returncode == 0  # units differ


def test_output_paths_that_cannot_be_files(small_maps, tmp_path: Path):
    y_path, z_path, _, _ = small_maps
    maps = ("--boundaries", y_path, "--occlusions", z_path)
    folder = tmp_path / "results"
    folder.mkdir()
    _one_line_error(binpick(*maps, "--out", folder), f"--out {folder}: is a folder, expected a file")
    proc = binpick(*maps, "--out", tmp_path / "r.json", "--overlay", folder)
    _one_line_error(proc, f"--overlay {folder}: is a folder")
    assert not (tmp_path / "r.json").exists()  # refused before anything is written
    (tmp_path / "plain").write_text("")
    proc = binpick(*maps, "--out", tmp_path / "plain" / "sub" / "r.json")
    _one_line_error(proc, f"--out {tmp_path / 'plain' / 'sub' / 'r.json'}: {tmp_path / 'plain'} is a file")
    assert list(folder.iterdir()) == []  # no temporary left behind


def test_npy_files_that_hold_no_single_array(small_maps, tmp_path: Path):
    _, z_path, _, _ = small_maps
    (tmp_path / "empty.npy").write_bytes(b"")  # EOFError before
    np.savez(tmp_path / "two.npz", a=np.zeros((4, 4)), b=np.ones((4, 4)))
    (tmp_path / "two.npz").rename(tmp_path / "two.npy")  # AttributeError (NpzFile.ndim) before
    for name, needle in (("empty.npy", "not a readable .npy file"), ("two.npy", "got an archive of several")):
        proc = binpick("--boundaries", tmp_path / name, "--occlusions", z_path, "--out", tmp_path / "r.json")
        _one_line_error(proc, name, needle)


def test_a_folder_given_as_a_map_or_image_is_named_as_such(small_maps, tmp_path: Path):
    y_path, z_path, _, _ = small_maps
    folder = tmp_path / "maps"
    folder.mkdir()
    proc = binpick("--boundaries", folder, "--occlusions", z_path, "--out", tmp_path / "r.json")
    _one_line_error(proc, f"{folder}: is a folder, expected a map file")
    proc = binpick("--boundaries", y_path, "--occlusions", z_path, "--out", tmp_path / "r.json",
                   "--image", folder)  # fmt: skip
    _one_line_error(proc, f"{folder}: is a folder, expected an image file")


@pytest.mark.parametrize("name", ["o.xyz", "o"])
def test_overlay_name_without_an_image_extension_is_refused(small_maps, tmp_path: Path, name):
    """PNG bytes were written under any name ('o.xyz', 'o')."""
    y_path, z_path, _, _ = small_maps
    proc = binpick("--boundaries", y_path, "--occlusions", z_path, "--out", tmp_path / "r.json",
                   "--overlay", tmp_path / name)  # fmt: skip
    _one_line_error(proc, f"--overlay {tmp_path / name}: expected an image file name OpenCV can write")
    assert not (tmp_path / name).exists() and not (tmp_path / "r.json").exists()


def test_overlay_is_written_in_the_format_its_extension_names(small_maps, tmp_path: Path):
    y_path, z_path, _, _ = small_maps
    proc = binpick("--boundaries", y_path, "--occlusions", z_path, "--out", tmp_path / "r.json",
                   "--overlay", tmp_path / "o.jpg")  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    assert (tmp_path / "o.jpg").read_bytes()[:3] == b"\xff\xd8\xff"  # JPEG, not PNG bytes
