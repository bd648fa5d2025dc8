"""`binpick bin`: commission the bin (the load carrier) from one frame of the empty bin.

Records what the per-cycle bin stage (edge/bin_model) compares each frame with: the interior
polygon (given with --polygon, from --corners-mm (the bin's inner corners touched with the tool,
robot frame) through the calibration, from `[bin] polygon`, from the calibration's ROI, or
detected: the largest quadrilateral in the picture (the rim) and, with depth, the floor inside
it (`edge.bin_model.detect`); its corners may lie outside the frame where the bin is
larger than the view), the empty-bin reference frame and, with depth, the
floor plane and the rim's height above it. The frame comes from --image (and --depth) or from
the configured camera. Writes `[bin] model` (or --out) atomically and says how to enable it;
with depth, only when the appliance would read this frame as an empty bin (or --accept-failed).
"""

from __future__ import annotations

import argparse
import sys
from dataclasses import replace
from pathlib import Path
from typing import TYPE_CHECKING

import cv2
import numpy as np

from binpick_core.errors import CommandError
from edge.atomic_file import check_output
from edge.bin_model import (
    BinModel,
    BinModelError,
    BinStage,
    commission_bin,
    detect_interior,
    interior_mask,
    save_bin_model,
)
from edge.bin_model.stage import BinSettings
from edge.geometry import GeometryError, crossing_problem
from edge.wizard.prompts import floats

if TYPE_CHECKING:
    from edge.calibration_file import Calibration
    from edge.config import Config


