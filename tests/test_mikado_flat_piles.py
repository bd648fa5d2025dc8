"""2.5D piles without a renderer (mikado.flat_piles) and the label-order depth they are judged on."""

from __future__ import annotations

import numpy as np
import pytest

from mikado.flat_piles import _finish, identical_pile, make_pile, shapes_pile, touching_pile
from mikado.ground_truth import depth_from_order


def test_label_order_depth_puts_later_labels_nearer_and_the_floor_farthest():
    labels = np.array([[0, 1, 2, 3]])
    depth = depth_from_order(labels)
    assert list(np.argsort(depth[0])) == [3, 2, 1, 0]
    same = depth_from_order(labels, np.array([0.0, 1.0, 1.0, 2.0]))
    assert same[0, 1] == same[0, 2] < same[0, 0] and same[0, 3] < same[0, 1]
    with pytest.raises(ValueError, match="level"):
        depth_from_order(labels, np.array([0.0, 1.0]))


def test_two_squares_the_upper_one_is_unoccluded_and_owns_the_occluding_side():
    lower = np.zeros((30, 30), bool)
    lower[5:20, 5:20] = True
    upper = np.zeros((30, 30), bool)
    upper[12:27, 12:27] = True
    pile = _finish([lower, upper], [1.0, 2.0], np.random.default_rng(0), 0.0)
    assert pile.occluded_share[2] == 0.0
    assert pile.occluded_share[1] == pytest.approx(8 * 8 / 15**2)
    # Along the upper square's left edge (boundary columns 11 | 12, rows whose 9x9 window holds
    # only the two squares): the upper side's first pixel is occluding, the lower side's is not.
    assert pile.boundaries[14:16, 11:13].all()
    assert pile.occlusions[14:16, 13].all() and not pile.occlusions[14:16, 10].any()


def test_touching_tiles_at_one_height_do_not_occlude_each_other():
    a = np.zeros((20, 40), bool)
    a[5:15, 5:20] = True
    b = np.zeros((20, 40), bool)
    b[5:15, 20:35] = True
    pile = _finish([a, b], [1.0, 1.0], np.random.default_rng(0), 0.0)
    assert list(pile.occluded_share) == [0.0, 0.0, 0.0]
    between = pile.occlusions[:, 18:23]
    assert not between[7:13].any()  # the shared edge: a boundary without an occluding side
    assert pile.boundaries[7:13, 19:21].all()


@pytest.mark.parametrize("make", [make_pile, shapes_pile, identical_pile, touching_pile])
def test_piles_are_deterministic_and_have_an_unoccluded_instance(make):
    a, b = make(5, 128, 128), make(5, 128, 128)
    assert np.array_equal(a.labels, b.labels) and np.array_equal(a.occlusions, b.occlusions)
    assert (a.occluded_share[1:] == 0).any()
    assert a.level.shape == (a.labels.max() + 1,) or a.level.shape[0] > a.labels.max()
