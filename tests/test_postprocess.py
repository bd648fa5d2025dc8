"""The native hot path against hand-computed values, its NumPy twin, OpenCV, and bad input."""

from __future__ import annotations

import json
import math
import threading
import time
from pathlib import Path

import cv2
import numpy as np
import pytest

from edge import _hotpath
from edge.ranking import Candidate, RankingParams, rank
from edge.ranking.reference import rank_reference
from mikado.flat_piles import make_pile

ALL = RankingParams(min_area=0, max_area=math.inf)  # keep every component


def assert_same_ranking(a, b, tol=1e-6):
    """Identical labels up to renumbering, same ranking order, every field within tol."""
    assert len(a.candidates) == len(b.candidates)
    if a.labels is not None and b.labels is not None:
        assert_same_partition(a.labels, b.labels)
    for ca, cb in zip(a.candidates, b.candidates, strict=True):
        assert ca.area == cb.area and ca.bbox == cb.bbox and ca.contour_length == cb.contour_length
        for name in ("s1", "s2", "score", "angle_deg", "major_px", "minor_px"):
            assert getattr(ca, name) == pytest.approx(getattr(cb, name), abs=tol), name
        assert np.allclose(ca.centroid, cb.centroid, atol=tol)
        if a.labels is not None and b.labels is not None:
            assert np.array_equal(a.labels == ca.label, b.labels == cb.label)
    assert (a.grasp is None) == (b.grasp is None)
    if a.grasp is not None:
        assert a.grasp.method == b.grasp.method
        assert (a.grasp.u, a.grasp.v) == pytest.approx((b.grasp.u, b.grasp.v), abs=tol)


def assert_same_partition(x: np.ndarray, y: np.ndarray) -> None:
    """Same zero set and a bijection between the non-zero values."""
    assert np.array_equal(x == 0, y == 0)
    pairs = np.unique(np.stack([x[x != 0], y[x != 0]]), axis=1)
    assert len(np.unique(pairs[0])) == pairs.shape[1] == len(np.unique(pairs[1]))


def two_halves() -> tuple[np.ndarray, np.ndarray]:
    """5x7: a boundary column at x = 3; the left half's pixels next to it are its occluding side."""
    y = np.zeros((5, 7), np.float32)
    y[:, 3] = 1
    z = np.zeros_like(y)
    z[:, 2] = 1
    return y, z


# --- hand-computed values ---------------------------------------------------------------


def test_xnor_score_by_hand():
    y, z = two_halves()
    r = rank(y, z, RankingParams(min_area=1, max_area=math.inf, patch=3), return_labels=True)
    left, right = r.candidates  # the upper (left) one ranks first
    assert left.bbox == (0, 0, 3, 5) and right.bbox == (4, 0, 3, 5)
    # Every 3x3 patch on the boundary column: left side in C and occluding, the rest outside and
    # not occluding -> all 1 for the left; for the right, only the boundary column agrees -> 1/3.
    assert left.s1 == pytest.approx(1.0)
    assert right.s1 == pytest.approx(1 / 3)
    assert left.contour_length == right.contour_length == 5
    assert left.s2 == right.s2 == 1.0
    # The right half is on the occluded side of all its contour (each patch's mean 1/3 < 1/2):
    # b = 1, and the strict score (the default) keeps only its area gate, max(0, 1/3 - 1) + 1.
    assert left.occluded_share == 0.0 and right.occluded_share == 1.0
    assert left.score == pytest.approx(2.0) and right.score == pytest.approx(1.0)
    assert r.labels[0, 0] == left.label and r.labels[0, 6] == right.label and r.labels[0, 3] == 0
    contour = rank(y, z, RankingParams(min_area=1, max_area=math.inf, patch=3, score="contour"))
    assert [c.score for c in contour.candidates] == pytest.approx([2.0, 4 / 3])


