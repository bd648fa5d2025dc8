"""edge.ranking.suction: a seal reaching beyond the picture's edge (`seal_fit(..., overhang=True)`,
`SuctionPlacer.at_picture_edge`), and the floor frame back to the picture (`map_pixels`)."""

import numpy as np
import pytest

from edge.ranking.result import Grasp
from edge.ranking.selection import select_grasp
from edge.ranking.suction import SuctionParams, SuctionPlacer, SurfacePoints, seal_fit

FX = 500.0
SIZE = 256
K = np.array([[FX, 0.0, (SIZE - 1) / 2], [0.0, FX, (SIZE - 1) / 2], [0.0, 0.0, 1.0]])
CAMERA_MM = 300.0
TOP_MM = 60.0


def _cut_box(strip_mm: float) -> tuple[np.ndarray, np.ndarray]:
    """A level box top 60 mm high whose last `strip_mm` (along v) shows at the picture's bottom
    edge, the rest beyond it (label 1); the floor (label 2) everywhere else."""
    v, u = np.mgrid[0:SIZE, 0:SIZE].astype(np.float64)
    z_top = CAMERA_MM - TOP_MM
    y_mm = (v - K[1, 2]) * z_top / FX
    y_edge = (SIZE - 0.5 - K[1, 2]) * z_top / FX  # the picture's edge at the top's height
    on_top = (y_mm >= y_edge - strip_mm) & (np.abs((u - K[0, 2]) * z_top / FX) <= 40.0)
    depth = np.where(on_top, z_top, CAMERA_MM) / 1000.0
    return depth.astype(np.float32), np.where(on_top, 1, 2).astype(np.int32)


def _points(depth: np.ndarray, dist: np.ndarray | None = None) -> SurfacePoints:
    return SurfacePoints(depth, K, dist, np.array([0.0, 0.0, 1.0]), CAMERA_MM, depth.shape)


@pytest.mark.parametrize("dist", [None, np.array([-0.2, 0.05, 0.0, 0.0, 0.0])])
def test_map_pixels_is_the_inverse_of_the_window(dist):
    depth = np.full((SIZE, SIZE), 0.25, np.float32)
    points = _points(depth, dist)
    rows, cols = slice(10, 240, 37), slice(5, 250, 41)
    pts, _, _ = points.window(slice(0, SIZE), slice(0, SIZE))
    vs, us = np.mgrid[rows, cols]
    back = points.map_pixels(pts[vs, us])
    assert np.allclose(back[..., 0], us, atol=0.05) and np.allclose(back[..., 1], vs, atol=0.05)


def test_a_box_top_cut_by_the_picture_seals_only_overhanging_and_towards_the_edge():
    """12 mm of a level top in view: a 15 mm cup fits nowhere inside the picture, so the plain
    fit finds no place; reaching beyond the edge it seals, and as far beyond as allowed (the
    box's centre of mass is out there), not at the strip's middle."""
    depth, labels = _cut_box(12.0)
    points = _points(depth)
    params = SuctionParams(cup_radius_mm=7.5)
    assert seal_fit(points, labels, 1, params) is None
    fit = seal_fit(points, labels, 1, params, overhang=True)
    assert fit is not None and fit.tilt_deg < 1.0
    assert 0.0 < fit.beyond_picture <= 0.5  # at least half the disc is measured
    strip_rows = np.nonzero((labels == 1).any(axis=1))[0]
    assert fit.v > (strip_rows.min() + strip_rows.max()) / 2  # beyond the strip's middle, edgewards
    assert abs(fit.u - K[0, 2]) < 3.0


def test_a_strip_of_a_side_face_or_too_narrow_finds_no_seal_even_overhanging():
    """5 mm of top in view: even half a disc does not fit on it (half of the disc measured is the
    least), so no seal. A place inside the picture is never replaced by an overhanging one."""
    depth, labels = _cut_box(5.0)
    assert seal_fit(_points(depth), labels, 1, SuctionParams(), overhang=True) is None
    depth, labels = _cut_box(40.0)
    inside = seal_fit(_points(depth), labels, 1, SuctionParams())
    assert inside is not None and inside.beyond_picture == 0.0


def test_the_overhanging_place_comes_after_every_place_inside_the_picture_and_before_plain_points():
    """Two candidates: the cut box ranked first, a level product lower: the lower one's place
    wins. Without it, the cut box's overhanging place wins over its plain point."""
    depth, labels = _cut_box(12.0)
    level = np.zeros_like(labels, bool)
    level[40:90, 40:90] = True
    depth_two = np.where(level, (CAMERA_MM - 20.0) / 1000.0, depth).astype(np.float32)
    labels_two = np.where(level, 3, labels)
    options = {1: Grasp(128.0, 250.0, 0.0, 80.0, 10.0, 2.0, 0, "centroid"),
               3: Grasp(65.0, 65.0, 0.0, 50.0, 50.0, 1.0, 1, "centroid")}  # fmt: skip

    def choose(depth_map: np.ndarray, label_map: np.ndarray, present: list[int]):
        from edge.ranking.result import Candidate, Ranking

        def bbox(lab: int) -> tuple[int, int, int, int]:
            ys, xs = np.nonzero(label_map == lab)
            return int(xs.min()), int(ys.min()), int(np.ptp(xs)) + 1, int(np.ptp(ys)) + 1

        cands = [Candidate(lab, int((label_map == lab).sum()), bbox(lab), (options[lab].u, options[lab].v), 1,
                           0.0, 0.0, 0.0, options[lab].score, 0.0, 1.0, 1.0) for lab in present]  # fmt: skip
        ranking = Ranking(cands, options[present[0]], label_map)
        placer = SuctionPlacer(lambda: _points(depth_map), label_map, SuctionParams())
        zeros = np.zeros(label_map.shape, np.float32)
        return select_grasp(ranking, zeros, zeros, _params(), False, None, place=placer,
                            place_at_edge=placer.at_picture_edge), ranking  # fmt: skip

    chosen, ranking = choose(depth_two, labels_two, [1, 3])
    assert ranking.candidates[chosen.candidate_index].label == 3 and chosen.method == "suction"
    chosen, ranking = choose(depth, labels, [1])
    assert chosen.method == "suction_edge" and chosen.v > 240


def _params():
    from edge.ranking import RankingParams

    return RankingParams(min_area=1, max_area=np.inf, margin=3.0, score="thesis")
