"""Where on a candidate a suction cup seals: its surface seen from above, from the depth map.

The ranking chooses the instance from the network's maps; it places the grasp at the candidate's
centroid (or inscribed centre), a point of the image. A suction cup does not seal on a point of
the image: it seals on a disc of the product's surface, and only where that disc lies on one
product, flat enough for the bellows and not too tilted. The camera's perspective makes the image
a poor judge of that disc. Close to the camera a 15 mm cup covers ten times more pixels than on
the bin floor, and a box's side faces take as much of the image as its top.

So, for the candidate the selection examines, the depth pixels around it become 3-D points and
are laid on a grid in the bin floor's plane (an orthographic height map, a few cells per cup
radius; the highest point of each cell is what the cup meets first, and a cell remembers which
candidate that point belongs to). Over the cup's disc at every cell:
- every cell must hold this candidate's surface (not another product; a hole in the depth is
  inpainted for its place, and at least half the disc must be measured);
- a plane fitted to the measured heights (least squares) must tilt at most `max_tilt_deg` from
  the floor and fit within `max_residual_mm` rms.
The cup goes to the sealable cell nearest the candidate's middle seen from above (near its
centre of mass, so that the press and the lift do not tip or peel it) among those at least
`min_clearance_mm` from any unsealable cell (and inside the reachable area, when given), and back
to the image as the candidate's pixel nearest to that point on the grid. A candidate without
such a cell gets None: `edge.ranking.selection` then tries the candidates that have one first.

Measured in the simulated cell (docs/simcell.md "Where the cup seals"); the rules in prose:
docs/hotpath.md "Where the cup seals".
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass, replace
from functools import cached_property
from typing import Protocol

import cv2
import numpy as np

from edge.ranking.result import Grasp
from edge.ranking.selection import Keep

# Grid cells per cup radius: enough to see a face's edge inside the cup, few enough to be fast.
# (5 cells scored SR .78 on the simulated cell's first 18 piles, 6 cells .83.)
_CELLS_PER_RADIUS = 6.0
# The least share of the cup's disc with measured depth for its plane to be trusted.
_MIN_MEASURED = 0.5
# A grasp point whose few pixels around lie on a surface steeper than this is on a product's side
# face: a cup coming down on it lands beside the product or on its top edge, never on the face.
SIDE_FACE_DEG = 60.0
_SIDE_FACE_PATCH = 2  # map pixels each way: a 5 x 5 patch


@dataclass(frozen=True)
class SuctionParams:
    """The cup and what its bellows tolerate ([suction] in the appliance's configuration)."""

    cup_radius_mm: float = 7.5
    max_tilt_deg: float = 30.0
    max_residual_mm: float = 1.0
    min_clearance_mm: float = 2.0  # the robot's and the calibration's error: a seal this far inside
    max_candidates: int = 10  # candidates examined per cycle before the plain order takes over

    def __post_init__(self) -> None:
        if not self.cup_radius_mm > 0:
            raise ValueError(f"cup_radius_mm = {self.cup_radius_mm}: expected a positive radius")
        if not 0 < self.max_tilt_deg < 90:
            raise ValueError(f"max_tilt_deg = {self.max_tilt_deg}: expected a value in (0, 90)")
        if not self.max_residual_mm > 0:
            raise ValueError(f"max_residual_mm = {self.max_residual_mm}: expected a positive value")
        if self.min_clearance_mm < 0:
            raise ValueError(f"min_clearance_mm = {self.min_clearance_mm}: expected a value >= 0")
        if self.max_candidates < 1:
            raise ValueError(f"max_candidates = {self.max_candidates}: expected at least 1")


class WindowMask(Protocol):
    """A bool mask at the ranking's map size read by windows (`mask[rows, cols]`): a NumPy
    array, or one that computes each window when asked (`edge.bin_model.stage.Reachable`)."""

    def __getitem__(self, key: tuple[slice, slice]) -> np.ndarray: ...


@dataclass(frozen=True)
class SealFit:
    """A sealable cup position on a candidate: map pixel (u, v), the disc's fitted plane (tilt
    from the floor, rms residual) and the clearance from the nearest unsealable position (mm)."""

    u: float
    v: float
    tilt_deg: float
    residual_mm: float
    clearance_mm: float
    beyond_picture: float = 0.0  # share of the disc beyond the picture's edge (`seal_fit` overhang)


class SurfacePoints:
    """The frame's depth as points in the bin floor's frame, at the ranking's map resolution.

    `depth_m` is the camera's z-depth (metres, NaN or 0 where the sensor has none), `camera_matrix`
    and `dist_coeffs` the camera's intrinsics at the depth map's size, `floor_normal` and
    `floor_offset_mm` the floor plane in the camera's frame (n . p = offset, p in mm).
    `map_shape` is the ranking's (h, w); each map pixel takes the depth of the depth pixel
    `cv2.resize` (nearest) gives it."""

    def __init__(
        self,
        depth_m: np.ndarray,
        camera_matrix: np.ndarray,
        dist_coeffs: np.ndarray | None,
        floor_normal: np.ndarray,
        floor_offset_mm: float,
        map_shape: tuple[int, int],
    ):
        h, w = map_shape
        dh, dw = depth_m.shape[:2]
        self.scale = (dw / w, dh / h)  # depth pixels per map pixel
        depth = cv2.resize(depth_m.astype(np.float32), (w, h), interpolation=cv2.INTER_NEAREST)
        self.depth_mm = np.where(np.isfinite(depth) & (depth > 0), depth * 1000.0, np.nan).astype(np.float32)
        self.camera_matrix = np.asarray(camera_matrix, np.float64)
        dist = None if dist_coeffs is None else np.asarray(dist_coeffs, np.float64).ravel()
        self.dist = None if dist is None or not dist.any() else dist
        normal = np.asarray(floor_normal, np.float64)
        normal = normal / np.linalg.norm(normal)
        offset = float(floor_offset_mm) / float(np.linalg.norm(floor_normal))
        if offset > 0:  # heights grow towards the camera (the origin is above the floor)
            normal, offset = -normal, -offset
        side = np.array([1.0, 0.0, 0.0]) if abs(normal[0]) < 0.9 else np.array([0.0, 1.0, 0.0])
        e1 = np.cross(normal, side)
        e1 /= np.linalg.norm(e1)
        self.frame = np.stack([e1, np.cross(normal, e1), normal], axis=-1)  # columns: along, along, up
        self.offset_mm = offset
        # a map pixel's size per mm of depth, along its longer side (a fixed-size model may resize
        # the frame by different factors across and down)
        k = self.camera_matrix
        self.mm_per_px_per_mm = max(self.scale[0] / float(k[0, 0]), self.scale[1] / float(k[1, 1]))

    def _rays(self, rows: slice, cols: slice) -> np.ndarray:
        """Normalised camera rays (x/z, y/z) of a window of map pixels, through the depth pixels
        their depth was sampled from (`cv2.resize`'s nearest neighbour: floor(i * scale))."""
        sx, sy = self.scale
        us = np.floor(np.arange(cols.start, cols.stop, dtype=np.float64) * sx)
        vs = np.floor(np.arange(rows.start, rows.stop, dtype=np.float64) * sy)
        uu, vv = np.meshgrid(us, vs)
        k = self.camera_matrix
        if self.dist is None:  # a pinhole: no iteration needed
            return np.stack([(uu - k[0, 2]) / k[0, 0], (vv - k[1, 2]) / k[1, 1]], axis=-1)
        pixels = np.stack([uu.ravel(), vv.ravel()], axis=-1).reshape(-1, 1, 2)
        return cv2.undistortPoints(pixels, k, self.dist).reshape(uu.shape + (2,))

    def window(self, rows: slice, cols: slice) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Floor-frame points (h x w x 3: along, along, height; mm) of a window of map pixels,
        whether each was measured, and each pixel's footprint (mm). A pixel without depth (a
        stereo camera's shadow beside an edge, a dropout) gets the depth inpainted from the
        measured pixels around it: it still places its label on the grid, but no plane is fitted
        through it."""
        depth = self.depth_mm[rows, cols]
        measured = np.isfinite(depth)
        if not measured.any():
            return np.full(depth.shape + (3,), np.nan), measured, np.full(depth.shape, np.nan)
        if not measured.all():
            holes = (~measured).astype(np.uint8)
            depth = cv2.inpaint(np.where(measured, depth, 0.0).astype(np.float32), holes, 3, cv2.INPAINT_NS)
        depth = depth.astype(np.float64)
        rays = self._rays(rows, cols)
        cam = np.stack([rays[..., 0] * depth, rays[..., 1] * depth, depth], axis=-1)
        points = cam @ self.frame
        points[..., 2] -= self.offset_mm
        return points, measured, depth * self.mm_per_px_per_mm

    def feet(self, rows: slice, cols: slice) -> np.ndarray:
        """(h, w, 2): for every map pixel of a window with measured depth, the depth-map pixel
        (u, v) of the floor point straight below its surface point (along the floor's normal);
        NaN without depth. A rule about the bin floor's outline (the walls' clearance, the
        region of interest) must judge a product by where it stands, not by its own pixel: a
        raised point is seen displaced from the floor point under it, away from the point below
        the camera, by height / (camera height - height) of its distance from there."""
        depth = self.depth_mm[rows, cols].astype(np.float64)
        rays = self._rays(rows, cols)
        cam = np.stack([rays[..., 0] * depth, rays[..., 1] * depth, depth], axis=-1)
        up = self.frame[:, 2]
        foot = cam - (cam @ up - self.offset_mm)[..., None] * up
        k = self.camera_matrix
        if self.dist is None:
            x, y, z = foot[..., 0], foot[..., 1], foot[..., 2]
            return np.stack([k[0, 0] * x / z + k[0, 2], k[1, 1] * y / z + k[1, 2]], axis=-1)
        out = np.full(depth.shape + (2,), np.nan)
        known = np.isfinite(depth)
        if known.any():
            none = np.zeros(3)
            pixels, _ = cv2.projectPoints(foot[known].reshape(-1, 1, 3), none, none, k, self.dist)
            out[known] = pixels.reshape(-1, 2)
        return out

    def map_pixels(self, points: np.ndarray) -> np.ndarray:
        """Map pixels (..., 2: u, v) where floor-frame points (..., 3; mm) are seen: the inverse
        of `window`, so that a position of the floor frame can be tested against the picture."""
        lifted = np.asarray(points, np.float64) + np.array([0.0, 0.0, self.offset_mm])
        cam = lifted @ self.frame.T
        z = np.where(cam[..., 2] > 1e-6, cam[..., 2], np.nan)  # behind the camera: nowhere
        k = self.camera_matrix
        if self.dist is None:
            u, v = k[0, 0] * cam[..., 0] / z + k[0, 2], k[1, 1] * cam[..., 1] / z + k[1, 2]
        else:
            flat = np.stack([cam[..., 0] / z, cam[..., 1] / z, np.ones_like(z)], axis=-1).reshape(-1, 1, 3)
            known = np.isfinite(flat).all(axis=-1).ravel()
            uv = np.full((flat.shape[0], 2), np.nan)
            if known.any():
                none = np.zeros(3)
                uv[known] = cv2.projectPoints(flat[known], none, none, k, self.dist)[0].reshape(-1, 2)
            u, v = uv[:, 0].reshape(z.shape), uv[:, 1].reshape(z.shape)
        return np.stack([u / self.scale[0], v / self.scale[1]], axis=-1)

    @staticmethod
    def floor_in_camera(
        robot_from_camera: np.ndarray, plane_normal: np.ndarray, plane_offset_mm: float
    ) -> tuple[np.ndarray, float]:
        """The floor plane n . p = offset given in the robot's frame, expressed in the camera's."""
        t = np.asarray(robot_from_camera, np.float64)
        rotation, origin = t[:3, :3], t[:3, 3]
        normal = np.asarray(plane_normal, np.float64)
        return rotation.T @ normal, float(plane_offset_mm) - float(normal @ origin)


@dataclass
class _TopView:
    """A candidate's neighbourhood seen from above: per grid cell of `cell` mm (origin `x0`,
    `y0` in the floor frame), the highest point's height, its owner (label; -1 between two),
    whether it was measured, and whether the cup's centre may go there (a pixel of its own,
    reachable)."""

    top: np.ndarray
    owner: np.ndarray
    seen: np.ndarray
    centre_ok: np.ndarray
    cell: float
    x0: float
    y0: float


def _top_view(
    px: np.ndarray,
    py: np.ndarray,
    ph: np.ndarray,
    lab: np.ndarray,
    measured: np.ndarray,
    go: np.ndarray,
    mine: np.ndarray,
    cell: float,
    margin: float,
) -> _TopView | None:
    """Lay the window's points on the grid around the candidate's points `mine`, `margin` mm
    wide; None for a candidate spanning metres (not a product)."""
    gx0, gy0 = float(px[mine].min()) - margin, float(py[mine].min()) - margin
    gw = int(math.ceil((float(px[mine].max()) - gx0 + margin) / cell)) + 1
    gh = int(math.ceil((float(py[mine].max()) - gy0 + margin) / cell)) + 1
    if gw * gh > 4_000_000:
        return None
    known = np.isfinite(ph)
    gi = np.floor((px[known] - gx0) / cell).astype(np.int64)
    gj = np.floor((py[known] - gy0) / cell).astype(np.int64)
    h, lk, mk, gk = ph[known], lab[known], measured[known], go[known]
    inside = (gi >= 0) & (gi < gw) & (gj >= 0) & (gj < gh)
    flat, h, lk, mk, gk = (gj * gw + gi)[inside], h[inside], lk[inside], mk[inside], gk[inside]
    order = np.lexsort((h, flat))  # per cell, the highest point last
    last = order[np.r_[flat[order][1:] != flat[order][:-1], True]]
    top = np.full(gw * gh, np.nan)
    owner = np.zeros(gw * gh, np.int64)
    seen = np.zeros(gw * gh, bool)
    centre_ok = np.zeros(gw * gh, bool)  # a filled gap stays unreachable: it has no pixel of its own
    top[flat[last]], owner[flat[last]], seen[flat[last]], centre_ok[flat[last]] = (
        h[last],
        lk[last],
        mk[last],
        gk[last],
    )
    top, owner, seen = _close_gaps(top.reshape(gh, gw), owner.reshape(gh, gw), seen.reshape(gh, gw))
    return _TopView(top, owner, seen, centre_ok.reshape(gh, gw), cell, gx0, gy0)


def _disc_planes(
    top: np.ndarray, fit: np.ndarray, cell: float, shape: np.ndarray
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Least-squares planes through the heights of the `fit` cells under the disc `shape` at
    every cell: (share of the disc with such a height, rms residual in mm, tilt in degrees)."""
    gh, gw = top.shape
    jj, ii = np.mgrid[0:gh, 0:gw].astype(np.float64)
    x, y = (ii - ii.mean()) * cell, (jj - jj.mean()) * cell  # centred: the moments keep precision
    z = top - float(np.median(top[fit])) if fit.any() else np.zeros_like(top)
    terms = (np.ones_like(x), x, y, z, x * x, y * y, x * y, x * z, y * z, z * z)
    sums = _disc_sums(np.stack([np.where(fit, t, 0.0) for t in terms], axis=-1), shape)
    count = np.maximum(sums[..., 0], 1e-9)
    weight = sums[..., 0] / float(shape.sum())
    mx, my, mz, mxx, myy, mxy, mxz, myz, mzz = (sums[..., k] / count for k in range(1, 10))
    cxx, cyy, cxy = mxx - mx * mx, myy - my * my, mxy - mx * my
    cxz, cyz, czz = mxz - mx * mz, myz - my * mz, mzz - mz * mz
    det = cxx * cyy - cxy * cxy
    det = np.where(det > 1e-9, det, 1e-9)
    slope_x = (cxz * cyy - cyz * cxy) / det
    slope_y = (cyz * cxx - cxz * cxy) / det
    residual = np.sqrt(np.maximum(czz - slope_x * cxz - slope_y * cyz, 0.0))
    tilt = np.degrees(np.arctan(np.hypot(slope_x, slope_y)))
    return weight, residual, tilt


