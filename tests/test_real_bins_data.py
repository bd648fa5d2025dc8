"""The real-bin set's integrity (benchmarks/data/bins/manifest.toml, benchmarks/real_bins.py).

The committed manifest must give every frame its source, commit and a permissive licence, and an
annotation the benchmark can use; the image files themselves live outside git (the workspace's
shared/data/bins/, or $BINPICK_REAL_BINS), so the file checks run where that folder exists and
are skipped elsewhere. Bad input must fail with the file and the problem named.
"""

from __future__ import annotations

import importlib.util
import os
from pathlib import Path

import cv2
import numpy as np
import pytest
from real_data import data_missing

ROOT = Path(__file__).resolve().parents[1]


rb = importlib.import_module("benchmarks.real_bins")  # the repository root is on sys.path (pyproject)


def test_manifest_records_source_licence_and_annotation_for_every_frame():
    frames = rb.load_manifest(rb.DEFAULT_MANIFEST)
    assert frames
    for f in frames:
        assert f["licence"] in rb.PERMISSIVE
        assert f["source_repo"].lower() not in rb.EXCLUDED_REPOS
        assert len(f["source_commit"]) == 40 and f["source_paths"]
        assert f["changes"].strip() and f["annotation"].strip()


def test_files_match_the_manifest_and_labels_are_usable():
    if not rb.DEFAULT_DATA.is_dir():
        data_missing(f"real-bin files not present at {rb.DEFAULT_DATA}")
    for entry in rb.load_manifest(rb.DEFAULT_MANIFEST):
        frame = rb.load_frame(entry, rb.DEFAULT_DATA)
        w, h = entry["size"]
        assert frame.rgb.shape == (h, w, 3)
        assert frame.depth_mm is None or frame.depth_mm.shape == (h, w)
        labels = set(np.unique(frame.labels).tolist())
        needed = {rb.OUTSIDE, rb.OBJECT}
        if entry["objects"] == "depth" or entry.get("floor_polygons"):
            needed.add(rb.FLOOR)
        assert needed <= labels, f"{entry['id']}: labels {labels}"


def _write_manifest(tmp_path: Path, **override) -> Path:
    entry = {
        "id": "x", "rgb": "x.png", "depth_mm": "x_depth.png", "size": [40, 30],
        "source_repo": "someone/somewhere", "source_paths": ["a.png"], "source_commit": "0" * 40,
        "licence": "MIT", "licence_file": "LICENSE", "changes": "none", "annotation": "test",
        "interior": [[5, 5], [35, 5], [35, 25], [5, 25]], "objects": "depth",
    }  # fmt: skip
    entry.update(override)

    def value(v):
        return f'"{v}"' if isinstance(v, str) else str(v).replace("'", '"')

    text = "[[frame]]\n" + "".join(f"{k} = {value(v)}\n" for k, v in entry.items())
    path = tmp_path / "manifest.toml"
    path.write_text(text)
    return path


def test_bad_manifest_entries_are_named(tmp_path):
    with pytest.raises(rb.DataError, match="licence 'CC-BY-NC-4.0'"):
        rb.load_manifest(_write_manifest(tmp_path, licence="CC-BY-NC-4.0"))
    with pytest.raises(rb.DataError, match="kept aside"):
        rb.load_manifest(_write_manifest(tmp_path, source_repo="BerkeleyAutomation/gqcnn"))
    with pytest.raises(rb.DataError, match="leaves the 40x30 image"):
        rb.load_manifest(_write_manifest(tmp_path, interior=[[0, 0], [50, 0], [0, 20]]))
    with pytest.raises(rb.DataError, match="manifest not found"):
        rb.load_manifest(tmp_path / "nothing.toml")


def test_missing_or_wrong_size_files_are_named(tmp_path):
    entry = rb.load_manifest(_write_manifest(tmp_path))[0]
    with pytest.raises(rb.DataError, match=r"x\.png: rgb file not found"):
        rb.load_frame(entry, tmp_path)
    cv2.imwrite(str(tmp_path / "x.png"), np.zeros((30, 40, 3), np.uint8))
    cv2.imwrite(str(tmp_path / "x_depth.png"), np.full((31, 40), 500, np.uint16))
    with pytest.raises(rb.DataError, match=r"x_depth\.png: size 40x31, not the image's 40x30"):
        rb.load_frame(entry, tmp_path)