def test_patch_clipped_to_image_counts_only_inside_pixels():
    y, z = two_halves()
    # Every 9x9 patch on the boundary column, clipped to the 5x7 image, is the whole image (35 px).
    r = rank(y, z, RankingParams(min_area=1, max_area=math.inf, patch=9))
    left, right = r.candidates
    # Left: its occluding column agrees (5), its other 10 px do not; boundary (5) and right (15) agree.
    assert left.s1 == pytest.approx(25 / 35)
    # Right: its own 15 px (not occluding) disagree; boundary (5) and left's columns 0-1 (10) agree.
    assert right.s1 == pytest.approx(15 / 35)


def test_weights_and_area_score():
    """The thesis score: w1*s1 + w2*s2, the area term linear."""
    y = np.zeros((10, 10), np.float32)
    y[:, 4] = 1  # left 4 columns (40 px), right 5 columns (50 px)
    z = np.zeros_like(y)
    r = rank(y, z, RankingParams(min_area=1, max_area=math.inf, w1=0.0, w2=2.0, score="thesis"))
    assert [c.area for c in r.candidates] == [50, 40]
    assert [c.s2 for c in r.candidates] == [1.0, 0.8]
    assert [c.score for c in r.candidates] == [2.0, 1.6]


@pytest.mark.parametrize("rank_fn", [rank, rank_reference])
def test_contour_score_keeps_the_area_as_a_gate(rank_fn):
    """The contour score: w1*s1 + w2*[s2 >= 0.05]; s2 is reported as before."""
    y = np.ones((10, 20), np.float32)
    y[:, :10] = 0  # 100 px
    y[0, 12:17] = 0  # 5 px: s2 = 0.05, the gate is inclusive
    y[3, 12:16] = 0  # 4 px: s2 = 0.04, below the gate
    z = np.zeros_like(y)
    params = RankingParams(min_area=1, max_area=math.inf, w1=0.0, w2=2.0, score="contour")
    r = rank_fn(y, z, params)
    got = [(c.area, c.s2, c.score) for c in r.candidates]
    assert got == [(100, 1.0, 2.0), (5, 0.05, 2.0), (4, 0.04, 0.0)]
    # Equal gates: s1 alone orders them, however different the areas.
    y2 = np.zeros((10, 10), np.float32)
    y2[:, 4] = 1  # left 40 px, right 50 px; the left one's occluding side along the boundary
    z2 = np.zeros_like(y2)
    z2[:, 3] = 1
    r = rank_fn(y2, z2, RankingParams(min_area=1, max_area=math.inf, patch=3))
    assert [c.area for c in r.candidates] == [40, 50]
    assert r.candidates[0].score == pytest.approx(r.candidates[0].s1 + 1.0)
    thesis = rank_fn(y2, z2, RankingParams(min_area=1, max_area=math.inf, patch=3, score="thesis"))
    assert [c.s1 for c in thesis.candidates] == [c.s1 for c in r.candidates]


def test_area_bounds_in_pixels_and_fractions():
    y = np.zeros((10, 10), np.float32)
    y[:, 4] = 1  # components of 40 and 50 px in a 100 px image
    z = np.zeros_like(y)
    areas = lambda p: sorted(c.area for c in rank(y, z, p).candidates)  # noqa: E731
    assert areas(RankingParams(min_area=45, max_area=math.inf)) == [50]
    assert areas(RankingParams(min_area=0.45, max_area=math.inf)) == [50]
    assert areas(RankingParams(min_area=0, max_area=0.45)) == [40]
    assert areas(RankingParams(min_area=40, max_area=50)) == [40, 50]  # bounds are inclusive
    assert areas(RankingParams(min_area=0, max_area=1.0)) == []  # 1.0 means one pixel


def test_ties_are_broken_by_label_order():
    y = np.zeros((9, 9), np.float32)
    y[4, :] = 1
    y[:, 4] = 1
    z = np.zeros_like(y)
    r = rank(y, z, RankingParams(min_area=1, max_area=math.inf))
    assert len({c.score for c in r.candidates}) == 1
    assert [c.label for c in r.candidates] == [1, 2, 3, 4]
    assert [c.bbox[:2] for c in r.candidates] == [(0, 0), (5, 0), (0, 5), (5, 5)]


