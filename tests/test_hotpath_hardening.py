"""What Python can hand `edge._hotpath` that is not a frame the ranking made: every such input gets
a one-line ValueError naming the argument, never a crash, an out-of-bounds read or a wrong result."""

from __future__ import annotations

import math
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from edge import _hotpath
from edge.ranking import RankingParams, rank
from edge.ranking.reference import MAX_PIXELS, rank_reference

ROOT = Path(__file__).resolve().parents[1]
ALL = RankingParams(min_area=0, max_area=math.inf)  # keep every component


def run_isolated(code: str) -> subprocess.CompletedProcess:
    """`code` in a fresh interpreter: a crash there is a failed test here, not a dead test run."""
    return subprocess.run(
        [sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=120, check=False
    )


# --- grasp_point -------------------------------------------------------------------------

SQUARE = np.zeros((10, 10), np.int32)
SQUARE[2:8, 2:8] = 1  # label 1, bbox (2, 2, 6, 6), centroid (4.5, 4.5)
GOOD_GRASP = dict(label=1, centroid_u=4.5, centroid_v=4.5, bbox_x=2, bbox_y=2, bbox_w=6, bbox_h=6, margin=3.0)


@pytest.mark.parametrize(
    ("change", "name"),
    [
        # The transform was read at the centroid's pixel, far outside its box: a segfault.
        (dict(centroid_u=1e6, centroid_v=-1e6, margin=50.0), "centroid_u"),
        # x + w wrapped around int32, passed the box check, and the labels were read 2 GB away.
        (dict(bbox_x=2**31 - 4, bbox_w=8), "bbox"),
    ],
)
def test_grasp_point_out_of_bounds_arguments_raise_instead_of_crashing(change, name):
    args = {**GOOD_GRASP, **change}
    code = (
        "import numpy as np\n"
        "from edge import _hotpath\n"
        "labels = np.zeros((10, 10), np.int32); labels[2:8, 2:8] = 1\n"
        "try:\n"
        f"    _hotpath.grasp_point(labels, **{args!r})\n"
        "except ValueError as e:\n"
        "    print(e)\n"
    )
    done = run_isolated(code)
    assert done.returncode == 0, done.stderr[-2000:]
    assert done.stdout.startswith(f"{name}: expected"), done.stdout
    assert done.stdout.count("\n") == 1


@pytest.mark.parametrize(
    ("labels", "change", "name", "expected"),
    [
        # Labels were cast to int32 silently: 2**32 + 1 became 1, 1.7 became 1.
        (SQUARE.astype(np.int64) * (2**32 + 1), {}, "labels", "int32"),
        (SQUARE + 0.7, {}, "labels", "int32"),
        (SQUARE.tolist(), {}, "labels", "numpy array"),
        (SQUARE[None], {}, "labels", "2-D"),
        # A label absent from its box gave an 'inscribed' point on the box's padding, outside it.
        (SQUARE, dict(label=7), "bbox", "bounding box of label 7"),
        (SQUARE, dict(bbox_x=1, bbox_w=7), "bbox", "bounding box of label 1"),
        (SQUARE, dict(label=0), "label", ">= 1"),
        (SQUARE, dict(label=2**40), "label", "int32"),
        (SQUARE, dict(label="1"), "label", "integer"),
        (SQUARE, dict(bbox_w=0), "bbox", "at least 1x1"),
        (SQUARE, dict(centroid_v=math.nan), "centroid_v", "inside the candidate's box"),
        (SQUARE, dict(centroid_u=8.0), "centroid_u", "[2, 7]"),
        (SQUARE, dict(centroid_u="4.5"), "centroid_u", "number"),
        (SQUARE, dict(margin=math.inf), "margin", "finite"),
        (SQUARE, dict(margin=-1.0), "margin", ">= 0"),
    ],
)
def test_grasp_point_bad_arguments_raise_one_line_value_error(labels, change, name, expected):
    with pytest.raises(ValueError, match=f"^{name}: expected") as info:
        _hotpath.grasp_point(labels, **{**GOOD_GRASP, **change})
    assert expected in str(info.value) and "\n" not in str(info.value)


def test_grasp_point_reads_any_int32_view():
    """Views of int32 labels (transposed, reversed, strided) are read as their values."""
    expected = _hotpath.grasp_point(SQUARE, **GOOD_GRASP)
    assert expected == (4.0, 4.0, "inscribed")
    big = np.zeros((20, 30), np.int32)
    big[::2, ::3] = SQUARE
    assert _hotpath.grasp_point(big[::2, ::3], **GOOD_GRASP) == expected
    assert _hotpath.grasp_point(np.asfortranarray(SQUARE), **GOOD_GRASP) == expected
    assert _hotpath.grasp_point(SQUARE[::-1, ::-1].copy()[::-1, ::-1], **GOOD_GRASP) == expected
    assert _hotpath.grasp_point(SQUARE, **{**GOOD_GRASP, "label": np.int64(1), "margin": 3}) == expected


# --- image size ------------------------------------------------------------------------------


@pytest.mark.parametrize("rank_fn", [rank, rank_reference])
@pytest.mark.parametrize("shape", [(1, 2**31 + 16), (2**16, 2**15 + 1), (2**31, 2**31)])
def test_images_beyond_int32_pixels_raise_before_any_allocation(rank_fn, shape):
    """Runs, labels and their coordinates are int32: a (1, 2**31 + 16) frame of zeros (one
    component) gave no candidate at all after 18 s and 4 GB (its run's end wrapped negative).
    Refused up front, labels not allocated (the maps here are broadcast views: no memory)."""
    y = np.broadcast_to(np.uint8(0), shape)
    with pytest.raises(ValueError, match=r"^boundaries: expected at most 2147483647 pixels") as info:
        rank_fn(y, y, ALL, return_labels=True)
    assert str(shape[1]) in str(info.value)
    assert _hotpath.MAX_PIXELS == MAX_PIXELS == 2**31 - 1


# --- long images: exact moments ------------------------------------------------------------


@pytest.mark.parametrize("rank_fn", [rank, rank_reference])
@pytest.mark.parametrize(
    ("shape", "angle", "major", "minor"),
    [((1, 2_000_000), 0.0, 2e6, 1.0), ((3_100_000, 1), 90.0, 3.1e6, 1.0)],
)
def test_angle_and_extents_of_a_bar_millions_of_pixels_long(rank_fn, shape, angle, major, minor):
    """The second moments overflowed int64 (a run's closed form for sum x^2 multiplies three
    coordinates; a column's sum of y^2 passes 2^63 at ~3 million rows): the 1 x 2,000,000 bar
    came out at 90 degrees with its extents swapped, the column at 0 degrees (the reference
    wrapped too)."""
    y = np.zeros(shape, np.uint8)
    r = rank_fn(y, y, ALL)
    (c,) = r.candidates
    assert c.angle_deg == angle
    assert (c.major_px, c.minor_px) == pytest.approx((major, minor), abs=1e-6)


# --- parameters: one line, naming the argument --------------------------------------------

MAP = np.zeros((4, 4), np.float32)


@pytest.mark.parametrize(
    ("call", "name"),
    [
        # pybind11's TypeError listed the signature and printed both arrays.
        (lambda: _hotpath.rank(MAP, MAP, None), "params"),
        (lambda: _hotpath.rank(MAP, MAP, {"alpha": 0.1}), "params"),
        (lambda: _hotpath.rank(MAP, MAP, _hotpath.RankingParams(), np.zeros(3)), "return_labels"),
        # An int past C int's range reached the binding as a multi-line TypeError.
        (lambda: _hotpath.RankingParams(patch=2**40), "patch"),
        (lambda: _hotpath.RankingParams(patch="9"), "patch"),
        (lambda: RankingParams(patch=2**40), "patch"),
        (lambda: RankingParams(patch=np.int64(2**40)), "patch"),
        # float(10**400) raised OverflowError without naming the field.
        (lambda: RankingParams(max_area=10**400), "max_area"),
    ],
)
def test_bad_parameters_raise_one_line_value_error(call, name):
    with pytest.raises(ValueError, match=f"^{name}: expected") as info:
        call()
    assert "\n" not in str(info.value)


def test_parameters_still_accept_what_they_did():
    assert _hotpath.RankingParams(patch=np.int64(9)) == _hotpath.RankingParams(patch=9)
    table, _, labels = _hotpath.rank(MAP, MAP, _hotpath.RankingParams(), np.bool_(True))
    assert labels.shape == MAP.shape and table.shape[1] == len(_hotpath.CANDIDATE_FIELDS)
    assert _hotpath.rank(MAP, MAP, params=_hotpath.RankingParams())[2] is None