def configure(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--config", required=True, type=Path, help="the appliance's configuration")
    parser.add_argument("--image", type=Path, help="a photo of the empty bin (default: grab one)")
    parser.add_argument("--depth", type=Path, help="its depth map (.npy metres, 16-bit PNG in depth_unit_mm)")
    parser.add_argument("--polygon", help='the interior in camera pixels: "u,v u,v u,v ..."')
    parser.add_argument(
        "--corners-mm",
        help="the interior's corners in the robot's frame, mm: \"x,y,z x,y,z ...\" (the bin floor's inner "
        "corners, touched with the tool), projected through the calibration; they may lie outside "
        "the picture (a bin larger than the view)",
    )
    parser.add_argument("--out", type=Path, help="where to write the bin model (default: [bin] model)")
    parser.add_argument(
        "--accept-failed",
        action="store_true",
        help="write the model even when this frame would not read as an empty bin (as `binpick "
        "calibrate --accept-failed` writes a calibration whose check failed)",
    )


def parse_points(text: str, option: str = "--polygon", names: str = "u,v") -> np.ndarray:
    """'u,v u,v u,v' (or 'x,y,z ...' with `names` "x,y,z") as an N x len(names) array;
    CommandError naming the option and the bad point."""
    size = len(names.split(","))
    points = []
    for item in text.split():
        try:
            points.append(floats(item, size, names))
        except ValueError:
            raise CommandError(f"{option}: point {item!r}: expected {names} ({size} numbers)") from None
    if len(points) < 3:
        raise CommandError(f"{option}: expected at least 3 points, got {len(points)}")
    return np.array(points, float)


def _cell_calibration(path: str, cell: str) -> Calibration:
    """The calibration file, refused as the appliance refuses it: invalid, or for another cell than
    `[calibration] cell` names (a bin drawn through the neighbouring cell's camera)."""
    from edge.calibration_file import CalibrationError, load_calibration

    try:
        calibration = load_calibration(path)
    except CalibrationError as exc:
        raise CommandError(str(exc)) from None
    other = calibration.other_cell(cell)
    if other:
        raise CommandError(f"{path}: {other}")
    return calibration


def corners_in_the_image(
    text: str, calibration_file: str, frame_size: tuple[int, int], cell: str = ""
) -> np.ndarray:
    """The robot-frame corners of `--corners-mm` as an interior polygon in camera pixels, through
    the calibration (outside the frame where they are). Why: a bin larger than the view cannot
    be drawn in the picture, but its inner corners can be touched with the tool, as the
    calibration's points are; with the real corners the wall clearance is kept from the walls,
    not from the picture's edge. The outline and its refusals are `PixelToRobot.outline_to_pixels`,
    which the wizard's `--roi robot:...` uses too."""
    corners = parse_points(text, "--corners-mm", "x,y,z")
    if not calibration_file or not Path(calibration_file).is_file():
        raise CommandError(
            f"--corners-mm needs the calibration ([calibration] file = {calibration_file!r} is not a file)"
        )
    calibration = _cell_calibration(calibration_file, cell)
    if tuple(calibration.image_size) != tuple(frame_size):
        raise CommandError(
            f"--corners-mm: the calibration {calibration_file} is for {calibration.image_size[0]}x"
            f"{calibration.image_size[1]} frames, this frame is {frame_size[0]}x{frame_size[1]}"
        )
    try:
        return calibration.geometry.outline_to_pixels(corners)
    except GeometryError as exc:
        raise CommandError(f"--corners-mm: {exc}") from None


def _frame(args: argparse.Namespace, cfg: Config) -> tuple[np.ndarray, np.ndarray | None]:
    """(RGB, depth in metres or None) of the empty bin."""
    if args.image is not None:
        bgr = cv2.imread(str(args.image), cv2.IMREAD_COLOR)
        if bgr is None:
            raise CommandError(f"--image {args.image}: not a readable image")
        depth = None
        if args.depth is not None:
            from edge.camera.base import CameraError, depth_range_problem
            from edge.camera.folder_source import read_depth

            try:
                depth = read_depth(args.depth, cfg.camera.depth_unit_mm)
            except CameraError as exc:
                raise CommandError(f"--depth: {exc}") from None
            if depth.shape != bgr.shape[:2]:
                raise CommandError(f"--depth {args.depth}: {depth.shape[1]}x{depth.shape[0]}, the image is "
                                   f"{bgr.shape[1]}x{bgr.shape[0]}")  # fmt: skip
            if not np.isfinite(depth).any():
                raise CommandError(f"--depth {args.depth}: no pixel has a depth (all zero or NaN)")
            problem = depth_range_problem(depth)
            if problem:
                unit = (
                    f"with [camera] depth_unit_mm = {cfg.camera.depth_unit_mm:g} (the PNG's unit)"
                    if args.depth.suffix == ".png"
                    else "a .npy holds float metres (millimetres there: divide by 1000)"
                )
                raise CommandError(f"--depth {args.depth}: {problem}; {unit}")
        return cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB), depth
    from edge.camera import CameraError, open_camera

    camera = open_camera(cfg.camera)  # its frames' depth is checked for the unit (make_frame)
    try:
        camera.open()
        frame = camera.grab(cfg.camera.timeout_s)
    except CameraError as exc:
        raise CommandError(f"camera: {exc}") from None
    finally:
        camera.close()
    return frame.rgb, frame.depth_m