@pytest.mark.parametrize(
    ("mask", "angle", "major", "minor"),
    [
        (np.s_[10:14, 5:25], 0.0, 20.0, 4.0),  # horizontal bar: 20 x 4
        (np.s_[5:25, 10:14], 90.0, 20.0, 4.0),  # vertical bar
    ],
)
def test_angle_and_extents_of_bars(mask, angle, major, minor):
    y = np.ones((30, 30), np.float32)
    y[mask] = 0
    r = rank(y, np.zeros_like(y), ALL)
    (c,) = r.candidates
    assert c.angle_deg == pytest.approx(angle)
    assert (c.major_px, c.minor_px) == pytest.approx((major, minor))
    assert (r.grasp.angle_deg, r.grasp.major_px, r.grasp.minor_px) == (c.angle_deg, c.major_px, c.minor_px)


@pytest.mark.parametrize(("sign", "angle"), [(1, 45.0), (-1, -45.0)])
def test_angle_convention_from_u_towards_v(sign, angle):
    """+45 deg: the major axis goes right and down the image (v grows with u)."""
    yy, xx = np.mgrid[0:40, 0:40]
    diagonal = np.abs(xx - (yy if sign > 0 else 39 - yy)) <= 2
    y = np.where(diagonal, 0, 1).astype(np.float32)
    (c,) = rank(y, np.zeros_like(y), ALL).candidates
    assert c.angle_deg == pytest.approx(angle)
    assert c.major_px > 50 > c.minor_px


def test_symmetric_shapes_have_angle_zero():
    y = np.ones((21, 21), np.float32)
    yy, xx = np.mgrid[0:21, 0:21]
    y[(yy - 10) ** 2 + (xx - 10) ** 2 <= 64] = 0  # a digital disc
    (c,) = rank(y, np.zeros_like(y), ALL).candidates
    assert c.angle_deg == 0.0
    assert c.major_px == c.minor_px == 17.0


def test_grasp_centroid_on_a_solid_square():
    y = np.ones((20, 20), np.float32)
    y[2:17, 3:18] = 0
    g = rank(y, np.zeros_like(y), ALL).grasp
    assert (g.u, g.v, g.method) == (10.0, 9.0, "centroid")


def test_grasp_moves_to_inscribed_centre_when_centroid_outside():
    y = np.ones((40, 40), np.float32)
    y[5:35, 5:35] = 0
    y[12:28, 12:35] = 1  # a C shape open to the right: centroid in the hole
    r = rank(y, np.zeros_like(y), ALL, return_labels=True)
    g = r.grasp
    assert g.method == "inscribed"
    assert r.labels[int(g.v), int(g.u)] == r.candidates[0].label
    assert r.labels[round(r.candidates[0].centroid[1]), round(r.candidates[0].centroid[0])] == 0


def test_grasp_margin_threshold():
    # Thin bar 5 px tall: the centroid row is 3 px from outside (distance 3).
    y = np.ones((20, 40), np.float32)
    y[8:13, 5:35] = 0
    z = np.zeros_like(y)
    assert rank(y, z, RankingParams(min_area=1, max_area=math.inf, margin=2.9)).grasp.method == "centroid"
    assert rank(y, z, RankingParams(min_area=1, max_area=math.inf, margin=3.0)).grasp.method == "inscribed"


def test_candidate_on_image_border_treats_outside_as_outside():
    y = np.zeros((6, 30), np.float32)  # one 6 px tall band: the image edge is its border
    g = rank(y, np.zeros_like(y), RankingParams(min_area=1, max_area=math.inf, margin=3)).grasp
    assert g.method == "inscribed"  # centroid (14.5, 2.5) is 3 px from the image edge
    assert g.v in (2.0, 3.0)


# --- thresholds, dtypes, strides --------------------------------------------------------


