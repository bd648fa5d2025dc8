"""The bin step of every cycle: locate the bin, mark its floor, measure the fill level, and give
the grasp planner the rule that keeps grasps off the floor and away from the walls."""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass, field, replace

import cv2
import numpy as np

from edge.bin_model.fill import EmptyBinTracker, FillLevel, fill_level
from edge.bin_model.floor import floor_from_height, floor_from_reference, height_above_floor_mm
from edge.bin_model.locate import IDENTITY, BinPose, RimTemplate, locate_bin, rim_view
from edge.bin_model.model import BinModel, BinModelError, interior_mask

MIN_RIM_IN_VIEW = 0.01  # of the frame: the rim band beyond the interior that tracking registers on


class BinMissing(Exception):
    """No bin where one should be (the cycle fails with `bin_missing`)."""


@dataclass(frozen=True)
class BinSettings:
    """The [bin] section's values the stage uses (edge.config.BinSection)."""

    floor_tolerance_mm: float = 4.0
    max_floor_share: float = 0.5
    wall_clearance_mm: float = 15.0
    wall_clearance_px: float = 10.0
    empty_below_percent: float = 2.0
    empty_max_region_percent: float = 0.1
    empty_cycles: int = 2
    min_correlation: float = 0.5
    max_shift_px: float = 80.0
    track: bool = True


@dataclass
class BinView:
    """The bin as this cycle sees it (camera pixels)."""

    pose: BinPose
    interior: np.ndarray  # N x 2, the commissioned interior moved with the bin
    floor: np.ndarray = field(repr=False)  # H x W bool
    fill: FillLevel
    empty: bool
    _floor_at: dict[tuple[int, int], np.ndarray] = field(default_factory=dict, init=False, repr=False)

    def floor_at(self, map_shape: tuple[int, int]) -> np.ndarray:
        """The floor mask at the ranking's map size (h, w), nearest neighbour, made once per size:
        the bin's rules, the seal check's reachable area and the regions of depth alone read it."""
        key = (int(map_shape[0]), int(map_shape[1]))
        if key not in self._floor_at:
            floor = cv2.resize(self.floor.astype(np.uint8), (key[1], key[0]), interpolation=cv2.INTER_NEAREST)
            self._floor_at[key] = floor > 0
        return self._floor_at[key]

    def to_dict(self) -> dict:
        height = self.fill.mean_height_mm
        return {
            **self.pose.to_dict(),
            "fill_percent": round(self.fill.percent, 1),
            "mean_height_mm": None if height is None else round(height, 1),
            "empty": self.empty,
        }

    def keep(
        self,
        labels: np.ndarray | None,
        scale: tuple[float, float],
        settings: BinSettings,
        mm_per_px: Callable[[float, float], float] | None = None,
        foot: Callable[[float, float], tuple[float, float]] | None = None,
    ) -> Callable[[float, float, int], bool]:
        """The planner's filter `keep(u, v, label)` (camera pixels; label in `labels`, the
        ranking's label image at map scale `scale`): False for a candidate mostly on the floor,
        for a grasp point that itself lies on the floor (a product's edge: the cup would land
        beside it), for a grasp outside the interior or closer to a wall than the clearance (mm
        through `mm_per_px` when calibrated, else px). With `foot` (camera pixels to the floor
        point under them, `edge.ranking.floor_feet`), the interior and the walls judge where the
        point stands, not where it is seen."""
        floor_share = None
        if labels is not None:
            floor = self.floor_at(labels.shape)
            n = int(labels.max()) + 1
            area = np.bincount(labels.ravel(), minlength=n)
            on_floor = np.bincount(labels.ravel(), weights=floor.ravel(), minlength=n)
            floor_share = on_floor / np.maximum(area, 1)
        polygon = self.interior.astype(np.float32)

        def keep(u: float, v: float, label: int) -> bool:
            known = floor_share is not None and 0 < label < len(floor_share)
            if known and floor_share[label] > settings.max_floor_share:
                return False
            x, y = int(round(u)), int(round(v))
            if 0 <= y < self.floor.shape[0] and 0 <= x < self.floor.shape[1] and self.floor[y, x]:
                return False
            fu, fv = foot(u, v) if foot is not None else (u, v)
            inside_px = cv2.pointPolygonTest(polygon, (float(fu), float(fv)), True)
            if mm_per_px is None:
                clearance_px = settings.wall_clearance_px
            else:
                clearance_px = settings.wall_clearance_mm / max(float(mm_per_px(fu, fv)), 1e-9)
            return inside_px >= clearance_px

        return keep

    def raised_masks(self, map_shape: tuple[int, int]) -> tuple[np.ndarray, np.ndarray]:
        """(off the floor, inside the interior) at the ranking's map size (h, w): where
        `edge.ranking.raised` looks for products by depth alone."""
        h, w = self.floor.shape
        mh, mw = int(map_shape[0]), int(map_shape[1])
        scaled = np.asarray(self.interior, np.float64) * np.array([mw / w, mh / h])
        return ~self.floor_at((mh, mw)), interior_mask(scaled, (mh, mw))

    def reachable(
        self,
        map_shape: tuple[int, int],
        settings: BinSettings,
        mm_per_px: Callable[[float, float], float] | None = None,
        feet: Callable[[slice, slice], np.ndarray] | None = None,
    ) -> Reachable:
        """Where a grasp may go, at the ranking's map size (h, w): inside the interior by the wall
        clearance, off the floor. The seal check (`edge.ranking.suction`) places the cup inside
        it; `keep` still judges each point. Calibrated, the clearance in pixels is the largest
        over the interior's corners and centre (the image scale varies across a tilted view).
        The distance is taken on a canvas wider than the frame by the clearance, so a wall just
        outside the picture (an interior larger than the view) still counts and the frame's own
        border does not. `feet` (a window of map pixels to their feet in camera pixels, NaN where
        unknown; `edge.ranking.floor_feet.FloorFeet.window`): the walls judge each pixel where
        its point stands on the floor; a pixel without one is judged where it is seen."""
        h, w = self.floor.shape
        if mm_per_px is None:
            clearance_px = settings.wall_clearance_px
        else:
            clearance_px = settings.wall_clearance_mm / _smallest_scale_in_view(
                self.interior, (h, w), mm_per_px
            )
        # A canvas edge (zeros) at most one frame beyond the picture: a clearance larger than that
        # leaves nothing reachable rather than ignoring walls beyond the canvas.
        pad = int(min(math.ceil(clearance_px), max(h, w))) + 1
        inside = _polygon_canvas(self.interior, (h, w), pad)
        clear = cv2.distanceTransform(inside, cv2.DIST_L2, 5) >= clearance_px
        off_floor = ~self.floor_at(map_shape)
        return Reachable(clear, pad, (h, w), off_floor, feet, (self.interior, clearance_px))