def _interior(
    args: argparse.Namespace, cfg: Config, gray: np.ndarray, depth: np.ndarray | None
) -> tuple[np.ndarray, str, str]:
    """The interior polygon, where it came from, and a warning about it ("" for none)."""
    if args.polygon and args.corners_mm:
        raise CommandError("give either --polygon (pixels) or --corners-mm (robot frame), not both")
    if args.polygon:
        return parse_points(args.polygon), "--polygon", ""
    if args.corners_mm:
        size = (gray.shape[1], gray.shape[0])
        corners = corners_in_the_image(args.corners_mm, cfg.calibration.file, size, cfg.calibration.cell)
        return corners, "--corners-mm", ""
    if cfg.bin.polygon:
        return np.asarray(cfg.bin.polygon, float), "[bin] polygon", ""
    if cfg.calibration.file and Path(cfg.calibration.file).is_file():
        calibration = _cell_calibration(cfg.calibration.file, cfg.calibration.cell)
        if calibration.roi_polygon is not None:
            (cw, ch), (w, h) = calibration.image_size, (gray.shape[1], gray.shape[0])
            if (cw, ch) != (w, h):
                raise CommandError(
                    f"the calibration's ROI: {cfg.calibration.file} is for {cw}x{ch} frames, this frame "
                    f"is {w}x{h} (give --polygon, or calibrate this camera's resolution again)"
                )
            return np.asarray(calibration.roi_polygon, float), "the calibration's ROI", ""
    found = detect_interior(gray, depth, cfg.bin.settings().floor_tolerance_mm)
    if found is None:
        raise CommandError(
            "no interior: give --polygon, set [bin] polygon, calibrate with an ROI, or show a bin "
            "whose rim is a clear quadrilateral"
        )
    if found.on_floor:
        return found.polygon, f"detected: {found.note}", ""
    return (
        found.polygon,
        f"detected: {found.note}",
        (
            f"warning: the interior was detected as {found.note}: the largest quadrilateral outline in "
            "the picture is usually the rim's outer edge, so the interior may hold the rim and walls (the "
            "fill level then counts them as product, and the wall clearance is kept from the rim, not "
            "from the floor's edge). Give the floor's corners with --polygon (or --corners-mm), or "
            "commission with depth."
        ),
    )


def main(args: argparse.Namespace) -> int:
    from edge.config import ConfigError, load_config

    try:
        cfg = load_config(args.config, check_files=False)
    except ConfigError as exc:
        raise CommandError(str(exc)) from None
    out = args.out or (Path(cfg.bin.model) if cfg.bin.model else None)
    if out is None:
        raise CommandError("no output: give --out or set [bin] model in the configuration")
    _check_output(out, "--out" if args.out else "[bin] model", args, cfg)
    rgb, depth = _frame(args, cfg)
    gray = cv2.cvtColor(rgb, cv2.COLOR_RGB2GRAY)
    interior, origin, caveat = _interior(args, cfg, gray, depth)
    h, w = gray.shape
    far = MAX_FRAMES_AWAY * max(w, h)
    if not np.isfinite(interior).all() or (np.abs(interior) > far).any():
        raise CommandError(
            f"interior ({origin}): points more than {far} px from the {w}x{h} frame's origin "
            "(expected camera pixels; corners outside the frame are fine, this far they are not)"
        )
    crossing = crossing_problem(interior)
    if crossing:  # a bow tie: two triangles, and the bin's middle neither floor nor product
        raise CommandError(f"interior ({origin}): {crossing}")
    in_view = _share_in_view(interior, w, h)
    if in_view < MIN_INTERIOR_IN_VIEW:
        raise CommandError(
            f"interior ({origin}): {100 * in_view:.2f} % of the {w}x{h} frame lies inside it; "
            f"expected at least {100 * MIN_INTERIOR_IN_VIEW:.0f} % (is the polygon in this camera's pixels?)"
        )
    try:
        model = commission_bin(gray, depth, interior)
    except ValueError as exc:
        raise CommandError(f"depth: {exc}") from None
    problem = empty_floor_problem(model, rgb, depth, cfg.bin.settings())
    if problem and not args.accept_failed:
        raise CommandError(f"{problem} (--accept-failed writes the model anyway)")
    try:
        save_bin_model(model, out)
    except BinModelError as exc:
        raise CommandError(str(exc)) from None
    except OSError as exc:
        raise CommandError(f"{out}: cannot write the bin model ({exc.strerror or exc})") from None
    floor, rim = model.floor, model.rim_height_mm
    depth_text = (
        "" if floor is None else f", floor plane RMS {floor.rms_mm:.1f} mm, rim {rim:.0f} mm above it"
    )
    print(
        f"bin model written to {out}: interior {len(interior)} points ({origin}), {w}x{h} frame{depth_text}"
    )
    if caveat:
        print(caveat, file=sys.stderr)
    if problem:
        print(f"warning: written with --accept-failed: {problem}", file=sys.stderr)
    if _reaches_the_border(interior, w, h):
        print(
            "warning: the interior reaches the frame's border, so part of the bin may be out of the "
            "camera's view: products there are never seen (never picked), and bin_empty can rise "
            "while they remain. Move or widen the camera until the whole rim is in the picture. "
            "Where that cannot be, give the interior's real corners, outside the frame where they "
            "are: the wall clearance is then kept from the walls, not from the picture's edge.",
            file=sys.stderr,
        )
    print(f'enable it with [bin] enabled = true and model = "{out}"')
    return 0