def seal_fit(
    points: SurfacePoints,
    labels: np.ndarray,
    label: int,
    params: SuctionParams,
    reachable: WindowMask | None = None,
    overhang: bool = False,
) -> SealFit | None:
    """The best sealable cup position on candidate `label` of `labels` (map pixels), or None.

    `reachable` (map pixels, bool), when given, is where the cup's centre may go (the bin
    model's interior clear of the walls, off the floor): a product lying against a wall is then
    held by its far side instead of not at all.

    `overhang`: the disc may reach beyond the picture's edge, where nothing is seen (still at
    least half of it measured, level and on this candidate, its centre on a pixel of its own).
    A product cut by the picture's edge often shows a strip of its top narrower than the cup:
    no disc fits inside what is seen, yet its top goes on beyond the edge, and so does its
    centre of mass. So the cup goes as far beyond the edge as the rules allow, towards that
    centre, not to the seen part's middle. Only for candidates without a place otherwise
    (`SuctionPlacer.at_picture_edge`): the unseen half of the disc is a bet."""
    ys, xs = np.nonzero(labels == label)
    if len(xs) == 0:
        return None
    y0, x0 = int(ys.min()), int(xs.min())
    rows, cols = slice(y0, int(ys.max()) + 1), slice(x0, int(xs.max()) + 1)
    pts, measured, footprint_mm = points.window(rows, cols)
    lab = labels[rows, cols]
    mine = (lab == label) & np.isfinite(pts[..., 2])
    if not (mine & measured).any():
        return None
    px, py, ph = pts[..., 0], pts[..., 1], pts[..., 2]
    radius = params.cup_radius_mm
    footprint = float(np.median(footprint_mm[mine]))
    cell = max(radius / _CELLS_PER_RADIUS, footprint)  # at least one pixel per cell, or the grid has holes
    go = np.ones(lab.shape, bool) if reachable is None else reachable[rows, cols]
    margin = 2 * radius if overhang else radius  # room for a disc centred at the picture's edge
    view = _top_view(px, py, ph, lab, measured, go, mine, cell, margin)
    if view is None:
        return None
    on = np.isfinite(view.top) & (view.owner == label)
    fit = on & view.seen  # the plane is fitted through measured heights only
    r_cells = max(1, math.ceil(radius / cell - 1e-6))  # never a smaller disc than the cup
    shape = cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (2 * r_cells + 1, 2 * r_cells + 1))
    weight, residual, tilt = _disc_planes(view.top, fit, cell, shape)
    beyond = _beyond_picture(view, points, labels.shape, on) if overhang else np.zeros_like(on)
    # the whole disc on this candidate's surface (outside the grid is not), or beyond the picture
    surface = (on | beyond).astype(np.uint8)
    whole = cv2.erode(surface, shape, borderType=cv2.BORDER_CONSTANT, borderValue=0) > 0
    sealable = (
        whole
        & (weight >= _MIN_MEASURED)
        & (residual <= params.max_residual_mm)
        & (tilt <= params.max_tilt_deg)
    )
    if not sealable.any():
        return None
    room = (sealable | beyond).astype(np.uint8)  # the picture's edge is no product's edge
    inward = cv2.distanceTransform(np.pad(room, 1), cv2.DIST_L2, 5)[1:-1, 1:-1] * cell
    centre_ok = view.centre_ok
    if overhang:  # a cell next to a pixel of its own: the pixel is published (a cell of the edge)
        near_own = cv2.dilate(centre_ok.astype(np.uint8), np.ones((3, 3), np.uint8)) > 0
        centre_ok = centre_ok | (on & near_own)
    allowed = sealable & (inward >= params.min_clearance_mm) & centre_ok
    if not allowed.any():
        return None
    # The allowed position nearest the product's middle seen from above (its cells' mean): the
    # press and the lift act near the centre of mass, so a long product does not see-saw under
    # the cup and a heavy one does not peel off it. Overhanging, the centre of mass is beyond
    # the edge: the position reaching furthest beyond it first, then the nearest the middle.
    jj, ii = np.nonzero(on)
    centre_j, centre_i = jj.mean(), ii.mean()
    aj, ai = np.nonzero(allowed)
    to_middle = (aj - centre_j) ** 2 + (ai - centre_i) ** 2
    if overhang:  # the disc's share beyond the picture, at every allowed cell
        out = _disc_sums(beyond[..., None].astype(np.float64), shape)[..., 0][aj, ai] / float(shape.sum())
        k = int(np.lexsort((to_middle, -np.round(out, 2)))[0])
        beyond_share = float(out[k])
    else:
        k, beyond_share = int(np.argmin(to_middle)), 0.0
    j, i = int(aj[k]), int(ai[k])
    cx, cy = view.x0 + (i + 0.5) * cell, view.y0 + (j + 0.5) * cell
    # A measured pixel: an inpainted one's position is a guess, and its own line of sight may meet
    # the floor beside the product (the robot follows the published pixel's line of sight).
    near = np.where(mine & measured, (px - cx) ** 2 + (py - cy) ** 2, np.inf)
    v, u = np.unravel_index(int(np.argmin(near)), near.shape)
    return SealFit(
        float(u + x0),
        float(v + y0),
        float(tilt[j, i]),
        float(residual[j, i]),
        float(inward[j, i]),
        beyond_share,
    )