def test_threshold_conventions_float32_and_uint8():
    # uint8: boundary iff value > alpha*255 = 25.5.
    y8 = np.array([[25, 26, 25]], np.uint8)
    r = rank(y8, np.zeros_like(y8), ALL, return_labels=True)
    assert r.labels.tolist() == [[1, 0, 2]]
    # float32: compared as float64, so float32(0.1) (= 0.10000000149) is above alpha = 0.1.
    y32 = np.array([[0.1, 0.0999999, 0.1]], np.float32)
    r = rank(y32, np.zeros_like(y32), ALL, return_labels=True)
    assert r.labels.tolist() == [[0, 1, 0]]
    # occlusions: uint8 26 > 25.5 occludes, 25 does not; both dtypes give the same s1.
    y = np.array([[0, 1, 0]], np.float32)
    z8 = np.array([[26, 0, 25]], np.uint8)
    zf = np.array([[1, 0, 0]], np.float32)
    p = RankingParams(min_area=1, max_area=math.inf, patch=3)
    assert [c.s1 for c in rank(y, z8, p).candidates] == [c.s1 for c in rank(y, zf, p).candidates]


def test_nan_is_boundary_and_not_occluding():
    y = np.zeros((3, 5), np.float32)
    y[:, 2] = np.nan
    z = np.full_like(y, np.nan)
    r = rank(y, z, ALL, return_labels=True)
    assert (r.labels[:, 2] == 0).all() and len(r.candidates) == 2
    assert rank(y, np.zeros_like(y), ALL).candidates == r.candidates


@pytest.mark.parametrize(
    "view",
    [
        lambda a: a[::2, ::3],
        lambda a: a[::-1, ::-1],
        lambda a: a.T,
        lambda a: np.asfortranarray(a),
        lambda a: np.dstack([a, a])[:, :, 1],
    ],
)
def test_any_strides_give_the_contiguous_result(view):
    pile = make_pile(3, 64, 64, instances=8, noise=0.03)
    y, z = view(pile.boundaries), view(pile.occlusions)
    assert not (y.flags.c_contiguous and z.flags.c_contiguous) or y is pile.boundaries
    a = rank(y, z, RankingParams(), return_labels=True)
    b = rank(np.ascontiguousarray(y), np.ascontiguousarray(z), RankingParams(), return_labels=True)
    assert a.candidates == b.candidates and a.grasp == b.grasp
    assert np.array_equal(a.labels, b.labels)


def test_misaligned_and_broadcast_views():
    pile = make_pile(6, 32, 40, instances=5, noise=0.03)
    raw = b"\0" + pile.boundaries.tobytes()
    misaligned = np.frombuffer(raw, np.float32, offset=1).reshape(pile.boundaries.shape)
    assert not misaligned.flags.aligned
    expected = rank(pile.boundaries, pile.occlusions, return_labels=True)
    got = rank(misaligned, pile.occlusions, return_labels=True)
    assert got.candidates == expected.candidates and np.array_equal(got.labels, expected.labels)
    column = np.zeros((32, 1), np.float32)
    column[10] = 1  # every row of a broadcast map is this column: zero column stride
    y = np.broadcast_to(column, (32, 40))
    assert (
        rank(y, np.zeros((32, 40), np.float32), ALL).candidates
        == rank(np.ascontiguousarray(y), np.zeros((32, 40), np.float32), ALL).candidates
    )


def test_mixed_dtypes():
    pile = make_pile(4, 48, 48, instances=6)
    y8 = np.round(pile.boundaries * 255).astype(np.uint8)
    z8 = np.round(pile.occlusions * 255).astype(np.uint8)
    ref = rank(pile.boundaries, pile.occlusions)  # maps are exactly 0/1
    for y, z in ((y8, pile.occlusions), (pile.boundaries, z8), (y8, z8)):
        assert rank(y, z).candidates == ref.candidates


# --- degenerate input never crashes -----------------------------------------------------