def test_labels_and_scoring_on_a_tiny_synthetic_bin(tmp_path):
    entry = rb.load_manifest(_write_manifest(tmp_path))[0]
    depth = np.full((30, 40), 500, np.uint16)
    depth[10:20, 10:20] = 450  # a 50 mm high object
    depth[0:3, :] = 0  # no measurement
    cv2.imwrite(str(tmp_path / "x.png"), np.zeros((30, 40, 3), np.uint8))
    cv2.imwrite(str(tmp_path / "x_depth.png"), depth)
    frame = rb.load_frame(entry, tmp_path)
    assert rb.classify(frame, 15, 15) == "object"
    assert rb.classify(frame, 30, 22) == "floor"
    assert rb.classify(frame, 1, 1) == "outside"
    u, v = rb.highest_point(frame)
    assert rb.classify(frame, u, v) == "object"
    assert rb.height_percentile(frame, u, v) == pytest.approx(100.0)


def test_a_tilted_floor_plane_labels_heights_above_the_plane(tmp_path):
    # floor depth = x + 460 mm: 460 mm at the left edge, 499 mm at the right
    entry = rb.load_manifest(
        _write_manifest(tmp_path, floor_plane_mm=[1, 0.0, 460.0], object_min_height_mm=5)
    )[0]
    xs = np.arange(40, dtype=np.float64)
    depth = np.tile(xs + 460.0, (30, 1)).astype(np.uint16)
    depth[10:20, 25:32] -= 10  # a 10 mm high object on the deep side
    cv2.imwrite(str(tmp_path / "x.png"), np.zeros((30, 40, 3), np.uint8))
    cv2.imwrite(str(tmp_path / "x_depth.png"), depth)
    frame = rb.load_frame(entry, tmp_path)
    assert rb.classify(frame, 28, 15) == "object"
    assert rb.classify(frame, 8, 15) == "floor"  # nearer than the object, but on the floor plane
    assert rb.height_percentile(frame, 28, 15) == pytest.approx(100.0)
    with pytest.raises(rb.DataError, match="floor_plane_mm must be"):
        rb.load_manifest(_write_manifest(tmp_path, floor_plane_mm=[0.5, 480.0]))
    with pytest.raises(rb.DataError, match="not both"):
        rb.load_manifest(_write_manifest(tmp_path, floor_plane_mm=[0.5, 0.0, 480.0], floor_mm=490.0))


def test_frames_without_depth_are_labelled_from_the_drawn_floor(tmp_path):
    floor = [[[6, 6], [12, 6], [12, 12], [6, 12]]]
    manifest = _write_manifest(tmp_path, objects="drawn", floor_polygons=floor)
    text = manifest.read_text().replace('depth_mm = "x_depth.png"\n', "")
    manifest.write_text(text)
    entry = rb.load_manifest(manifest)[0]
    cv2.imwrite(str(tmp_path / "x.png"), np.zeros((30, 40, 3), np.uint8))
    frame = rb.load_frame(entry, tmp_path)
    assert frame.depth_mm is None
    assert rb.classify(frame, 9, 9) == "floor"
    assert rb.classify(frame, 25, 20) == "object"
    assert rb.classify(frame, 1, 1) == "outside"
    assert rb.height_percentile(frame, 25, 20) is None and rb.highest_point(frame) is None
    with pytest.raises(rb.DataError, match="needs floor_polygons"):
        rb.load_manifest(_write_manifest(tmp_path, objects="drawn"))
    with pytest.raises(rb.DataError, match="expected 'depth' or 'drawn'"):
        rb.load_manifest(_write_manifest(tmp_path, objects="mask"))