def _beyond_picture(
    view: _TopView, points: SurfacePoints, map_shape: tuple[int, int], on: np.ndarray
) -> np.ndarray:
    """Grid cells whose centre, at the height of the candidate's surface (the median of its
    cells), is seen outside the map: the floor frame's part that the picture does not show."""
    gh, gw = view.top.shape
    jj, ii = np.mgrid[0:gh, 0:gw].astype(np.float64)
    height = float(np.median(view.top[on])) if on.any() else 0.0
    grid = np.stack([view.x0 + (ii + 0.5) * view.cell, view.y0 + (jj + 0.5) * view.cell,
                     np.full(ii.shape, height)], axis=-1)  # fmt: skip
    uv = points.map_pixels(grid)
    h, w = map_shape
    inside = (uv[..., 0] >= -0.5) & (uv[..., 0] < w - 0.5) & (uv[..., 1] >= -0.5) & (uv[..., 1] < h - 0.5)
    return ~inside & ~view.seen


class SuctionPlacer:
    """`edge.ranking.selection.Place` for one frame: each candidate's seal fit, computed once
    when the selection first asks for it, for at most `params.max_candidates` candidates (the
    rest get None, and the selection's plain order decides among them). The depth becomes points,
    and `make_reachable` (when given) the map pixels where the cup's centre may go (see
    `seal_fit`), only when a candidate is first examined."""

    def __init__(
        self,
        make_points: Callable[[], SurfacePoints],
        labels: np.ndarray,
        params: SuctionParams,
        make_reachable: Callable[[], WindowMask] | None = None,
    ):
        self._make_points = make_points
        self._make_reachable = make_reachable
        self.labels = labels
        self.params = params
        self.fits: dict[int, SealFit | None] = {}
        self.edge_fits: dict[int, SealFit | None] = {}

    def fit(self, label: int) -> SealFit | None:
        if label not in self.fits:
            if len(self.fits) >= self.params.max_candidates:
                return None
            self.fits[label] = seal_fit(self.points, self.labels, label, self.params, self.reachable)
        return self.fits[label]

    def edge_fit(self, label: int) -> SealFit | None:
        """The candidate's seal overhanging the picture's edge (`seal_fit`'s `overhang`), for
        the candidates `fit` examined and found no place on."""
        if label not in self.fits or self.fits[label] is not None:
            return None
        if label not in self.edge_fits:
            self.edge_fits[label] = seal_fit(
                self.points, self.labels, label, self.params, self.reachable, overhang=True
            )
        return self.edge_fits[label]

    @cached_property
    def points(self) -> SurfacePoints:
        """The frame's depth as floor-frame points, made when first needed."""
        return self._make_points()

    @cached_property
    def reachable(self) -> WindowMask | None:
        """Where the cup's centre may go (map pixels), made when a candidate is first fitted."""
        return None if self._make_reachable is None else self._make_reachable()

    def __call__(self, option: Grasp, label: int) -> Grasp | None:
        fit = self.fit(label)
        return None if fit is None else replace(option, u=fit.u, v=fit.v, method="suction")

    def at_picture_edge(self, option: Grasp, label: int) -> Grasp | None:
        """The second `Place` (`edge.ranking.selection.select_grasp`'s `place_at_edge`): where no
        examined candidate has a place inside the picture, a seal reaching beyond its edge on a
        product the edge cuts, before any point the seal check could not place at all."""
        fit = self.edge_fit(label)
        return None if fit is None else replace(option, u=fit.u, v=fit.v, method="suction_edge")

    def surface_tilt_deg(self, u: float, v: float, label: int | None = None) -> float | None:
        """The tilt from the floor of candidate `label`'s surface at map pixel (u, v): the plane
        through its measured points among the 5 x 5 pixels around (their smallest principal
        axis, so a vertical face reads 90, not an ill-posed height fit). Only the candidate's own
        pixels, so a thin product's neighbouring floor does not read as a side face. None off
        the map or with under 6 such points."""
        h, w = self.labels.shape
        col, row, r = int(round(u)), int(round(v)), _SIDE_FACE_PATCH
        if not (0 <= row < h and 0 <= col < w):
            return None
        rows, cols = slice(max(0, row - r), min(h, row + r + 1)), slice(max(0, col - r), min(w, col + r + 1))
        pts, measured, _ = self.points.window(rows, cols)
        if label is not None:
            measured = measured & (self.labels[rows, cols] == label)
        p = pts[measured]
        if len(p) < 6:
            return None
        _, _, axes = np.linalg.svd(p - p.mean(axis=0), full_matrices=False)
        return float(np.degrees(np.arccos(min(1.0, abs(float(axes[2, 2]))))))

    def off_side_faces(self, keep: Keep | None, scale: tuple[float, float]) -> Keep:
        """`keep` (camera pixels, see `edge.ranking.selection.Keep`) that also refuses a point on
        a side face (steeper than SIDE_FACE_DEG). A candidate the seal check found no place on
        keeps the ranking's own point, and at a box's edge in a tilted view that point may lie on
        the box's side: the cup followed the line of sight to it and came down beside the box, on
        the floor (the simulated cell's two floor picks with the seal check)."""
        sx, sy = scale

        def kept(u: float, v: float, label: int) -> bool:
            if keep is not None and not keep(u, v, label):
                return False
            tilt = self.surface_tilt_deg(u / sx, v / sy, label)
            return tilt is None or tilt <= SIDE_FACE_DEG

        return kept