class Reachable:
    """Where the cup's centre may go (`BinView.reachable`), read by windows of the ranking's map
    (`reachable[rows, cols]`, a bool array), so that the feet are computed only where a candidate
    is examined."""

    def __init__(
        self,
        clear: np.ndarray,
        pad: int,
        frame_shape: tuple[int, int],
        off_floor: np.ndarray,
        feet: Callable[[slice, slice], np.ndarray] | None,
        walls: tuple[np.ndarray, float] | None = None,
    ):
        """`clear`: the wall-clearance canvas of a frame of `frame_shape` (h, w) padded by `pad`;
        `off_floor`: not floor, at the map's size (`BinView.floor_at`), which is this mask's."""
        h, w = frame_shape
        self._clear, self._pad, self._feet = clear, pad, feet
        self._walls = walls  # (interior polygon, clearance px): feet beyond the canvas, measured exactly
        self.shape = (int(off_floor.shape[0]), int(off_floor.shape[1]))
        size = (self.shape[1], self.shape[0])
        self._off_floor = off_floor
        in_frame = clear[pad : pad + h, pad : pad + w].astype(np.uint8)  # nearest: the same pixels
        self._own = (cv2.resize(in_frame, size, interpolation=cv2.INTER_NEAREST) > 0) & self._off_floor

    def __getitem__(self, key: tuple[slice, slice]) -> np.ndarray:
        rows, cols = key
        if not (isinstance(rows, slice) and isinstance(cols, slice)):  # a pixel: its 1 x 1 window
            rows, cols = (k if isinstance(k, slice) else slice(int(k), int(k) + 1) for k in key)
            return self[rows, cols].reshape(())
        own = self._own[rows, cols]
        if self._feet is None:
            return own
        feet = self._feet(rows, cols)
        known = np.isfinite(feet).all(axis=-1)
        col = np.floor(np.where(known, feet[..., 0], 0.0) + 0.5).astype(np.int64) + self._pad
        row = np.floor(np.where(known, feet[..., 1], 0.0) + 0.5).astype(np.int64) + self._pad
        ch, cw = self._clear.shape
        on_canvas = known & (row >= 0) & (row < ch) & (col >= 0) & (col < cw)
        at_foot = np.zeros(own.shape, bool)
        at_foot[on_canvas] = self._clear[row[on_canvas], col[on_canvas]]
        beyond = known & ~on_canvas  # a bin larger than the view, seen steeply: a foot off the canvas
        if beyond.any() and self._walls is not None:
            polygon, clearance_px = self._walls
            poly = np.asarray(polygon, np.float32)
            inside = [cv2.pointPolygonTest(poly, (float(u), float(v)), True) for u, v in feet[beyond]]
            at_foot[beyond] = np.asarray(inside) >= clearance_px
        return np.where(known, at_foot & self._off_floor[rows, cols], own)

    def mask(self) -> np.ndarray:
        """The whole map (what a test or a picture wants; the seal check reads windows)."""
        return self[0 : self.shape[0], 0 : self.shape[1]]


