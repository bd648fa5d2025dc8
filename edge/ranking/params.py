"""The ranking's parameters: one object, whose limits are the native hot path's own.

`RankingParams` is what every caller holds (the configuration's [ranking] section, the
supervisor, the simulated cell, the benchmarks). Its limits are not written here: building it
builds the C++ `binpick::RankingParams` through the binding (`edge._hotpath.RankingParams`),
whose constructor runs `binpick::validate` (src_cpp/hotpath/ranking.cpp), so a value the
configuration accepts is exactly a value the hot path accepts. Python checks only the types
(a bool is not a number; the patch is an integer) because C++'s conversions would silently
accept them.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, fields
from numbers import Real
from typing import Any

import numpy as np

_BUILD_HINT = (
    "the native module edge._hotpath is not built: install the project (pip install .) "
    "or run scripts/build_native_inplace.sh"
)

try:  # imported here so the first frame does not pay for loading it
    from edge import _hotpath
except ImportError as _exc:  # reported on use, so `binpick --help` works before a build
    _hotpath = None
    _IMPORT_ERROR: ImportError | None = _exc
else:
    _IMPORT_ERROR = None


def native_module() -> Any:
    """`edge._hotpath`, or an ImportError that says how to build it."""
    if _hotpath is None:
        raise ImportError(_BUILD_HINT) from _IMPORT_ERROR
    return _hotpath


# How s1 and s2 make the score (docs/hotpath.md, "Score"): "thesis" = w1*s1 + w2*s2 (thesis Eq.
# 4.10); "contour" = w1*s1 + w2*[s2 >= AREA_GATE], the area kept only as a gate; "strict" (the
# default) = w1*max(0, s1 - b) + w2*[s2 >= AREA_GATE], b the share of the contour on the
# candidate's occluded side (src_cpp/hotpath/ranking.hpp contour_term).
SCORES = ("thesis", "contour", "strict")
AREA_GATE = 0.05  # the contour score's gate on s2 (src_cpp/hotpath/ranking.hpp kAreaGate)
# b counts the contour pixels whose patch mean is below this (ranking.hpp kOccludedSideBelow)
OCCLUDED_SIDE_BELOW = 0.4

_NUMBERS = ("alpha", "beta", "min_area", "max_area", "w1", "w2", "margin")


@dataclass(frozen=True)
class RankingParams:
    """Thresholds and weights of the ranking (thesis appendix B defaults: alpha = beta = 0.1).

    Area bounds: a value >= 1 is a number of pixels, a value < 1 a fraction of
    the image (so 1.0 means one pixel; use `math.inf` for "no upper bound").
    `score` names how s1 and s2 combine (`SCORES`; docs/hotpath.md "Score").
    The defaults are the C++ struct's (a test ties them); the limits are checked by it.
    """

    alpha: float = 0.1
    beta: float = 0.1
    min_area: float = 0.0005
    max_area: float = 0.5
    patch: int = 9
    w1: float = 1.0
    w2: float = 1.0
    margin: float = 3.0
    score: str = "strict"

    def __post_init__(self) -> None:
        for name in _NUMBERS:
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, Real):
                raise ValueError(f"{name}: expected a number, got {value!r}")
            try:
                float(value)
            except OverflowError:  # an int past float's range (10**400)
                raise ValueError(f"{name}: expected a number within float range, got {value!r}") from None
        if isinstance(self.patch, bool) or not isinstance(self.patch, int | np.integer):
            raise ValueError(f"patch: expected an odd integer, got {self.patch!r}")
        if not isinstance(self.score, str) or self.score not in SCORES:
            raise ValueError(f"score: expected one of {', '.join(map(repr, SCORES))}, got {self.score!r}")
        self.native()  # the limits: binpick::validate raises ValueError naming the field

    def native(self) -> Any:
        """These parameters as the native rank calls take them (`edge._hotpath.RankingParams`)."""
        return native_module().RankingParams(
            alpha=float(self.alpha), beta=float(self.beta), min_area=float(self.min_area),
            max_area=float(self.max_area), patch=int(self.patch), w1=float(self.w1), w2=float(self.w2),
            margin=float(self.margin), score=self.score,
        )  # fmt: skip

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready (an infinite bound is null)."""
        values = {f.name: getattr(self, f.name) for f in fields(self)}
        return {k: (None if isinstance(v, float) and math.isinf(v) else v) for k, v in values.items()}