@pytest.mark.parametrize(
    ("y", "expected"),
    [
        (np.zeros((0, 0), np.float32), 0),
        (np.zeros((0, 7), np.float32), 0),
        (np.zeros((1, 1), np.float32), 1),
        (np.ones((1, 1), np.float32), 0),
        (np.full((1, 1), np.nan, np.float32), 0),
        (np.ones((16, 16), np.float32), 0),  # all boundary
        (np.zeros((16, 16), np.float32), 1),  # no boundary: one component touching nothing
        (np.zeros((1, 50), np.uint8), 1),
    ],
)
def test_degenerate_maps(y, expected):
    r = rank(y, np.zeros_like(y), ALL, return_labels=True)
    assert len(r.candidates) == expected
    assert r.labels.shape == y.shape and r.labels.dtype == np.int32
    assert (r.grasp is None) == (expected == 0)
    if expected:
        assert r.candidates[0].s1 == 0.0 or r.candidates[0].contour_length > 0


def test_no_candidate_after_filtering_has_no_grasp():
    y = np.zeros((16, 16), np.float32)  # one component = 100% of the image > max_area 0.5
    r = rank(y, np.zeros_like(y))
    assert r.candidates == [] and r.grasp is None and r.labels is None


# --- bad input: ValueError naming the argument ------------------------------------------


GOOD = np.zeros((4, 4), np.float32)


@pytest.mark.parametrize(
    ("y", "z", "name", "expected"),
    [
        ([[0.0]], GOOD, "boundaries", "numpy array"),
        (GOOD, None, "occlusions", "numpy array"),
        (GOOD.astype(np.float64), GOOD, "boundaries", "float32"),
        (GOOD, GOOD.astype(np.int16), "occlusions", "float32"),
        (GOOD.astype(bool), GOOD, "boundaries", "uint8"),
        (GOOD.astype(">f4"), GOOD, "boundaries", "float32"),
        (np.zeros((4, 4, 1), np.float32), GOOD, "boundaries", "2-D"),
        (GOOD, np.zeros(4, np.float32), "occlusions", "2-D"),
        (GOOD, np.zeros((4, 5), np.float32), "occlusions", "shape"),
    ],
)
def test_bad_maps_raise_value_error_naming_the_argument(y, z, name, expected):
    with pytest.raises(ValueError, match=name) as info:
        rank(y, z)
    assert expected in str(info.value)


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("alpha", -0.1),
        ("alpha", 1.5),
        ("alpha", math.nan),
        ("beta", math.inf),
        ("min_area", -1),
        ("min_area", math.inf),
        ("max_area", 0),
        ("max_area", math.nan),
        ("patch", 4),
        ("patch", 0),
        ("patch", 9.0),
        ("patch", True),
        ("patch", 101),
        ("w1", -1.0),
        ("w2", math.inf),
        ("margin", -0.5),
        ("margin", "3"),
        ("score", "area"),
        ("score", 1),
    ],
)
def test_bad_params_raise_value_error_naming_the_field(field, value):
    with pytest.raises(ValueError, match=f"^{field}: expected"):
        RankingParams(**{field: value})


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("alpha", 2.0),
        ("beta", math.nan),
        ("min_area", -1.0),
        ("max_area", 0.0),
        ("patch", 2),
        ("margin", -1.0),
        ("score", "Thesis"),
    ],
)
def test_native_params_validate_too(field, value):
    """The native class is where the limits live: building it out of range fails, naming the field."""
    args = dict(
        alpha=0.1, beta=0.1, min_area=0.0, max_area=1e9, patch=9, w1=1.0, w2=1.0, margin=3.0, score="thesis"
    )
    args[field] = value
    with pytest.raises(ValueError, match=f"^{field}: expected"):
        _hotpath.RankingParams(**args)


def test_python_defaults_and_columns_are_the_native_ones():
    """One definition: the dataclass' defaults are the C++ struct's, its columns the native table's."""
    from edge.ranking import CANDIDATE_FIELDS

    native, python = _hotpath.RankingParams(), RankingParams()
    for name in ("alpha", "beta", "min_area", "max_area", "patch", "w1", "w2", "margin", "score"):
        assert getattr(native, name) == getattr(python, name), name
    assert python.native() == native
    assert tuple(_hotpath.CANDIDATE_FIELDS) == CANDIDATE_FIELDS
    assert _hotpath.MAX_PATCH == 99
    RankingParams(patch=99)  # the largest patch is accepted