def empty_floor_problem(
    model: BinModel, rgb: np.ndarray, depth: np.ndarray | None, settings: BinSettings
) -> str:
    """Why the appliance would not read this very frame, the empty bin, as empty ("" when it
    would): its fill level as every cycle measures it (with the configured floor tolerance)
    against `empty_below_percent`. Why: a frame with something on the floor, or a floor rougher
    than `floor_tolerance_mm`, gives a plane that misses the floor; every cycle then counts floor
    as product, `bin_empty` can never rise and floor picks are not recognised. Without depth the
    floor is this frame's picture itself, which always reads empty; with `empty_below_percent` 0
    (bin_empty turned off) no fill level is empty, and there is nothing to measure against."""
    if model.floor is None or settings.empty_below_percent <= 0:
        return ""
    fill = BinStage(model, replace(settings, track=False)).observe(rgb, depth).fill
    if fill.percent < settings.empty_below_percent:
        return ""
    rms, tolerance = model.floor.rms_mm, settings.floor_tolerance_mm
    if 2 * rms >= tolerance:  # floor pixels this far off the plane fall outside the tolerance
        cause = (
            "the interior must hold the empty bin's bare floor only (nothing on it, no rim, wall "
            "or table in it), or raise floor_tolerance_mm for a floor that rough"
        )
    else:  # the plane fits: something above it lies inside the interior
        cause = (
            "something above the floor lies inside the interior: products left in the bin, or an "
            "interior reaching onto the rim or the walls (give its corners at the floor)"
        )
    return (
        f"this frame would read {fill.percent:.1f} % full, not empty (empty below [bin] "
        f"empty_below_percent = {settings.empty_below_percent:g}), so bin_empty could never rise: "
        f"floor plane RMS {rms:.1f} mm against [bin] floor_tolerance_mm = {tolerance:g}; {cause}"
    )


def _check_output(out: Path, origin: str, args: argparse.Namespace, cfg: Config) -> None:
    """Refuse, before anything is grabbed or written, an output that is a folder, whose folder
    is not one that can be written (the nearest existing one, where the folder is to be made),
    or that is one of the command's inputs: `--out cell.toml` replaced the configuration itself
    with the model's JSON (and `--out empty.png` the photo), exit 0, and the appliance then did
    not start."""
    inputs = {"--config": args.config, "--image": args.image, "--depth": args.depth}
    inputs["[calibration] file"] = cfg.calibration.file or None
    check_output(origin, out, inputs=inputs)


MIN_INTERIOR_IN_VIEW = 0.01  # of the frame: less is a polygon in some other camera's pixels
MAX_FRAMES_AWAY = 10  # frame sizes: a corner farther than that is not this camera's pixels


def _share_in_view(interior: np.ndarray, width: int, height: int) -> float:
    """The share of the frame that the interior covers. The interior may reach beyond the
    frame (a bin larger than the view, given with its real corners): only its part in the
    picture is measured, and the walls outside still bound the grasps (edge.bin_model)."""
    return float(interior_mask(interior, (height, width)).mean())


def _reaches_the_border(interior: np.ndarray, width: int, height: int, margin_px: float = 2.0) -> bool:
    """Whether a vertex of the interior lies within `margin_px` of the frame's border or beyond
    it (a calibration's ROI clipped by the image, a polygon drawn to the picture's edge, or the
    real corners of a bin larger than the view)."""
    u, v = interior[:, 0], interior[:, 1]
    return bool(
        (u <= margin_px).any() or (v <= margin_px).any()
        or (u >= width - 1 - margin_px).any() or (v >= height - 1 - margin_px).any()
    )  # fmt: skip
