"""Benchmark: where does the appliance's grasp land on real photos of bins? (issue 19)

For each frame of the real-bin set (benchmarks/data/bins/manifest.toml: source, licence and our
annotation per frame; the image files live outside git, in the workspace's shared/data/bins/), the
grasp of each rule is classified by the frame's annotation as on an object, on the floor, outside
the bin, or unknown (no depth measured around it), and where the frame has depth, the grasp
surface's height percentile in the pile (the share of the interior's measured pixels at or below
its height above the floor; 100 = the highest point).

Rules, one row each per frame:
- ``appliance``: the embedded default's own path, as edge/supervisor.py runs it: the bundled model
  on ONNX Runtime (edge.inference.predictor.Predictor with the config's [inference]), the depth
  cue stage of the config, the ranking (Predictor.rank, [ranking] params) and
  edge.ranking.plan_grasp with the config's prefer_occluding_side and the ROI the supervisor
  would use: none, because the embedded default runs in pixel mode (no calibration).
- ``highest point``: the highest surface point inside the annotated interior (depth only; the
  depth is 5x5-median filtered so one speckle cannot win). The trivial depth rule the issue
  compares against.
- ``appliance + bin model``: the same with `[bin]` on (edge/bin_model, docs/bin.md). The bin is
  commissioned from the frame itself with the annotated interior (the sources have no empty-bin
  frame, so the floor is the depth plane fitted on the interior's farthest 10 % of surfaces, and
  the bin is not tracked); then the supervisor's own call: `BinStage.observe`, `BinView.keep`,
  `plan_grasp` with the interior as ROI. Where the manifest gives the floor's depth (`floor_mm`,
  or `floor_plane_mm` for a floor seen at a tilt) the floor plane is fitted on the surfaces within
  3 mm of it instead. Frames without depth have neither a floor plane nor an empty-bin reference:
  there the row applies the interior and the wall clearance only (`BinView.keep` with an empty
  floor mask), and says so in its note. The same holds for a frame whose floor is not visible at
  all (`floor_visible = false`: a bin filled above its floor): no floor can be commissioned from it.

Frames without depth run the RGB model (`--rgb-model`, the one the embedded configuration names
for a camera without depth) when the configured model needs depth.

Usage: python -m benchmarks.real_bins [--data DIR] [--manifest FILE]
    [--config firmware_config/embedded.toml] [--clearance-px PX] [--rgb-model FILE] [--json out.json]
The markdown table goes to stdout; --json writes every number too.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

import cv2
import numpy as np
import tomllib

from benchmarks.arguments import output_file, write_output
from benchmarks.machine_info import machine_info
from edge.bin_model import interior_mask

ROOT = Path(__file__).resolve().parents[1]

DEFAULT_MANIFEST = ROOT / "benchmarks" / "data" / "bins" / "manifest.toml"
# Data from public repositories stays out of git, in the workspace's shared folder beside the
# checkout; BINPICK_REAL_BINS overrides.
DEFAULT_DATA = Path(os.environ.get("BINPICK_REAL_BINS", ROOT.parent / "shared" / "data" / "bins"))
DEFAULT_RGB_MODEL = ROOT / "models" / "bicameral_f25_rgb.onnx"

OUTSIDE, FLOOR, OBJECT, UNKNOWN = 0, 1, 2, 3
LABEL_NAMES = {OUTSIDE: "outside", FLOOR: "floor", OBJECT: "object", UNKNOWN: "unknown"}
REQUIRED_FIELDS = (
    "id", "rgb", "size", "source_repo", "source_paths", "source_commit", "licence",
    "licence_file", "changes", "interior", "objects", "annotation",
)  # fmt: skip
PERMISSIVE = {"MIT", "BSD-2-Clause", "BSD-3-Clause", "Apache-2.0", "CC-BY-4.0", "CC0-1.0", "ISC"}
# kept aside for acceptance (issue 19) or calibration sets: never a source of this set
EXCLUDED_REPOS = {
    "berkeleyautomation/gqcnn", "andyzeng/arc-robot-vision", "start-jsk/jsk_apc",
    "anasibrahim/image_agnostic_segmentation", "ros-industrial/industrial_calibration",
    "rlav440/pycamset", "barry-liang/stereocalibrate", "firiceguo/visualodometryui",
}  # fmt: skip


class DataError(ValueError):
    """The manifest or a data file is wrong; the message names the file and the problem."""


@dataclass
class Frame:
    """One annotated photo: RGB, depth in mm (or None) and the per-pixel label map."""

    id: str
    rgb: np.ndarray  # HxWx3 uint8, RGB order
    depth_mm: np.ndarray | None  # HxW float32, NaN = no measurement
    interior: np.ndarray  # Nx2 float32
    labels: np.ndarray  # HxW uint8: OUTSIDE / FLOOR / OBJECT / UNKNOWN
    floor_mm: float | None
    meta: dict
    # the floor's depth per pixel (mm) where the annotation gives a tilted floor plane; else None
    floor_map: np.ndarray | None = None

    @property
    def floor_depth_mm(self) -> float | np.ndarray | None:
        """The floor's depth (mm): per pixel for a tilted floor, else one value; None without depth."""
        return self.floor_mm if self.floor_map is None else self.floor_map

    @property
    def floor_annotated(self) -> bool:
        """Whether the floor's depth was read off by hand (`floor_mm`, `floor_plane_mm`), not the
        interior's farthest surfaces."""
        return "floor_mm" in self.meta or self.floor_map is not None