def test_params_must_be_ranking_params():
    with pytest.raises(ValueError, match="params"):
        rank(GOOD, GOOD, {"alpha": 0.1})


# --- agreement with the NumPy twin and with OpenCV ---------------------------------------


@pytest.mark.parametrize("score", ["contour", "thesis", "strict"])
@pytest.mark.parametrize("seed", range(4))
def test_native_matches_reference_on_synthetic_piles(seed, score):
    pile = make_pile(seed, 96, 112, instances=12, noise=0.03 * (seed % 2))
    params = RankingParams(margin=float(seed), score=score)
    assert_same_ranking(
        rank(pile.boundaries, pile.occlusions, params, return_labels=True),
        rank_reference(pile.boundaries, pile.occlusions, params, return_labels=True),
    )


@pytest.mark.parametrize("seed", range(6))
def test_native_matches_reference_on_random_maps(seed):
    rng = np.random.default_rng(seed)
    y = (rng.random((31, 27)) < 0.35).astype(np.float32) * rng.random((31, 27)).astype(np.float32)
    z = rng.random((31, 27)).astype(np.float32)
    patch = [1, 3, 5, 7, 9, 11][seed]
    params = RankingParams(alpha=0.2, beta=0.5, min_area=1, max_area=math.inf, patch=patch)
    assert_same_ranking(
        rank(y, z, params, return_labels=True), rank_reference(y, z, params, return_labels=True)
    )


@pytest.mark.parametrize("seed", range(3))
def test_labels_and_stats_match_opencv(seed):
    pile = make_pile(seed, 128, 128, instances=15, noise=0.05)
    r = rank(pile.boundaries, pile.occlusions, ALL, return_labels=True)
    non_boundary = (pile.boundaries.astype(np.float64) <= 0.1).astype(np.uint8)
    n, cv_labels, stats, centroids = cv2.connectedComponentsWithStats(non_boundary, connectivity=4)
    assert len(r.candidates) == n - 1
    assert_same_partition(r.labels, cv_labels)
    for c in r.candidates:
        k = int(np.bincount(cv_labels[r.labels == c.label]).argmax())
        x, y, w, h, area = stats[k]
        assert (c.area, c.bbox) == (area, (x, y, w, h))
        assert np.allclose(c.centroid, centroids[k], atol=1e-9)


def test_large_frame_is_consistent_with_opencv():
    pile = make_pile(11, 512, 512, instances=30, noise=0.03)
    r = rank(pile.boundaries, pile.occlusions, ALL, return_labels=True)
    non_boundary = (pile.boundaries.astype(np.float64) <= 0.1).astype(np.uint8)
    _, cv_labels = cv2.connectedComponents(non_boundary, connectivity=4)
    assert_same_partition(r.labels, cv_labels)


# --- the API around the native call ---------------------------------------------------------


def test_to_dict_is_json_ready():
    y, z = two_halves()
    r = rank(y, z, RankingParams(min_area=1, max_area=math.inf, patch=3))
    data = json.loads(json.dumps(r.to_dict()))
    assert data["candidates"][0]["bbox"] == [0, 0, 3, 5]
    assert data["grasp"]["method"] == "inscribed"  # a 3 px wide candidate: centroid within margin
    assert set(data["candidates"][0]) == set(Candidate.__dataclass_fields__)
    assert RankingParams(max_area=math.inf).to_dict()["max_area"] is None