def _polygon_canvas(polygon: np.ndarray, shape: tuple[int, int], pad: int) -> np.ndarray:
    """The polygon (camera px) filled on the frame widened by `pad` px on every side (uint8),
    its outermost ring left empty: distances and erosions measured on it see the walls that lie
    just outside the picture and not the picture's own edge."""
    h, w = shape
    canvas = interior_mask(polygon + pad, (h + 2 * pad, w + 2 * pad)).astype(np.uint8)
    canvas[[0, -1], :] = 0
    canvas[:, [0, -1]] = 0
    return canvas


def _smallest_scale_in_view(
    polygon: np.ndarray, shape: tuple[int, int], mm_per_px: Callable[[float, float], float]
) -> float:
    """The smallest mm per pixel over the interior's part in the picture (its corners moved into
    the frame, and its centre there): the clearance in pixels is largest where a pixel is
    smallest. Corners outside the picture are not asked: past the horizon a pixel's ray misses
    the floor, and a lens model does not hold far outside the view it was calibrated on."""
    h, w = shape
    ys, xs = np.nonzero(interior_mask(polygon, shape))
    probes = np.clip(polygon, [0.0, 0.0], [w - 1.0, h - 1.0])
    if len(xs):
        probes = np.vstack([probes, [[float(xs.mean()), float(ys.mean())]]])
    scales = []
    for u, v in probes:
        try:
            scale = float(mm_per_px(float(u), float(v)))
        except ValueError:  # edge.geometry.GeometryError: this pixel's ray misses the pick plane
            continue
        if math.isfinite(scale) and scale > 0:
            scales.append(scale)
    if not scales:
        raise ValueError("bin: no pixel of the interior in view has a scale on the pick plane (calibration?)")
    return max(min(scales), 1e-9)


def _window(polygon: np.ndarray, shape: tuple[int, int], margin: int = 4) -> tuple[slice, slice]:
    """The rows and columns around `polygon` (camera pixels), `margin` px wider, inside the frame:
    the per-cycle work on holes and regions needs nothing outside the bin."""
    h, w = shape
    x0, y0 = np.floor(polygon.min(axis=0)).astype(int) - margin
    x1, y1 = np.ceil(polygon.max(axis=0)).astype(int) + margin + 1
    return slice(max(0, y0), min(h, y1)), slice(max(0, x0), min(w, x1))


