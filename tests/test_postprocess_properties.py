"""Property tests (hypothesis): on any small map, the native ranking agrees with its NumPy twin and
keeps its invariants."""

from __future__ import annotations

import math
from dataclasses import replace

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays

from edge.ranking import AREA_GATE, RankingParams, rank
from edge.ranking.reference import rank_reference

SETTINGS = settings(max_examples=60, deadline=None)

shapes = st.tuples(st.integers(1, 24), st.integers(1, 24))


@st.composite
def maps(draw):
    """Boundary and occlusion maps: float32 with NaN and exact-threshold values, or uint8."""
    shape = draw(shapes)
    special = st.sampled_from([0.0, 0.1, 0.5, 1.0, float(np.float32(0.1)), math.nan])
    floats = st.one_of(st.floats(0, 1, width=32), special)
    as_float = arrays(np.float32, shape, elements=floats)
    as_uint8 = arrays(np.uint8, shape)
    y = draw(st.one_of(as_float, as_uint8))
    z = draw(st.one_of(as_float, as_uint8))
    return y, z


params_strategy = st.builds(
    RankingParams,
    alpha=st.sampled_from([0.0, 0.1, 0.5, 0.9]),
    beta=st.sampled_from([0.0, 0.1, 0.5]),
    min_area=st.sampled_from([0, 1, 2, 0.05]),
    max_area=st.sampled_from([math.inf, 0.5, 40]),
    patch=st.sampled_from([1, 3, 5, 9]),
    w1=st.sampled_from([0.0, 1.0, 2.5]),
    w2=st.sampled_from([0.0, 1.0]),
    margin=st.sampled_from([0.0, 1.0, 3.0]),
    score=st.sampled_from(["contour", "thesis", "strict"]),
)


@SETTINGS
@given(maps(), params_strategy)
def test_native_equals_reference(yz, params):
    y, z = yz
    a = rank(y, z, params, return_labels=True)
    b = rank_reference(y, z, params, return_labels=True)
    assert np.array_equal(a.labels, b.labels)  # same numbering too: raster order of first pixels
    assert len(a.candidates) == len(b.candidates)
    for ca, cb in zip(a.candidates, b.candidates, strict=True):
        same = ("label", "area", "bbox", "contour_length")
        assert [getattr(ca, n) for n in same] == [getattr(cb, n) for n in same]
        for name in ("s1", "s2", "score", "angle_deg", "major_px", "minor_px"):
            assert abs(getattr(ca, name) - getattr(cb, name)) <= 1e-6, name
    assert (a.grasp is None) == (b.grasp is None)
    if a.grasp is not None:
        assert a.grasp.method == b.grasp.method
        assert abs(a.grasp.u - b.grasp.u) <= 1e-9 and abs(a.grasp.v - b.grasp.v) <= 1e-9


@SETTINGS
@given(maps(), params_strategy)
def test_invariants(yz, params):
    y, z = yz
    r = rank(y, z, params, return_labels=True)
    labels = r.labels
    assert labels.shape == y.shape and labels.dtype == np.int32
    scale = 255.0 if y.dtype == np.uint8 else 1.0
    boundary = ~(y.astype(np.float64) <= params.alpha * scale)
    assert not labels[boundary].any()  # boundary pixels are never in a candidate
    assert sorted(c.label for c in r.candidates) == list(range(1, len(r.candidates) + 1))
    scores = [c.score for c in r.candidates]
    assert scores == sorted(scores, reverse=True)
    if r.candidates:
        assert max(c.s2 for c in r.candidates) == 1.0
    for c in r.candidates:
        mask = labels == c.label
        assert mask.sum() == c.area
        ys, xs = np.nonzero(mask)
        assert c.bbox == (xs.min(), ys.min(), xs.max() - xs.min() + 1, ys.max() - ys.min() + 1)
        assert 0.0 <= c.s1 <= 1.0 and 0.0 < c.s2 <= 1.0
        assert -90.0 < c.angle_deg <= 90.0
        assert c.minor_px >= 1.0 and 1.0 <= c.major_px <= math.hypot(*y.shape) + 1
        area_term = c.s2 if params.score == "thesis" else float(c.s2 >= AREA_GATE)
        contour_term = max(0.0, c.s1 - c.occluded_share) if params.score == "strict" else c.s1
        assert 0.0 <= c.occluded_share <= 1.0
        assert abs(c.score - (params.w1 * contour_term + params.w2 * area_term)) <= 1e-12
    g = r.grasp
    if g is not None:
        best = r.candidates[0]
        assert (g.angle_deg, g.score, g.candidate_index) == (best.angle_deg, best.score, 0)
        if g.method == "inscribed":
            assert labels[int(g.v), int(g.u)] == best.label
        else:
            assert (g.u, g.v) == best.centroid


@SETTINGS
@given(maps(), params_strategy)
def test_transposing_the_maps_transposes_the_result(yz, params):
    """Square patches and 4-connectivity are symmetric: s1, s2 and areas survive a transpose."""
    y, z = yz
    a = rank(y, z, params, return_labels=True)
    b = rank(y.T, z.T, params, return_labels=True)
    key = lambda c: (c.area, round(c.s1, 9), round(c.s2, 9))  # noqa: E731
    assert sorted(map(key, a.candidates)) == sorted(map(key, b.candidates))
    assert np.array_equal(a.labels.T != 0, b.labels != 0)


@SETTINGS
@given(maps(), params_strategy, st.sampled_from([0.0, 1.0, 2.5, 7.0, 40.0]))
def test_result_does_not_depend_on_asking_for_labels(yz, params, margin):
    """Without `return_labels` the native path paints no label image (the grasp reads the best
    candidate's runs, the window around its centroid first): the same candidates and grasp."""
    y, z = yz
    params = replace(params, margin=margin)
    with_labels = rank(y, z, params, return_labels=True)
    without = rank(y, z, params)
    assert without.labels is None
    assert without.candidates == with_labels.candidates
    assert without.grasp == with_labels.grasp


def test_pile_result_does_not_depend_on_asking_for_labels():
    """The same on synthetic piles, where candidates are large and the inscribed centre is used."""
    from mikado.flat_piles import make_pile

    methods = set()
    for seed in range(4):
        pile = make_pile(seed, 96, 128, 12, noise=0.03)
        for margin in (3.0, 12.0, 60.0):
            params = RankingParams(margin=margin)
            with_labels = rank(pile.boundaries, pile.occlusions, params, return_labels=True)
            without = rank(pile.boundaries, pile.occlusions, params)
            assert without.candidates == with_labels.candidates
            assert without.grasp == with_labels.grasp
            methods.add(with_labels.grasp.method)
    assert methods == {"centroid", "inscribed"}