def load_manifest(path: Path) -> list[dict]:
    """The manifest's frames, each checked for the fields provenance and scoring need."""
    try:
        raw = tomllib.loads(Path(path).read_text(encoding="utf-8"))
    except FileNotFoundError as exc:
        raise DataError(f"{path}: manifest not found") from exc
    except tomllib.TOMLDecodeError as exc:
        raise DataError(f"{path}: not valid TOML: {exc}") from exc
    frames = raw.get("frame")
    if not isinstance(frames, list) or not frames:
        raise DataError(f"{path}: no [[frame]] entries")
    seen: set[str] = set()
    for i, f in enumerate(frames):
        where = f"{path}: frame {i} ({f.get('id', '?')})"
        missing = [k for k in REQUIRED_FIELDS if k not in f]
        if missing:
            raise DataError(f"{where}: missing field(s) {', '.join(missing)}")
        if f["id"] in seen:
            raise DataError(f"{where}: duplicate id")
        seen.add(f["id"])
        if f["licence"] not in PERMISSIVE:
            raise DataError(f"{where}: licence {f['licence']!r} is not one of {sorted(PERMISSIVE)}")
        if f["source_repo"].lower() in EXCLUDED_REPOS:
            raise DataError(f"{where}: source {f['source_repo']} is kept aside (acceptance/calibration)")
        commit = f["source_commit"]
        if len(commit) != 40 or any(c not in "0123456789abcdef" for c in commit):
            raise DataError(f"{where}: source_commit {commit!r} is not a 40-hex commit")
        size = f["size"]
        if not (
            isinstance(size, list) and len(size) == 2 and all(isinstance(s, int) and s > 0 for s in size)
        ):
            raise DataError(f"{where}: size {size!r}: expected [width, height] in px")
        poly = np.asarray(f["interior"], np.float32)
        if poly.ndim != 2 or poly.shape[1] != 2 or poly.shape[0] < 3:
            raise DataError(f"{where}: interior must be >= 3 [x, y] points, got {f['interior']!r}")
        w, h = size
        if (
            (poly[:, 0] < 0).any()
            or (poly[:, 0] > w).any()
            or (poly[:, 1] < 0).any()
            or (poly[:, 1] > h).any()
        ):
            raise DataError(f"{where}: interior polygon leaves the {w}x{h} image")
        if f["objects"] == "depth":
            if "depth_mm" not in f:
                raise DataError(f"{where}: objects = 'depth' needs a depth_mm file")
        elif f["objects"] == "drawn":
            floors = f.get("floor_polygons")
            if not isinstance(floors, list):
                raise DataError(f"{where}: objects = 'drawn' needs floor_polygons (a list, may be empty)")
            for q in floors:
                q = np.asarray(q, np.float32)
                if q.ndim != 2 or q.shape[1] != 2 or q.shape[0] < 3:
                    raise DataError(f"{where}: floor polygon must be >= 3 [x, y] points, got {q.tolist()!r}")
        else:
            raise DataError(f"{where}: objects = {f['objects']!r}: expected 'depth' or 'drawn'")
        plane = f.get("floor_plane_mm")
        if plane is not None and not (
            isinstance(plane, list) and len(plane) == 3 and all(isinstance(v, int | float) for v in plane)
        ):
            raise DataError(f"{where}: floor_plane_mm must be [a, b, c] (floor depth = a x + b y + c, mm)")
        if plane is not None and "floor_mm" in f:
            raise DataError(f"{where}: give floor_mm or floor_plane_mm, not both")
    return frames