class BinStage:
    """One commissioned bin, observed every cycle (`observe`)."""

    def __init__(self, model: BinModel, settings: BinSettings):
        self.model = model
        self.settings = settings
        self.tracker = EmptyBinTracker(
            settings.empty_cycles, settings.empty_below_percent, settings.empty_max_region_percent
        )
        self._rim = RimTemplate.of(model.reference, model.interior) if settings.track else None
        if self._rim is not None:
            outside = ~interior_mask(model.interior, model.reference.shape)
            rim_in_view = float(((self._rim.mask > 0) & outside).mean())  # the band beyond the floor
            if rim_in_view < MIN_RIM_IN_VIEW:
                raise BinModelError(
                    "bin: track = true, but the commissioned bin's rim is out of the picture (the band "
                    f"just outside its interior covers {100 * rim_in_view:.1f} % of the frame, at least "
                    f"{100 * MIN_RIM_IN_VIEW:.0f} % needed): nothing to follow the bin by. Set [bin] "
                    "track = false for a bin that does not move, or commission with the rim in view."
                )
        by_height = settings.track and model.rim_reference is not None and model.floor is not None
        self._rim_height = RimTemplate.of(model.rim_reference, model.interior) if by_height else None
        self.last: BinView | None = None

    def observe(self, rgb: np.ndarray, depth_m: np.ndarray | None) -> BinView:
        """This frame's bin; BinMissing when it is not found."""
        gray = cv2.cvtColor(rgb, cv2.COLOR_RGB2GRAY) if rgb.ndim == 3 else rgb
        reference = self.model.reference
        if gray.shape != reference.shape:
            raise BinMissing(
                f"the frame is {gray.shape[1]}x{gray.shape[0]}, the bin model was recorded at "
                f"{reference.shape[1]}x{reference.shape[0]}: record it again (binpick bin)"
            )
        height = None
        if depth_m is not None and self.model.floor is not None:
            height = height_above_floor_mm(depth_m, self.model.floor)
        pose = IDENTITY
        if self.settings.track:
            pose = self._locate(gray, height)
        interior = pose.apply(self.model.interior)
        inside = interior_mask(interior, gray.shape)
        window = _window(interior, gray.shape)

        def looks_like_floor(region: tuple[slice, slice]) -> np.ndarray:
            """The pixels of `region` that still look like the empty bin, its reference registered."""
            size = (gray.shape[1], gray.shape[0])
            aligned = cv2.warpAffine(reference, pose.warp, size, flags=cv2.INTER_LINEAR)
            return floor_from_reference(gray[region], aligned[region])

        if height is not None:
            # where the depth has holes, only the picture tells a black product from a dropout
            holes = not np.isfinite(height[window]).all()
            looks = looks_like_floor(window) if holes else None
            floor = floor_from_height(
                height, self.settings.floor_tolerance_mm, within=window, looks_like_floor=looks
            )
        else:
            floor = looks_like_floor((slice(None), slice(None)))
        margin = max(2, round(0.01 * max(gray.shape)))  # 5 px at 512, 13 px at 1280
        core = cv2.erode(
            _polygon_canvas(interior, gray.shape, margin + 1), np.ones((2 * margin + 1,) * 2, np.uint8)
        )
        core = core[margin + 1 : margin + 1 + gray.shape[0], margin + 1 : margin + 1 + gray.shape[1]]
        fill = fill_level(inside, floor, height, within=window, core=core.astype(bool))
        view = BinView(pose, interior, floor, fill, self.tracker.update(fill))
        self.last = view
        return view

    def _locate(self, gray: np.ndarray, height: np.ndarray | None) -> BinPose:
        """The bin's pose: by the rim's height when the frame has depth and the model a rim
        reference (light-proof), else (or when that fails) by the rim's edges in the image.
        BinMissing when neither finds it."""
        settings, model = self.settings, self.model
        if height is not None and self._rim_height is not None:
            view = rim_view(height, model.rim_height_mm)
            found = locate_bin(model.rim_reference, model.interior, view, settings.min_correlation,
                               settings.max_shift_px, self._rim_height)  # fmt: skip
            if found is not None:
                return replace(found, source="depth")
        found = locate_bin(model.reference, model.interior, gray, settings.min_correlation,
                           settings.max_shift_px, self._rim)  # fmt: skip
        if found is None:
            raise BinMissing("no bin rim matches the commissioned one (moved too far, covered or absent)")
        return found