def _disc_sums(stack: np.ndarray, shape: np.ndarray) -> np.ndarray:
    """Sums of `stack` (H x W x C) over the disc `shape` (a (2r+1)-square 0/1 kernel) centred on
    every cell, zero outside: one horizontal running sum per row of the disc, all channels at
    once (a 13x13 `filter2D` per channel cost 3 ms; this costs a fraction of one)."""
    h, w, _ = stack.shape
    r = shape.shape[0] // 2
    padded = np.pad(stack, ((r, r), (r + 1, r), (0, 0)))
    running = np.cumsum(padded, axis=1)
    out = np.zeros_like(stack)
    for dy in range(-r, r + 1):
        half = int(shape[dy + r].sum()) // 2  # the disc's half-width on this row
        rows = running[r + dy : r + dy + h]
        out += rows[:, r + 1 + half : r + 1 + half + w] - rows[:, r - half : r - half + w]
    return out


def _close_gaps(
    top: np.ndarray, owner: np.ndarray, seen: np.ndarray
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Fill grid cells that no pixel fell into (a sparse splat, not a hole: every pixel of a
    hole was inpainted) from their 3x3 neighbours: the highest neighbour's height, and an owner
    only where every known neighbour agrees on it (-1 between two products, so that a cup's disc
    never grows across a seam through a filled cell)."""
    empty = ~np.isfinite(top)
    if not empty.any():
        return top, owner, seen
    kernel = np.ones((3, 3), np.uint8)
    order = np.argsort(np.where(empty, -np.inf, top), axis=None)  # cell index by height rank
    rank = np.empty(order.size, np.int64)
    rank[order] = np.arange(order.size)
    rank = np.where(empty.ravel(), -1, rank).reshape(top.shape)
    best = cv2.dilate(rank.astype(np.float32), kernel).astype(np.int64)
    fill = empty & (best >= 0)
    source = order[best[fill]]
    most = cv2.dilate(np.where(empty, -1, owner).astype(np.float32), kernel)
    least = cv2.erode(np.where(empty, np.float32(2**24), owner).astype(np.float32), kernel)
    top, owner, seen = top.copy(), owner.copy(), seen.copy()
    top[fill], seen[fill] = top.ravel()[source], False
    owner[fill] = np.where(most[fill] == least[fill], most[fill], -1).astype(np.int64)
    return top, owner, seen