def _read(path: Path, flags: int, what: str) -> np.ndarray:
    if not path.is_file():
        raise DataError(f"{path}: {what} file not found")
    image = cv2.imread(str(path), flags)
    if image is None:
        raise DataError(f"{path}: {what} file could not be decoded")
    return image


def load_frame(entry: dict, data_dir: Path) -> Frame:
    """Read one frame's files, check them against the manifest and build its label map."""
    w, h = entry["size"]
    bgr = _read(data_dir / entry["rgb"], cv2.IMREAD_COLOR, "rgb")
    if bgr.shape[:2] != (h, w):
        raise DataError(
            f"{data_dir / entry['rgb']}: size {bgr.shape[1]}x{bgr.shape[0]}, manifest says {w}x{h}"
        )
    rgb = cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB)
    depth = None
    if "depth_mm" in entry:
        raw = _read(data_dir / entry["depth_mm"], cv2.IMREAD_UNCHANGED, "depth")
        if raw.dtype != np.uint16 or raw.ndim != 2:
            raise DataError(
                f"{data_dir / entry['depth_mm']}: {raw.dtype} {raw.shape}: expected 16-bit single-channel mm"
            )
        if raw.shape != (h, w):
            raise DataError(
                f"{data_dir / entry['depth_mm']}: size {raw.shape[1]}x{raw.shape[0]}, not the image's {w}x{h}"
            )
        depth = np.where(raw > 0, raw.astype(np.float32), np.nan)
    interior = np.asarray(entry["interior"], np.float32)
    inside = interior_mask(interior, (h, w))
    labels = np.full((h, w), OUTSIDE, np.uint8)
    floor_mm = None
    floor_map = None
    if depth is not None:
        valid = inside & np.isfinite(depth)
        if valid.sum() < 100:
            raise DataError(f"{data_dir / entry['depth_mm']}: under 100 measured pixels inside the interior")
        if "floor_mm" in entry:  # read off depth profiles across the visible floor (annotation)
            floor_mm = float(entry["floor_mm"])
        elif "floor_plane_mm" in entry:  # a tilted floor: the plane fitted on the annotated floor
            a, b, c = (float(v) for v in entry["floor_plane_mm"])
            ys, xs = np.mgrid[0:h, 0:w]
            floor_map = (a * xs + b * ys + c).astype(np.float32)
            floor_mm = float(floor_map[inside].mean())
        else:
            floor_mm = float(np.percentile(depth[valid], entry.get("floor_percentile", 95.0)))
    if entry["objects"] == "drawn":
        # no depth rule: the interior is product except the floor drawn by hand
        labels[inside] = OBJECT
        floor = np.zeros((h, w), np.uint8)
        for q in entry["floor_polygons"]:
            cv2.fillPoly(floor, [np.round(np.asarray(q, np.float32)).astype(np.int32)], 1)
        labels[inside & floor.astype(bool)] = FLOOR
    elif depth is not None:
        height = (floor_mm if floor_map is None else floor_map) - depth
        labels[inside] = UNKNOWN
        labels[valid] = FLOOR
        labels[valid & (height >= float(entry.get("object_min_height_mm", 15.0)))] = OBJECT
    return Frame(entry["id"], rgb, depth, interior, labels, floor_mm, entry, floor_map)


def classify(frame: Frame, u: float, v: float) -> str:
    """outside / floor / object at pixel (u, v); inside without depth there: the majority of the
    known labels within 3 px, else unknown."""
    h, w = frame.labels.shape
    x, y = int(round(u)), int(round(v))
    if not (0 <= x < w and 0 <= y < h):
        return "outside"
    label = int(frame.labels[y, x])
    if label != UNKNOWN:
        return LABEL_NAMES[label]
    patch = frame.labels[max(0, y - 3) : y + 4, max(0, x - 3) : x + 4]
    known = patch[(patch == FLOOR) | (patch == OBJECT)]
    if known.size == 0:
        return "unknown"
    return "object" if (known == OBJECT).sum() * 2 > known.size else "floor"


