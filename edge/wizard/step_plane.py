"""Step 3 of the wizard, pick plane and region: the bin floor, the pick height and the bin's outline.

One camera measures no depth: a pixel's ray meets a plane parallel to the bin floor (the board's
surface, or a plane entered by hand), raised by the pick offset. The region of interest is the
whole image, a pixel polygon, or the bin's corners touched with the robot and projected.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import cv2
import numpy as np

from binpick_core.errors import CommandError
from edge.calibration_file import polygon_area
from edge.geometry import CameraModel, GeometryError, PixelToRobot, Plane, RigidTransform
from edge.wizard.prompts import Wizard, floats, write_image
from edge.wizard.robot import BoardPose, board_plane_in_robot


def parse_plane(text: str) -> Plane | None:
    if text.strip().lower() in ("", "board"):
        return None
    v = floats(text, 4, "the plane nx,ny,nz,d")
    try:
        return Plane(v[:3], v[3])
    except GeometryError as exc:
        raise ValueError(str(exc)) from None


def parse_offset(text: str) -> float:
    value = floats(text, 1, "the pick offset")[0]
    if not -500 <= value <= 1000:
        raise ValueError(f"pick offset {value} mm is outside -500..1000 mm")
    return float(value)


def roi_text(text: str) -> tuple[str, np.ndarray] | None:
    """--roi as typed: None (the whole image), ("pixels", polygon) or ("robot", corners in mm).

    Everything that needs no floor plane is checked here, so the check before step 1 and
    step 3 refuse the same values; robot corners are projected into the image in step 3.
    """
    t = text.strip()
    if t.lower() in ("", "image"):
        return None
    if t.lower().startswith("robot:"):
        corners = [floats(c, 3, "a bin corner x,y,z") for c in t[6:].split(";") if c.strip()]
        return "robot", np.array(corners).reshape(-1, 3)
    poly = np.array([floats(c, 2, "a vertex u,v") for c in t.split(";") if c.strip()])
    if len(poly) < 3:
        raise ValueError("at least 3 vertices u,v;u,v;u,v are needed")
    _check_area(poly)
    return "pixels", poly


def _check_area(poly: np.ndarray) -> None:
    """The file refuses a region without area too: every cycle would find its region empty."""
    if polygon_area(poly) < 1.0:
        raise ValueError(
            f"the region encloses {polygon_area(poly):g} square pixels: give its corners, not a line"
        )


def step_plane_and_region(
    w: Wizard,
    args: argparse.Namespace,
    camera: CameraModel,
    transform: RigidTransform,
    pose: BoardPose,
    floor_image: np.ndarray,
    report_dir: Path,
) -> tuple[Plane, str, float, np.ndarray | None, PixelToRobot]:  # plane, its source, pick offset, ROI, floor
    w.step(
        3,
        "pick plane and region",
        "Depth comes from a plane parallel to the bin floor (one camera cannot measure it). The floor is\n"
        "taken from the board; the pick plane is raised by the pick offset (about half a pile's height).",
    )
    plane = w.ask(
        "Bin floor plane ('board' or nx,ny,nz,d in robot mm)", args.plane, parse_plane, "--plane", "board"
    )
    source = "entered"
    if plane is None:
        plane, source = board_plane_in_robot(pose, transform), "board"
    w.say(
        f"  floor plane: normal ({', '.join(f'{x:+.4f}' for x in plane.normal)}), "
        f"offset {plane.offset:.2f} mm ({source})"
    )
    offset = w.ask(
        "Pick height above the floor (mm)", args.pick_offset_mm, parse_offset, "--pick-offset-mm", "0"
    )
    try:
        floor = PixelToRobot(camera, transform, plane)
    except GeometryError as exc:
        raise CommandError(f"plane: {exc}") from None
    width, height = camera.image_size

    def parse_roi(text: str) -> np.ndarray | None:
        given = roi_text(text)
        if given is None:
            return None  # the whole image (contracts.md: roi_polygon None)
        kind, points = given
        if kind == "pixels":
            return points
        try:
            poly = floor.outline_to_pixels(points)
        except GeometryError as exc:
            raise ValueError(str(exc)) from None
        _check_area(poly)
        return poly

    roi = w.ask(
        "Region of interest ('image', 'u,v;u,v;...' pixels, or 'robot:x,y,z;...' bin corners)",
        args.roi,
        parse_roi,
        "--roi",
        "image",
    )
    overlay = floor_image.copy()
    drawn = (
        roi
        if roi is not None
        else np.array([[0, 0], [width - 1, 0], [width - 1, height - 1], [0, height - 1]])
    )
    cv2.polylines(overlay, [np.round(drawn).astype(np.int32).reshape(-1, 1, 2)], True, (0, 255, 0), 2)
    write_image(report_dir / "roi.png", overlay)
    what = "the whole image" if roi is None else f"{len(roi)} vertices"
    w.say(f"  region: {what}, drawn in {report_dir / 'roi.png'}")
    return plane, source, offset, roi, floor
