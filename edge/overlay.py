"""The thesis-style picture of one frame's ranking (thesis Figs. 4.23-4.25), for `binpick detect` and the
appliance's status page.

Drawn on the camera image (or, without one, on the boundary map in grey):
boundaries blue, occluding side orange (over the blue), the grasped candidate filled
translucent green with its contour, the other candidates outlined thinly,
and the grasp marked by a cross along the candidate's major/minor axes
(lengths = its extents) with its score. Colours are RGB.

The appliance marks the grasp it sent, not the ranking's own: the seal check, the bin's rules and
the candidates of depth alone may move the pick to another place or candidate, and an operator
comparing the page with the robot must see the point the robot got (with its rule named). A
cycle that sent nothing marks nothing.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, replace
from typing import Literal

import cv2
import numpy as np

from edge.ranking import Grasp, Ranking, RankingParams, binarise

BOUNDARY_RGB = (40, 90, 255)
OCCLUDING_RGB = (255, 150, 0)
BEST_RGB = (40, 220, 70)
OTHER_RGB = (235, 235, 235)
GRASP_RGB = (255, 40, 40)


@dataclass(frozen=True)
class PickMark:
    """A grasp to mark: `grasp` in the overlay's (map) pixels, the ranking's own type, its `method`
    the rule named beside it ("" names none). `shown_angle_deg` is the angle its label prints when
    it is not the drawn one (the published camera-pixel angle: with unequal scales the map's angle
    differs); `candidate_label` is the ranking's label of the candidate it belongs to, filled green
    (None: none of the ranking's, e.g. a region of depth alone)."""

    grasp: Grasp
    shown_angle_deg: float | None = None
    candidate_label: int | None = None

    @classmethod
    def from_camera(
        cls,
        pick: Mapping[str, float],
        scale: tuple[float, float],
        rule: str = "",
        candidate_label: int | None = None,
    ) -> PickMark:
        """A cycle's published pick (camera pixels) in map pixels; `scale` = camera px per map px (u, v).

        The exact inverse of `edge.ranking.plan._planned`, which took the grasp from map to camera
        pixels: the axis direction is re-measured, and each extent is scaled along its own axis in
        the map (the minor axis is perpendicular there, not in the camera's pixels)."""
        sx, sy = scale
        a = math.radians(pick["angle_deg"])
        m = math.atan2(math.sin(a) / sy, math.cos(a) / sx)  # the major axis' angle in the map
        cos, sin = math.cos(m), math.sin(m)
        grasp = Grasp(
            u=pick["u"] / sx, v=pick["v"] / sy, angle_deg=math.degrees(m),
            major_px=pick["major_px"] / math.hypot(sx * cos, sy * sin),
            minor_px=pick["minor_px"] / math.hypot(sx * sin, sy * cos),
            score=pick["score"], candidate_index=-1, method=rule,  # -1: its place in no ranking
        )  # fmt: skip
        return cls(grasp, pick["angle_deg"], candidate_label)


def _base_image(image: np.ndarray | None, boundaries: np.ndarray) -> np.ndarray:
    if image is None:
        y = boundaries.astype(np.float32) / (255.0 if boundaries.dtype == np.uint8 else 1.0)
        grey = (255 - np.clip(np.nan_to_num(y, nan=1.0), 0, 1) * 255).astype(np.uint8)
        return np.dstack([grey] * 3)
    if image.ndim == 2:
        return np.dstack([image] * 3).astype(np.uint8)
    if image.ndim == 3 and image.shape[2] == 3:
        return image.astype(np.uint8).copy()
    raise ValueError(f"image: expected H x W x 3 RGB or H x W grey, got shape {image.shape}")


def draw_overlay(
    image: np.ndarray | None,
    boundaries: np.ndarray,
    occlusions: np.ndarray,
    ranking: Ranking,
    params: RankingParams,
    mark: PickMark | None | Literal["ranking"] = "ranking",
) -> np.ndarray:
    """RGB uint8 picture of the ranking; `ranking` must carry labels (rank(..., return_labels=True)).

    `mark` is the grasp to draw and its candidate to fill: the ranking's own grasp and best
    candidate by default (`binpick detect`), the published pick on the appliance, None for none
    (every candidate outlined, none filled)."""
    if ranking.labels is None:
        raise ValueError("ranking: expected labels, call rank(..., return_labels=True)")
    if image is not None and image.shape[:2] != boundaries.shape:
        raise ValueError(f"image: expected size {boundaries.shape[::-1]}, got {image.shape[1::-1]}")
    out = _base_image(image, boundaries)
    non_boundary, occluding = binarise(boundaries, occlusions, params)
    labels = ranking.labels

    for c in ranking.candidates:  # every candidate outlined; the one grasped is filled below
        mask = (labels == c.label).astype(np.uint8)
        contours, _ = cv2.findContours(mask, cv2.RETR_EXTERNAL, cv2.CHAIN_APPROX_SIMPLE)
        cv2.drawContours(out, contours, -1, OTHER_RGB, 1)
    if mark == "ranking":
        g, best = ranking.grasp, (ranking.candidates[0].label if ranking.candidates else None)
        mark = None if g is None else PickMark(replace(g, method=""))  # detect's label names no rule
    else:
        best = None if mark is None else mark.candidate_label
    if best is not None:
        mask = labels == best
        out[mask] = (0.55 * out[mask] + 0.45 * np.array(BEST_RGB)).astype(np.uint8)
        contours, _ = cv2.findContours(mask.astype(np.uint8), cv2.RETR_EXTERNAL, cv2.CHAIN_APPROX_SIMPLE)
        cv2.drawContours(out, contours, -1, BEST_RGB, 2)
    out[~non_boundary] = BOUNDARY_RGB
    out[occluding] = OCCLUDING_RGB  # on top: with thick boundaries the occluding side lies inside them

    if mark is not None:
        _draw_mark(out, mark)
    return out


def _draw_mark(out: np.ndarray, mark: PickMark) -> None:
    """The cross along the grasp's axes (lengths = its extents), its point, score, angle and rule."""
    g = mark.grasp
    a = math.radians(g.angle_deg)
    ux, uy = math.cos(a), math.sin(a)  # major axis, image coordinates (v down)
    centre = np.array([g.u, g.v])
    for (dx, dy), length in (((ux, uy), g.major_px), ((-uy, ux), g.minor_px)):
        half = 0.5 * length * np.array([dx, dy])
        p0, p1 = np.round(centre - half).astype(int), np.round(centre + half).astype(int)
        cv2.line(out, tuple(int(v) for v in p0), tuple(int(v) for v in p1), GRASP_RGB, 2, cv2.LINE_AA)
    c = (round(g.u), round(g.v))
    cv2.circle(out, c, 5, GRASP_RGB, -1, cv2.LINE_AA)
    angle = g.angle_deg if mark.shown_angle_deg is None else mark.shown_angle_deg
    text = f"{g.score:.2f} {angle:.0f}deg" + (f" {g.method}" if g.method else "")
    width = cv2.getTextSize(text, cv2.FONT_HERSHEY_SIMPLEX, 0.45, 1)[0][0]
    org = (max(0, min(c[0] + 8, out.shape[1] - width - 2)), max(12, min(c[1] - 8, out.shape[0] - 4)))
    cv2.putText(out, text, org, cv2.FONT_HERSHEY_SIMPLEX, 0.45, (0, 0, 0), 3, cv2.LINE_AA)
    cv2.putText(out, text, org, cv2.FONT_HERSHEY_SIMPLEX, 0.45, (255, 255, 255), 1, cv2.LINE_AA)
