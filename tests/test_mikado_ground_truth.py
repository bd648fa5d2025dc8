"""Ground truth of DESIGN.md on hand-built label/depth maps, and against a literal per-pixel
transcription of the definition on random maps."""

import numpy as np
import pytest

from mikado.ground_truth import boundaries_from_labels, ground_truth, occlusion_rate, occlusions_from_labels


def reference(labels, depth, tol=0.001, window=9):
    """Pixel-by-pixel transcription of DESIGN.md 'Ground truth (Mikado)' (slow, obvious)."""
    h, w = labels.shape
    b = np.zeros((h, w), bool)
    for y in range(h):
        for x in range(w):
            for dy, dx in ((1, 0), (-1, 0), (0, 1), (0, -1)):
                yy, xx = y + dy, x + dx
                if 0 <= yy < h and 0 <= xx < w and labels[yy, xx] != labels[y, x]:
                    b[y, x] = True
    occ = np.zeros((h, w), bool)
    r = window // 2
    for y, x in zip(*np.nonzero(b), strict=True):
        y0, y1, x0, x1 = max(0, y - r), min(h, y + r + 1), max(0, x - r), min(w, x + r + 1)
        wl, wd = labels[y0:y1, x0:x1], depth[y0:y1, x0:x1]
        ids = np.unique(wl)
        if len(ids) != 2:
            continue
        m0, m1 = wd[wl == ids[0]].mean(), wd[wl == ids[1]].mean()
        if abs(m0 - m1) <= tol:
            continue
        upper = ids[0] if m0 < m1 else ids[1]
        for dy in (-1, 0, 1):
            for dx in (-1, 0, 1):
                yy, xx = y + dy, x + dx
                if (dy or dx) and 0 <= yy < h and 0 <= xx < w and labels[yy, xx] == upper and not b[yy, xx]:
                    occ[yy, xx] = True
    return b, occ


def two_halves(depth_left, depth_right, size=20):
    labels = np.zeros((size, size), np.uint16)
    labels[:, size // 2 :] = 2
    labels[:, : size // 2] = 1
    depth = np.where(labels == 1, depth_left, depth_right).astype(np.float32)
    return labels, depth


def test_boundary_is_both_sides_of_a_label_change():
    labels, depth = two_halves(1.0, 0.9)
    b = boundaries_from_labels(labels)
    assert b[:, 9].all() and b[:, 10].all()
    assert b.sum() == 2 * 20


def test_nearer_side_gets_the_occlusion_next_to_the_boundary():
    labels, depth = two_halves(1.0, 0.9)  # label 2 (right) is nearer the camera: it occludes
    b, occ = ground_truth(labels, depth)
    assert occ[:, 11].all()  # first non-boundary column of the upper label
    assert occ.sum() == 20
    assert not (occ & b).any()
    labels, depth = two_halves(0.9, 1.0)
    _, occ = ground_truth(labels, depth)
    assert occ[:, 8].all() and occ.sum() == 20


def test_equal_depths_and_depths_within_tolerance_give_no_occlusion():
    labels, depth = two_halves(1.0, 1.0)
    assert not ground_truth(labels, depth)[1].any()
    labels, depth = two_halves(1.0, 1.0005)
    assert not ground_truth(labels, depth, depth_tolerance_m=0.001)[1].any()
    assert ground_truth(labels, depth, depth_tolerance_m=0.0001)[1].any()


def test_windows_with_three_labels_stay_zero():
    labels = np.ones((20, 20), np.uint16)
    labels[:, 8:12] = 2  # a 4-pixel stripe: every boundary window sees labels 1, 2 and 3
    labels[:, 12:] = 3
    depth = np.select([labels == 1, labels == 2], [1.0, 0.8], 0.9).astype(np.float32)
    b, occ = ground_truth(labels, depth)
    assert b.any()
    assert not occ.any()


def test_background_counts_as_a_label():
    labels = np.zeros((30, 30), np.uint16)
    labels[10:20, 10:20] = 7
    depth = np.where(labels == 7, 0.5, 0.6).astype(np.float32)
    b, occ = ground_truth(labels, depth)
    assert b[10:20, 10].all() and b[10:20, 9].all()
    assert occ[12:18, 11].all()  # the instance is above the floor all around
    assert not occ[labels == 0].any()


@pytest.mark.parametrize("seed", range(6))
def test_matches_the_literal_definition_on_random_piles(seed):
    rng = np.random.default_rng(seed)
    h, w = 28, 33
    labels = np.zeros((h, w), np.uint16)
    depth = np.full((h, w), 1.0, np.float32)
    for k in range(1, 6):  # painter's order: later blobs lie on top
        y, x = rng.integers(0, h), rng.integers(0, w)
        ry, rx = rng.integers(3, 10), rng.integers(3, 10)
        yy, xx = np.mgrid[0:h, 0:w]
        m = ((yy - y) / ry) ** 2 + ((xx - x) / rx) ** 2 <= 1
        labels[m] = k
        depth[m] = 1.0 - 0.01 * k + rng.normal(0, 0.0005, m.sum())
    if seed == 0:
        depth[labels == 2] = depth[labels == 1].mean() if (labels == 1).any() else 1.0
    b_ref, occ_ref = reference(labels, depth)
    b, occ = ground_truth(labels, depth)
    np.testing.assert_array_equal(b, b_ref)
    np.testing.assert_array_equal(occ, occ_ref)


def test_bad_shapes_are_named():
    with pytest.raises(ValueError, match="shape"):
        occlusions_from_labels(np.zeros((4, 4)), np.zeros((4, 5)))


def test_occlusion_rate_bounds():
    assert occlusion_rate(50, 100) == 0.5
    assert occlusion_rate(120, 100) == 0.0
    assert occlusion_rate(0, 0) == 1.0