def height_percentile(frame: Frame, u: float, v: float) -> float | None:
    """The grasp surface's height percentile among the interior's measured pixels (depth only)."""
    if frame.depth_mm is None or frame.floor_mm is None or frame.meta.get("objects") != "depth":
        return None
    h, w = frame.labels.shape
    x, y = min(max(int(round(u)), 0), w - 1), min(max(int(round(v)), 0), h - 1)  # a point on the border
    patch = frame.depth_mm[max(0, y - 2) : y + 3, max(0, x - 2) : x + 3]
    patch = patch[np.isfinite(patch)]
    if patch.size == 0:
        return None
    floor = np.broadcast_to(np.float32(frame.floor_depth_mm), frame.labels.shape)
    grasp_height = float(floor[y, x]) - float(np.median(patch))
    measured = (frame.labels == FLOOR) | (frame.labels == OBJECT)
    pile = floor[measured] - frame.depth_mm[measured]
    return float(100.0 * np.mean(pile <= grasp_height))


def highest_point(frame: Frame) -> tuple[float, float] | None:
    """The highest measured point inside the interior (5x5 median of the depth, no-data = far)."""
    if frame.depth_mm is None:
        return None
    far = np.nan_to_num(frame.depth_mm, nan=65535.0).astype(np.uint16)
    smooth = cv2.medianBlur(far, 5).astype(np.float32)
    valid = (frame.labels == FLOOR) | (frame.labels == OBJECT)
    smooth[~valid] = np.inf
    y, x = np.unravel_index(int(np.argmin(smooth)), smooth.shape)
    return float(x), float(y)


@dataclass
class Row:
    frame: str
    rule: str
    u: float | None = None
    v: float | None = None
    where: str = "none"  # object / floor / outside / unknown / none (no grasp) / skipped
    percentile: float | None = None
    note: str = ""
    extra: dict = field(default_factory=dict)


