"""Occlusion-aware ranking of one frame: the typed API over the native hot path.

The appliance calls `rank` once per frame on the network's boundary and occlusion maps. All the
work happens in one native call (`edge._hotpath`, C++ in `src_cpp/`), which releases the GIL;
this module turns the native table into the dataclasses of `edge.ranking.result`. The
definitions (thresholds, s1, s2, grasp, angle, extents) are in docs/hotpath.md;
`edge.ranking.reference` is the readable NumPy twin.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from edge.ranking.params import RankingParams, native_module
from edge.ranking.result import CANDIDATE_FIELDS, Candidate, Grasp, Ranking


def binarise(
    boundaries: np.ndarray, occlusions: np.ndarray, params: RankingParams
) -> tuple[np.ndarray, np.ndarray]:
    """The masks the ranking works on: non-boundary (Y <= alpha) and occluding side (Z > beta).

    The native call does this itself; this is for drawing and for the NumPy
    reference. Values are compared as float64 (a float32 0.1 is above the
    float64 0.1); uint8 maps are probability*255, so their thresholds are
    alpha*255 and beta*255. NaN is a boundary and not occluding.
    """
    y_scale = 255.0 if boundaries.dtype == np.uint8 else 1.0
    z_scale = 255.0 if occlusions.dtype == np.uint8 else 1.0
    non_boundary = boundaries.astype(np.float64) <= params.alpha * y_scale
    occluding = occlusions.astype(np.float64) > params.beta * z_scale
    return non_boundary, occluding


def native_params(params: RankingParams | None) -> Any:
    """`params` (None: the defaults) as the native rank calls take them."""
    params = RankingParams() if params is None else params
    if not isinstance(params, RankingParams):
        raise ValueError(f"params: expected a RankingParams, got {type(params).__name__}")
    return params.native()


def ranking_from_native(
    table: np.ndarray,
    # the best candidate's (u, v, angle_deg, major_px, minor_px, score, method), None without one
    grasp: tuple[float, float, float, float, float, float, str] | None,
    labels: np.ndarray | None,
    fields: tuple[str, ...],
) -> Ranking:
    """A native rank call's result as a Ranking. The candidates are built positionally from the
    table's rows (columns named by `fields`, which must be `CANDIDATE_FIELDS`) because this runs
    for every candidate of every frame."""
    if fields != CANDIDATE_FIELDS:
        raise ImportError(
            f"the native module returns columns {fields}, expected {CANDIDATE_FIELDS}: rebuild it"
        )
    # The integer columns converted by NumPy, one call each, not by int() per value: this runs
    # every frame, and per-value conversion cost ~40 us of ~120 us for 35 candidates.
    whole = table[:, :6].astype(np.int64).tolist()
    lengths = table[:, 8].astype(np.int64).tolist()
    candidates = [
        Candidate(k, a, (x, y, w, h), (u, v), n, s1, s2, b, sc, ang, ma, mi)
        for (k, a, x, y, w, h), n, (u, v, _, s1, s2, b, sc, ang, ma, mi) in zip(
            whole, lengths, table[:, 6:].tolist(), strict=True
        )
    ]
    best = None if grasp is None else Grasp(*grasp[:6], 0, grasp[6])  # the best candidate's: index 0
    return Ranking(candidates=candidates, grasp=best, labels=labels)


def rank(
    boundaries: np.ndarray,
    occlusions: np.ndarray,
    params: RankingParams | None = None,
    return_labels: bool = False,
) -> Ranking:
    """Rank the instance candidates of one frame from its boundary map Y and occlusion map Z.

    Y and Z are H x W, float32 probabilities in [0, 1] or uint8 probability*255,
    any strides. Raises ValueError naming the argument on a wrong type, dtype,
    rank or shape.
    """
    native = native_params(params)
    module = native_module()
    table, grasp, labels = module.rank(boundaries, occlusions, native, bool(return_labels))
    return ranking_from_native(table, grasp, labels, tuple(module.CANDIDATE_FIELDS))


def grasp_point(labels: np.ndarray, candidate: Candidate, margin: float) -> tuple[float, float, str]:
    """The grasp `rank` would choose for `candidate` (centroid or inscribed-circle centre),
    from the labels image `rank(..., return_labels=True)` returned: for callers that pick another
    candidate than the best one (the appliance's ROI and occluding-side preferences), so there is
    one grasp rule, the native one."""
    x, y, w, h = (int(v) for v in candidate.bbox)
    u, v, method = native_module().grasp_point(
        labels, int(candidate.label), float(candidate.centroid[0]), float(candidate.centroid[1]),
        x, y, w, h, float(margin),
    )  # fmt: skip
    return float(u), float(v), str(method)
