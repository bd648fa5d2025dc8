"""Step 4 of the wizard, validation: predict an image point in robot mm, touch it, record the error."""

from __future__ import annotations

import argparse

from binpick_core.errors import CommandError
from edge.geometry import GeometryError, PixelToRobot
from edge.wizard.prompts import Stop, Wizard, floats, optional_xyz
from edge.wizard.robot import validation_record

parse_touch = optional_xyz("the touched point")  # --validate-touch: x,y,z or skip (None)


def parse_pixel(text: str) -> tuple[float, float] | None:
    """--validate-pixel: 'V' (None: board point V, known once the floor image is seen) or u,v."""
    if text.strip().upper() in ("", "V"):
        return None
    u, v = floats(text, 2, "the pixel u,v")
    return float(u), float(v)


def step_validation(
    w: Wizard,
    args: argparse.Namespace,
    floor: PixelToRobot,
    centre_px: tuple[float, float],
    threshold_mm: float,
) -> list[dict]:
    w.step(
        4,
        "validation",
        "The wizard maps an image point to robot coordinates; touch that point with the tool tip and enter\n"
        "where the robot is. The error is recorded in the file.",
    )

    def pixel_or_centre(text: str) -> tuple[float, float]:
        pixel = parse_pixel(text)
        return centre_px if pixel is None else pixel

    pixel = w.ask(
        "Image point to check ('V' = board point V, or u,v)",
        args.validate_pixel,
        pixel_or_centre,
        "--validate-pixel",
        "V",
    )
    try:
        predicted = floor.pixel_to_robot(*pixel)
    except GeometryError as exc:
        raise CommandError(f"--validate-pixel: {exc}") from None
    w.say(
        f"  pixel ({pixel[0]:.1f}, {pixel[1]:.1f}) is at robot x {predicted[0]:.2f}  y {predicted[1]:.2f}  "
        f"z {predicted[2]:.2f} mm on the floor"
    )
    touched = w.ask(
        "Robot coordinates where the tip touches that point (x,y,z or 'skip')",
        args.validate_touch,
        parse_touch,
        "--validate-touch",
        "skip",
    )
    if touched is None:
        w.say("  validation skipped: touching one point to validate is recommended after every calibration")
        return []
    record = validation_record(floor, pixel, touched)
    record["threshold_mm"] = threshold_mm
    record["passed"] = record["error_mm"] <= threshold_mm
    verdict = "PASS" if record["passed"] else "FAIL: check the tool-centre point and redo step 2"
    w.say(f"  touch error {record['error_mm']:.2f} mm (limit {threshold_mm:g} mm): {verdict}")
    # Like steps 1 and 2: a failed check stops here unless the technician (or --accept-failed)
    # says otherwise. The appliance reloads the file as soon as it changes, so writing a
    # calibration whose touch test failed would put a robot several mm off into production.
    if not record["passed"] and not w.confirm(
        "Validation failed the check. Write anyway?", args.accept_failed
    ):
        raise Stop(
            f"validation touch error {record['error_mm']:.2f} mm exceeds {threshold_mm:g} mm: check the "
            "touched coordinates and the tool-centre point, then run the wizard again"
        )
    return [record]