class Appliance:
    """The embedded default's inference and grasp selection, built once from the config."""

    def __init__(self, config_path: Path, rgb_model: Path = DEFAULT_RGB_MODEL):
        from binpick_core.model_file import read_model_info
        from edge.config import load_config
        from edge.depth_cue import DepthCueStage

        self.config = load_config(config_path)
        self.params = self.config.ranking.params()
        self.depth_cue = DepthCueStage.from_config(self.config.inference)
        # A camera without depth takes the RGB model (the embedded configuration says so); used
        # only for frames without depth when the configured model needs depth.
        self.needs_depth = read_model_info(self.config.inference.model).input_kind != "rgb"
        self.rgb_model = Path(rgb_model)
        self._predictors: dict[tuple[int, int, bool], object] = {}

    def _predictor(self, width: int, height: int, rgb_only: bool):
        from dataclasses import replace

        from edge.inference.predictor import Predictor

        key = (width, height, rgb_only)
        if key not in self._predictors:  # the camera size is the photo's own
            section = self.config.inference
            if rgb_only:
                section = replace(section, model=str(self.rgb_model))
            self._predictors[key] = Predictor(section, (width, height))
        return self._predictors[key]

    def model_note(self, frame: Frame) -> str:
        """Which model ran on the frame, when it is not the configured one."""
        if frame.depth_mm is None and self.needs_depth:
            return f"no depth: {self.rgb_model.name}"
        return ""

    def maps_and_ranking(self, frame: Frame):
        """Inference, depth cue and ranking exactly as Supervisor._cycle does them."""
        h, w = frame.rgb.shape[:2]
        predictor = self._predictor(w, h, frame.depth_mm is None and self.needs_depth)
        depth_m = None if frame.depth_mm is None else frame.depth_mm / 1000.0
        maps = predictor.predict(frame.rgb, depth_m)
        maps = self.depth_cue.apply(maps, depth_m)
        ranking = predictor.rank(maps, self.params)
        return maps, ranking

    def grasp(self, maps, ranking) -> tuple[float, float] | None:
        """The supervisor's own choice (edge.ranking.plan_grasp) in pixel mode, camera px out."""
        from edge.ranking import plan_grasp

        grasp = plan_grasp(
            ranking, maps.boundaries, maps.occlusions, self.params, scale=(maps.scale_x, maps.scale_y),
            prefer_occluding_side=self.config.ranking.prefer_occluding_side,
        )  # fmt: skip
        return None if grasp is None else (grasp.u, grasp.v)

    def grasp_with_bin_model(self, frame: Frame, maps, ranking, clearance_px: float | None) -> Row:
        """The grasp with the bin model, as the supervisor chooses it when `[bin]` is on.

        The bin is commissioned from this frame with the annotated interior (no empty-bin frame
        exists in the sources, so the floor is the depth plane fitted on the interior's farthest
        surfaces and the bin is not tracked); then the supervisor's own call: `BinStage.observe`,
        `BinView.keep` and `plan_grasp` with the moved interior as ROI, the config's `[bin]`
        settings (`--clearance-px` overrides the wall clearance)."""
        from dataclasses import replace

        from edge.bin_model import BinModel, BinStage, fit_floor_plane
        from edge.bin_model.fill import fill_level
        from edge.bin_model.locate import IDENTITY
        from edge.bin_model.stage import BinView
        from edge.ranking import plan_grasp

        row = Row(frame.id, "appliance + bin model")
        settings = replace(self.config.bin.settings(), track=False)
        if clearance_px is not None:
            settings = replace(settings, wall_clearance_px=clearance_px)
        gray = cv2.cvtColor(frame.rgb, cv2.COLOR_RGB2GRAY)
        inside = interior_mask(frame.interior, gray.shape)
        note = f"supervisor path, clearance {settings.wall_clearance_px:g} px"
        if self.model_note(frame):
            note = f"{self.model_note(frame)}; {note}"
        no_floor = frame.meta.get("floor_visible", True) is False
        if frame.depth_mm is None or no_floor:
            # Without depth the stage finds the floor by comparing the frame with the empty bin's
            # reference; no source has an empty-bin frame, so only the interior and the wall
            # clearance can be applied (BinView.keep with an empty floor mask). The same where
            # the floor is hidden under the load: there is no floor in the frame to commission.
            floor = np.zeros(gray.shape, bool)
            view = BinView(IDENTITY, np.asarray(frame.interior, np.float32), floor,
                           fill_level(inside, floor), False)  # fmt: skip
            if frame.depth_mm is None:
                note += "; no depth and no empty-bin frame: interior and wall clearance only, no floor rule"
            else:
                note += (
                    "; floor not visible, no empty-bin frame: interior and wall clearance only, no floor rule"
                )
        else:
            depth_m = (frame.depth_mm / 1000.0).astype(np.float32)
            depth_m[~(depth_m > 0)] = np.nan
            valid = inside & np.isfinite(depth_m)
            if frame.floor_annotated:  # the empty bin's floor: the annotated floor's surfaces
                far = valid & (np.abs(depth_m * 1000.0 - frame.floor_depth_mm) <= 3.0)
            else:  # the floor: the farthest surfaces
                far = valid & (depth_m >= np.nanpercentile(depth_m[valid], 90))
            model = BinModel(np.asarray(frame.interior, float), gray, fit_floor_plane(depth_m, far), 0.0)
            view = BinStage(model, settings).observe(frame.rgb, depth_m)
        scale = (maps.scale_x, maps.scale_y)
        grasp = plan_grasp(
            ranking, maps.boundaries, maps.occlusions, self.params, scale=scale,
            prefer_occluding_side=self.config.ranking.prefer_occluding_side,
            roi_polygon=view.interior, keep=view.keep(ranking.labels, scale, settings),
        )  # fmt: skip
        if grasp is not None:
            row.u, row.v = grasp.u, grasp.v
        else:
            row.where = "none"
        row.extra = {"fill_percent": round(view.fill.percent, 1)}
        row.note = note
        return row


def _score(frame: Frame, row: Row) -> Row:
    if row.u is not None:
        row.where = classify(frame, row.u, row.v)
        if row.where != "outside":  # a height outside the bin is not a height in the pile
            row.percentile = height_percentile(frame, row.u, row.v)
    return row


