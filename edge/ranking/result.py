"""What a ranking returns: candidates, the best candidate's grasp, and the labels image.

The native table's columns are these dataclasses' fields, flattened (`CANDIDATE_FIELDS`: the
`bbox` tuple is four columns, `centroid` two); `edge.ranking.native` refuses a native module
whose columns differ, so a field added on one side cannot be read into the wrong slot.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field, fields
from typing import Any

import numpy as np


@dataclass(slots=True)
class Candidate:
    """One instance candidate: a 4-connected component of non-boundary pixels.

    `label` is its value in `Ranking.labels` (1..N in raster order of the
    candidate's first pixel). `bbox` is (x, y, w, h) and `centroid` (u, v), u
    being the column. `contour_length` is the number of boundary pixels
    4-adjacent to it (the pixels s1 averages over). `angle_deg` is the major
    axis' angle from the image +u axis towards +v, in (-90, 90]; `major_px` and
    `minor_px` are the candidate's full extents along its major and minor axes.
    `occluded_share` (b in docs/hotpath.md) is the share of the contour pixels whose patch puts
    the candidate on the occluded side (XNOR mean below 0.4); the "strict" score subtracts it.
    """

    label: int
    area: int
    bbox: tuple[int, int, int, int]
    centroid: tuple[float, float]
    contour_length: int
    s1: float
    s2: float
    occluded_share: float
    score: float
    angle_deg: float
    major_px: float
    minor_px: float

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d["bbox"] = list(self.bbox)
        d["centroid"] = list(self.centroid)
        return d


# How a tuple-valued field is spread over the native table's columns.
_SPREAD = {"bbox": ("bbox_x", "bbox_y", "bbox_w", "bbox_h"), "centroid": ("centroid_u", "centroid_v")}
CANDIDATE_FIELDS: tuple[str, ...] = tuple(
    column for f in fields(Candidate) for column in _SPREAD.get(f.name, (f.name,))
)


@dataclass(slots=True)
class Grasp:
    """Where to pick a candidate: pixel (u, v), orientation and extents of that candidate.

    `method` is "centroid", or "inscribed" when the centroid was outside the
    candidate or within `margin` px of its border (then (u, v) is the centre of
    the largest inscribed circle). `candidate_index` is the candidate's place in
    `Ranking.candidates` (0 for the ranking's own grasp, the best candidate's).
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