def test_releases_the_gil():
    """A Python thread keeps running while the native call works on a large frame."""
    tile = make_pile(5, 256, 256, instances=15, noise=0.05)
    # 5120 x 5120: long enough (~0.1 s) that a loaded machine's scheduling gaps stay well below half
    y, z = np.tile(tile.boundaries, (20, 20)), np.tile(tile.occlusions, (20, 20))
    start = time.perf_counter()
    rank(y, z)
    alone = time.perf_counter() - start
    done = threading.Event()

    def work():
        rank(y, z)
        done.set()

    worker = threading.Thread(target=work)
    gaps, last = [], time.perf_counter()
    worker.start()
    while not done.is_set():
        now = time.perf_counter()
        gaps.append(now - last)
        last = now
        time.sleep(0.0005)
    worker.join(timeout=60)
    # Holding the GIL would stall this loop for the whole call; released, it keeps ticking.
    assert len(gaps) > 3
    assert max(gaps) < 0.5 * alone, (max(gaps), alone)


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_grasp_point_of_any_candidate_is_the_ranking_rule(seed):
    """`grasp_point` gives the best candidate exactly the ranking's grasp, and every candidate the
    NumPy twin's grasp: the appliance's preferences reuse the one native rule."""
    from edge.ranking import grasp_point
    from edge.ranking.reference import grasp_point as reference_grasp_point

    pile = make_pile(seed, 160, 160, instances=8, noise=0.03)
    params = RankingParams(margin=6.0)
    ranking = rank(pile.boundaries, pile.occlusions, params, return_labels=True)
    assert ranking.candidates and ranking.grasp is not None
    best = grasp_point(ranking.labels, ranking.candidates[0], params.margin)
    assert best == (ranking.grasp.u, ranking.grasp.v, ranking.grasp.method)
    for c in ranking.candidates:
        u, v, method = grasp_point(ranking.labels, c, params.margin)
        ref_u, ref_v, ref_method = reference_grasp_point(ranking.labels == c.label, c.centroid, params.margin)
        assert (u, v, method) == (pytest.approx(ref_u, abs=1e-9), pytest.approx(ref_v, abs=1e-9), ref_method)


def test_grasp_point_rejects_a_box_outside_the_labels():
    from edge.ranking import grasp_point

    labels = np.ones((8, 8), np.int32)
    c = Candidate(1, 64, (4, 4, 8, 8), (7.5, 7.5), 0, 0.0, 0.0, 0.0, 0.0, 0.0, 8.0, 8.0)
    with pytest.raises(ValueError, match="bbox"):
        grasp_point(labels, c, 1.0)


# --- the strict score on a real Mikado pile's exact maps ------------------------------------


def _mikado_seed1():
    folder = Path(__file__).parent / "data" / "ranking"
    read = lambda name: cv2.imread(str(folder / f"mikado_seed1_{name}.png"), cv2.IMREAD_UNCHANGED)  # noqa: E731
    y = (read("boundaries") > 0).astype(np.float32)
    z = (read("occlusions") > 0).astype(np.float32)
    labels = read("labels").astype(np.int32)
    unoccluded = set(json.loads((folder / "mikado_seed1.json").read_text())["unoccluded_labels"])
    return y, z, labels, unoccluded


def _top_instance(ranking, labels) -> int:
    """The ground-truth instance covering most of the top candidate (0: the floor)."""
    ids, counts = np.unique(labels[ranking.labels == ranking.candidates[0].label], return_counts=True)
    return int(ids[np.argmax(counts)])


@pytest.mark.parametrize("rank_fn", [rank, rank_reference])
def test_strict_score_puts_the_free_stick_on_top_where_the_contour_score_picks_a_cut_piece(rank_fn):
    """Mikado pile 1 (benchmarks/ranking_domains.py, exact maps): the contour score's top candidate
    is a stick cut in two by one lying across it; its long sides are free, so its mean s1 is high,
    but its cut ends are on the occluded side. The strict score counts them (b) and ranks an
    unoccluded stick first."""
    y, z, labels, unoccluded = _mikado_seed1()
    contour = rank_fn(y, z, RankingParams(score="contour"), return_labels=True)
    strict = rank_fn(y, z, RankingParams(score="strict"), return_labels=True)
    assert _top_instance(contour, labels) not in unoccluded
    assert _top_instance(strict, labels) in unoccluded
    cut = contour.candidates[0]
    assert cut.occluded_share > 0.0 and cut.s1 > 0.6
    assert strict.candidates[0].occluded_share < cut.occluded_share