def summarise(rows: list[Row], rule: str) -> dict | None:
    """Counts per class, the on-object ratio and the median height percentile of one rule."""
    mine = [r for r in rows if r.rule == rule and r.where != "skipped"]
    if not mine:
        return None
    counts = {k: sum(r.where == k for r in mine) for k in ("object", "floor", "outside", "unknown", "none")}
    pct = [r.percentile for r in mine if r.percentile is not None]
    return {
        "rule": rule,
        "frames": len(mine),
        **counts,
        "on_object_ratio": counts["object"] / len(mine),
        "median_percentile": float(np.median(pct)) if pct else None,
    }


def markdown(rows: list[Row], summaries: list[dict], machine: dict, skipped_note: str) -> str:
    """The per-photo and total tables as markdown."""
    fmt = lambda x: "–" if x is None else f"{x:.0f}"  # noqa: E731
    lines = [
        f"Real bins: {len({r.frame for r in rows})} frames; {machine['cpu']}, "
        f"{machine['logical_cpus']} logical CPUs, load {machine['load_average']}; {machine['seconds']:.1f} s",
        "",
        "| frame | rule | grasp (u, v) px | lands on | height percentile | note |",
        "|---|---|---|---|---|---|",
    ]
    for r in rows:
        at = "–" if r.u is None else f"({r.u:.0f}, {r.v:.0f})"
        lines.append(f"| {r.frame} | {r.rule} | {at} | {r.where} | {fmt(r.percentile)} | {r.note} |")
    lines += [
        "",
        "| rule | frames | object | floor | outside | unknown | no grasp | on object | median height pct |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for s in summaries:
        lines.append(
            f"| {s['rule']} | {s['frames']} | {s['object']} | {s['floor']} | {s['outside']} | "
            f"{s['unknown']} | {s['none']} | {s['object']}/{s['frames']} "
            f"({100 * s['on_object_ratio']:.0f} %) | {fmt(s['median_percentile'])} |"
        )
    if skipped_note:
        lines += ["", skipped_note]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--manifest", type=Path, default=DEFAULT_MANIFEST)
    ap.add_argument("--data", type=Path, default=DEFAULT_DATA, help="folder with the image files")
    ap.add_argument("--config", type=Path, default=ROOT / "firmware_config" / "embedded.toml")
    ap.add_argument(
        "--clearance-px",
        type=float,
        default=None,
        help="bin-model wall clearance (px); default: the config's [bin] settings via BinStage",
    )
    ap.add_argument("--rgb-model", type=Path, default=DEFAULT_RGB_MODEL,
                    help="model for frames without depth when the config's model needs depth")  # fmt: skip
    ap.add_argument("--json", type=output_file, default=None)
    args = ap.parse_args(argv)
    for option, path in (("--config", args.config), ("--rgb-model", args.rgb_model)):
        if not path.is_file():  # else a traceback once the frames are loaded
            ap.error(f"{option} {path}: no such file")
    t0 = time.monotonic()
    try:
        entries = load_manifest(args.manifest)
        frames = [load_frame(e, args.data) for e in entries]
    except DataError as exc:
        print(f"real_bins: {exc}", file=sys.stderr)
        return 2
    appliance = Appliance(args.config, args.rgb_model)
    rows: list[Row] = []
    for frame in frames:
        maps, ranking = appliance.maps_and_ranking(frame)
        grasp = appliance.grasp(maps, ranking)
        row = Row(frame.id, "appliance", note=appliance.model_note(frame),
                  extra={"candidates": len(ranking.candidates)})  # fmt: skip
        if grasp is not None:
            row.u, row.v = grasp
        rows.append(_score(frame, row))
        hp = highest_point(frame)
        row = Row(frame.id, "highest point")
        if hp is None:
            row.where, row.note = "skipped", "no depth"
        else:
            row.u, row.v = hp
        rows.append(_score(frame, row) if hp is not None else row)
        rows.append(_score(frame, appliance.grasp_with_bin_model(frame, maps, ranking, args.clearance_px)))
    rules = ["appliance", "highest point", "appliance + bin model"]
    summaries = [s for s in (summarise(rows, r) for r in rules) if s is not None]
    skipped = ""
    machine = {**machine_info("onnxruntime"), "seconds": time.monotonic() - t0}
    print(markdown(rows, summaries, machine, skipped))
    if args.json is not None:
        payload = {
            "machine": machine,
            "rows": [asdict(r) for r in rows],
            "totals": summaries,
            "skipped": skipped,
        }
        write_output(args.json, json.dumps(payload, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
