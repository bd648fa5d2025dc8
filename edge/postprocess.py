"""Instance candidates and occlusion-aware ranking: the typed API over the native hot path.

The appliance calls `rank` once per frame on the network's boundary and
occlusion maps. All the work happens in one native call (`edge._hotpath`,
C++ in `src_cpp/`), which releases the GIL; this module only validates the
parameters early (so a bad configuration fails when it is loaded, not on the
first frame) and turns the native table into dataclasses that serialise to
JSON. The definitions (thresholds, s1, s2, grasp, angle, extents) are in
docs/hotpath.md; `edge.postprocess_reference` is the readable NumPy twin.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field
from numbers import Real
from typing import Any

import numpy as np

_BUILD_HINT = (
    "the native module edge._hotpath is not built: install the project (pip install .) "
    "or run scripts/build_native_inplace.sh"
)


# How s1 and s2 make the score (docs/hotpath.md, "Score"): "thesis" = w1*s1 + w2*s2 (thesis Eq.
# 4.10); "contour" = w1*s1 + w2*[s2 >= AREA_GATE], the area kept only as a gate (the default).
SCORES = ("thesis", "contour")
AREA_GATE = 0.05  # the contour score's gate on s2 (src_cpp/hotpath/ranking.hpp kAreaGate)


@dataclass(frozen=True)
class RankingParams:
    """Thresholds and weights of the ranking (thesis appendix B defaults: alpha = beta = 0.1).

    Area bounds: a value >= 1 is a number of pixels, a value < 1 a fraction of
    the image (so 1.0 means one pixel; use `math.inf` for "no upper bound").
    `score` names how s1 and s2 combine (`SCORES`; docs/hotpath.md "Score").
    """

    alpha: float = 0.1
    beta: float = 0.1
    min_area: float = 0.0005
    max_area: float = 0.5
    patch: int = 9
    w1: float = 1.0
    w2: float = 1.0
    margin: float = 3.0
    score: str = "contour"

    def __post_init__(self) -> None:
        if self.score not in SCORES:
            raise ValueError(f"score: expected one of {', '.join(map(repr, SCORES))}, got {self.score!r}")
        for name in ("alpha", "beta", "min_area", "max_area", "w1", "w2", "margin"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, Real):
                raise ValueError(f"{name}: expected a number, got {value!r}")
        checks = [
            ("alpha", 0.0 <= self.alpha <= 1.0, "a number in [0, 1]"),
            ("beta", 0.0 <= self.beta <= 1.0, "a number in [0, 1]"),
            ("min_area", math.isfinite(self.min_area) and self.min_area >= 0, "a finite number >= 0"),
            ("max_area", self.max_area > 0, "a number > 0 or inf"),
            ("w1", math.isfinite(self.w1) and self.w1 >= 0, "a finite number >= 0"),
            ("w2", math.isfinite(self.w2) and self.w2 >= 0, "a finite number >= 0"),
            ("margin", math.isfinite(self.margin) and self.margin >= 0, "a finite number >= 0 (pixels)"),
        ]
        for name, ok, expected in checks:
            if not ok:
                raise ValueError(f"{name}: expected {expected}, got {getattr(self, name)!r}")
        patch = self.patch
        if (
            isinstance(patch, bool)
            or not isinstance(patch, int | np.integer)
            or not 1 <= patch <= 1001
            or patch % 2 == 0
        ):
            raise ValueError(f"patch: expected an odd integer in [1, 1001], got {patch!r}")

    def to_dict(self) -> dict[str, Any]:
        return {k: (None if isinstance(v, float) and math.isinf(v) else v) for k, v in asdict(self).items()}


@dataclass(slots=True)
class Candidate:
    """One instance candidate: a 4-connected component of non-boundary pixels.

    `label` is its value in `Ranking.labels` (1..N in raster order of the
    candidate's first pixel). `bbox` is (x, y, w, h) and `centroid` (u, v), u
    being the column. `contour_length` is the number of boundary pixels
    4-adjacent to it (the pixels s1 averages over). `angle_deg` is the major
    axis' angle from the image +u axis towards +v, in (-90, 90]; `major_px` and
    `minor_px` are the candidate's full extents along its major and minor axes.
    """

    label: int
    area: int
    bbox: tuple[int, int, int, int]
    centroid: tuple[float, float]
    contour_length: int
    s1: float
    s2: float
    score: float
    angle_deg: float
    major_px: float
    minor_px: float

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d["bbox"] = list(self.bbox)
        d["centroid"] = list(self.centroid)
        return d


@dataclass(slots=True)
class Grasp:
    """Where to pick the best candidate: pixel (u, v), orientation and extents of that candidate.

    `method` is "centroid", or "inscribed" when the centroid was outside the
    candidate or within `margin` px of its border (then (u, v) is the centre of
    the largest inscribed circle).
    """

    u: float
    v: float
    angle_deg: float
    major_px: float
    minor_px: float
    score: float
    candidate_index: int
    method: str

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass
class Ranking:
    """The ranked candidates of one frame (best first), the grasp, and the labels when asked for."""

    candidates: list[Candidate]
    grasp: Grasp | None
    labels: np.ndarray | None = field(default=None, repr=False)

    def to_dict(self) -> dict[str, Any]:
        return {
            "candidates": [c.to_dict() for c in self.candidates],
            "grasp": None if self.grasp is None else self.grasp.to_dict(),
        }


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


try:  # imported here so the first frame does not pay for loading it
    from edge import _hotpath
except ImportError as _exc:  # reported on use, so `binpick --help` works before a build
    _hotpath = None
    _IMPORT_ERROR: ImportError | None = _exc
else:
    _IMPORT_ERROR = None


# The column order of the native candidate table (edge._hotpath.CANDIDATE_FIELDS).
_NATIVE_FIELDS = (
    "label", "area", "bbox_x", "bbox_y", "bbox_w", "bbox_h", "centroid_u", "centroid_v",
    "contour_length", "s1", "s2", "score", "angle_deg", "major_px", "minor_px",
)  # fmt: skip


def _native() -> Any:
    if _hotpath is None:
        raise ImportError(_BUILD_HINT) from _IMPORT_ERROR
    return _hotpath


def _native_params(params: RankingParams | None) -> tuple:
    """`params` (None: the defaults) as the native rank calls take them, positionally after the maps."""
    params = RankingParams() if params is None else params
    if not isinstance(params, RankingParams):
        raise ValueError(f"params: expected a RankingParams, got {type(params).__name__}")
    return (
        float(params.alpha), float(params.beta), float(params.min_area), float(params.max_area),
        int(params.patch), float(params.w1), float(params.w2), float(params.margin), params.score,
    )  # fmt: skip


def _ranking_from_native(table: np.ndarray, grasp, labels, fields: tuple[str, ...]) -> Ranking:
    """A native rank call's result as a Ranking. The candidates are built positionally from the
    table's rows (columns named by `fields`) because this runs for every candidate of every frame."""
    if fields != _NATIVE_FIELDS:
        raise ImportError(f"edge._hotpath returns columns {fields}, expected {_NATIVE_FIELDS}: rebuild it")
    # The integer columns converted by NumPy, one call each, not by int() per value: this runs
    # every frame, and per-value conversion cost ~40 us of ~120 us for 35 candidates.
    whole = table[:, :6].astype(np.int64).tolist()
    lengths = table[:, 8].astype(np.int64).tolist()
    candidates = [
        Candidate(k, a, (x, y, w, h), (u, v), n, s1, s2, sc, ang, ma, mi)
        for (k, a, x, y, w, h), n, (u, v, _, s1, s2, sc, ang, ma, mi) in zip(
            whole, lengths, table[:, 6:].tolist(), strict=True
        )
    ]
    return Ranking(candidates=candidates, grasp=None if grasp is None else Grasp(*grasp), labels=labels)


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
    numeric = _native_params(params)
    native = _native()
    table, grasp, labels = native.rank(boundaries, occlusions, *numeric, bool(return_labels))
    return _ranking_from_native(table, grasp, labels, tuple(native.CANDIDATE_FIELDS))


def grasp_point(labels: np.ndarray, candidate: Candidate, margin: float) -> tuple[float, float, str]:
    """The grasp `rank` would choose for `candidate` (centroid or inscribed-circle centre),
    from the labels image `rank(..., return_labels=True)` returned: for callers that pick another
    candidate than the best one (the appliance's ROI and occluding-side preferences), so there is
    one grasp rule, the native one."""
    x, y, w, h = (int(v) for v in candidate.bbox)
    u, v, method = _native().grasp_point(
        labels, int(candidate.label), float(candidate.centroid[0]), float(candidate.centroid[1]),
        x, y, w, h, float(margin),
    )  # fmt: skip
    return float(u), float(v), str(method)
