"""Which ranked candidate the robot gets: the first grasp inside the ROI, occluding side first.

The ranking (`edge.ranking.rank`) orders every candidate of the frame; the cell can only use
a grasp inside its calibration's ROI (the bin floor's image polygon), and, with
`prefer_occluding_side`, the candidates whose contour shows the occluding side on their own side
(`edge.ranking.occluding_side`) go first. `edge.ranking.plan.plan_grasp` calls it for the
appliance's supervisor, the simulated cell's exact-map ceiling (`simcell` oracle) and the
benchmarks, so the ceiling is what the appliance would do with a perfect network, not a
different rule.

Every option's point is the ranking's own grasp rule for that candidate (`grasp_point`: centroid,
or inscribed-circle centre when the centroid is outside or within `margin` px of the border), and
options are produced lazily: a frame whose best candidate qualifies costs nothing more.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence

import cv2
import numpy as np

from edge.ranking.native import grasp_point
from edge.ranking.occluding_side import occluding_side_evidence
from edge.ranking.params import RankingParams
from edge.ranking.pick_feedback import waits
from edge.ranking.result import Candidate, Grasp, Ranking


def _option(ranking: Ranking, index: int, candidate: Candidate, margin: float) -> Grasp:
    """The candidate's grasp by the ranking's own rule (the best one's is the ranking's grasp)."""
    if index == 0 and ranking.grasp is not None:
        return ranking.grasp
    if ranking.labels is None:  # no labels to place an inscribed centre on
        (u, v), method = candidate.centroid, "centroid"
    else:
        u, v, method = grasp_point(ranking.labels, candidate, margin)
    c = candidate
    return Grasp(u, v, c.angle_deg, c.major_px, c.minor_px, c.score, index, method)


def ranked_options(
    ranking: Ranking,
    boundaries: np.ndarray,
    occlusions: np.ndarray,
    params: RankingParams,
    prefer_occluding_side: bool,
    evidence: dict[int, bool] | None = None,
) -> Iterator[Grasp]:
    """Grasp options in the order the cell should try them (lazily).

    With `prefer_occluding_side`, first the candidates with positive occluding-side evidence in
    rank order, then every candidate in rank order (so a frame where none qualifies is picked
    exactly as without the preference). Needs `ranking.labels` for the preference. `evidence`,
    when given, keeps each candidate's test between walks of the order (`select_grasp` walks it
    several times)."""
    if prefer_occluding_side and ranking.labels is not None:
        known = {} if evidence is None else evidence
        for i, c in enumerate(ranking.candidates):
            if i not in known:
                known[i] = occluding_side_evidence(boundaries, occlusions, ranking.labels, c, params) > 0
            if known[i]:
                yield _option(ranking, i, c, params.margin)
    for i, c in enumerate(ranking.candidates):
        yield _option(ranking, i, c, params.margin)


# A caller's own rule on an option: keep(u, v, label), u and v in camera pixels, label the
# candidate's value in the ranking's label image (the bin model's floor and wall rules).
Keep = Callable[[float, float, int], bool]
# A caller's placement of an option where the gripper can hold it: place(option, label) gives the
# option moved (map pixels), or None when the candidate offers no such place
# (`edge.ranking.suction.SuctionPlacer`: where a suction cup seals, from the depth map).
Place = Callable[[Grasp, int], "Grasp | None"]
# Where a point (camera pixels) stands on the bin floor, in camera pixels
# (`edge.ranking.floor_feet.FloorFeet.at`): the ROI is a region of the floor's image.
Foot = Callable[[float, float], tuple[float, float]]


def _placed(options: Iterator[Grasp], ranking: Ranking, place: Place) -> Iterator[Grasp]:
    for option in options:
        moved = place(option, ranking.candidates[option.candidate_index].label)
        if moved is not None:
            yield moved


def first_in_roi(
    options: Iterator[Grasp],
    roi_polygon: np.ndarray | None,
    scale: tuple[float, float] = (1.0, 1.0),
    keep: Keep | None = None,
    ranking: Ranking | None = None,
    foot: Foot | None = None,
) -> Grasp | None:
    """The first option whose point, scaled to camera pixels by `scale`, lies in `roi_polygon`
    (camera pixels; None = the whole image; judged at the point's `foot` when given) and that
    `keep` (with `ranking`'s labels) accepts."""
    roi = None if roi_polygon is None else np.asarray(roi_polygon, np.float32)
    sx, sy = scale
    for option in options:
        u, v = option.u * sx, option.v * sy
        if roi is not None and cv2.pointPolygonTest(roi, foot(u, v) if foot else (u, v), False) < 0:
            continue
        if keep is not None and not keep(u, v, ranking.candidates[option.candidate_index].label):
            continue
        return option
    return None


def select_grasp(
    ranking: Ranking,
    boundaries: np.ndarray,
    occlusions: np.ndarray,
    params: RankingParams,
    prefer_occluding_side: bool,
    roi_polygon: np.ndarray | None,
    scale: tuple[float, float] = (1.0, 1.0),
    avoid: Sequence[tuple[float, float]] = (),
    avoid_radius: float = 0.0,
    keep: Keep | None = None,
    place: Place | None = None,
    foot: Foot | None = None,
    place_at_edge: Place | None = None,
    plain: bool = True,
) -> Grasp | None:
    """The grasp the robot gets (map pixels), or None when no candidate's grasp is in the ROI
    (at its `foot` when given, see `Foot`) and accepted by `keep` (see `Keep`).

    `avoid` (map pixels) are recently failed grasps (`edge.ranking.pick_feedback`): candidates
    holding one go last, not never, so a frame where every candidate failed recently still gets
    a grasp. `keep` is a hard rule: what it refuses is never chosen. `place` (see `Place`) moves
    each option to where the gripper holds; candidates it finds such a place on go first (in the
    order above), then every option at the ranking's own grasp point, so a frame gets a grasp
    whenever it would without `place`. (Placing the occluding side's candidates and the rest
    separately instead, so that the occlusion evidence outranks the seal, lost most rigid-box
    picks in the simulated cell: the level box often shows no occluding side; docs/simcell.md
    "Where the cup seals".) `place_at_edge`, a second placement, is tried on every option after
    `place` found none and before the plain points (a seal reaching beyond the picture's edge).
    `plain` False: placed options only (candidates of depth alone, `edge.ranking.raised`)."""
    evidence: dict[int, bool] = {}

    def fresh(opts: Iterator[Grasp]) -> Iterator[Grasp]:
        labels = ranking.labels
        return (
            o
            for o in opts
            if not waits(o.u, o.v, ranking.candidates[o.candidate_index].label, labels, avoid, avoid_radius)
        )

    def every() -> Iterator[Grasp]:
        return ranked_options(ranking, boundaries, occlusions, params, prefer_occluding_side, evidence)

    def passes() -> Iterator[Iterator[Grasp]]:
        for only_fresh in (True, False) if avoid else (False,):
            placements = [p for p in (place, place_at_edge) if p is not None]
            for options in [_placed(every(), ranking, p) for p in placements] + ([every()] if plain else []):
                yield fresh(options) if only_fresh else options

    for options in passes():
        chosen = first_in_roi(options, roi_polygon, scale, keep, ranking, foot)
        if chosen is not None:
            return chosen
    return None