def test_the_set_is_rebuilt_from_its_sources_as_the_manifest_says(tmp_path):
    prep = importlib.import_module("benchmarks.prepare_real_bins")
    grey = np.array([[0, 255, 128]], np.uint8)
    np.testing.assert_array_equal(prep.griffig_depth_mm(grey), [[410, 220, 315]])  # griffig's decoding
    manifest = _write_manifest(tmp_path, id="unknown_frame", source_repo="pantor/griffig")
    with pytest.raises(rb.DataError, match="frame 'unknown_frame' has no preparation"):
        prep.prepare(manifest, {"pantor/griffig": tmp_path}, tmp_path / "out")
    assert prep.prepare(manifest, {}, tmp_path / "out") == []  # no source given: nothing to do
    mirror = Path(os.environ.get("BINPICK_GRIFFIG_SOURCE", "/work/.mirror/pantor+griffig/repo"))
    if mirror.is_dir():  # where the source was fetched: the whole set, sized as the manifest says
        written = prep.prepare(rb.DEFAULT_MANIFEST, {"pantor/griffig": mirror}, tmp_path / "bins")
        assert written == ["griffig_test1", "griffig_doc_input"]
        for entry in rb.load_manifest(rb.DEFAULT_MANIFEST):
            if entry["id"] in written:
                frame = rb.load_frame(entry, tmp_path / "bins")
                assert {rb.OUTSIDE, rb.FLOOR, rb.OBJECT} <= set(np.unique(frame.labels).tolist())
    others = {
        "fhagelskjaer/sdui40binpick": Path("/work/.mirror/fhagelskjaer+sdui40binpick/repo"),
        "o2as/ur-o2as": Path("/work/.mirror/o2as+ur-o2as/repo"),
        "keti-ai/kpick-suction-release": Path("/work/.mirror/keti-ai+kpick-suction-release/repo"),
        "keti-ai/kpick-release-py38": Path("/work/.mirror/keti-ai+kpick-release-py38/repo"),
    }
    others = {name: path for name, path in others.items() if path.is_dir()}
    if others:  # the other sources, where fetched: every frame of theirs, sized as the manifest says
        written = prep.prepare(rb.DEFAULT_MANIFEST, others, tmp_path / "more")
        expected = [e["id"] for e in rb.load_manifest(rb.DEFAULT_MANIFEST) if e["source_repo"] in others]
        assert written == expected
        for entry in rb.load_manifest(rb.DEFAULT_MANIFEST):
            if entry["id"] in written:
                rb.load_frame(entry, tmp_path / "more")


def test_a_source_name_the_manifest_does_not_have_is_refused(tmp_path, capsys):
    """`--source pantor/grifig=...` (misspelt) was skipped in silence: 'wrote 0 frames', exit 0."""
    prep = importlib.import_module("benchmarks.prepare_real_bins")
    manifest = _write_manifest(tmp_path, source_repo="pantor/griffig")
    code = prep.main(
        ["--manifest", str(manifest), "--out", str(tmp_path / "out"), "--source", f"pantor/grifig={tmp_path}"]
    )
    err = capsys.readouterr().err
    assert (
        code == 2
        and "--source pantor/grifig: not a source of" in err
        and "expected one of pantor/griffig" in err
    )
    assert not (tmp_path / "out").exists()


def test_a_frame_that_cannot_be_written_is_named(tmp_path, monkeypatch):
    """cv2.imwrite's False was not checked: a frame left unwritten was counted as written."""
    prep = importlib.import_module("benchmarks.prepare_real_bins")
    manifest = _write_manifest(tmp_path, id="griffig_test1", source_repo="pantor/griffig")
    entry = rb.load_manifest(manifest)[0]
    width, height = entry["size"]
    frame = np.zeros((height, width, 3), np.uint8)
    depth = np.full((height, width), 500, np.uint16)
    monkeypatch.setitem(prep.PREPARE, "griffig_test1", lambda entry, read: (frame, depth))
    blocker = tmp_path / "out"
    blocker.mkdir()
    (blocker / entry["rgb"]).mkdir(parents=True)  # a folder where the picture goes
    with pytest.raises(rb.DataError, match=f"griffig_test1: .*/{entry['rgb']}: Is a directory$"):
        prep.prepare(manifest, {"pantor/griffig": tmp_path}, blocker)
