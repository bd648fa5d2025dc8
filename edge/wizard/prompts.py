"""The wizard's conversation: questions answered by a flag, by the technician, or by a default.

Shared by every step of `binpick calibrate`: the question/answer loop (a flag wins, then the
prompt, then the default; `--non-interactive` never asks), the parsers that turn typed text into
values (a bad answer is explained and asked again), image files in and out, and the board choice.
"""

from __future__ import annotations

import argparse
import re
from collections.abc import Callable
from pathlib import Path
from typing import Any

import cv2
import numpy as np

from binpick_core.errors import CommandError
from edge.calibration_file import CELL_NAME, CELL_NAME_HINT, CalibrationError
from edge.wizard.boards import Board, load_board
from edge.wizard.robot import StepError

IMAGE_SUFFIXES = {".png", ".jpg", ".jpeg", ".bmp", ".tif", ".tiff"}
STEPS = 5


class Stop(Exception):
    """A check failed and the technician chose not to go on: nothing is written, exit 1."""


class Wizard:
    """Questions answered by a flag, by the technician, or (non-interactive) by a default."""

    def __init__(self, interactive: bool):
        self.interactive = interactive

    def say(self, text: str = "") -> None:
        print(text, flush=True)

    def step(self, number: int, title: str, what: str) -> None:
        self.say()
        self.say(f"=== Step {number}/{STEPS}: {title} ===")
        self.say(what)

    def ask(
        self,
        question: str,
        given: str | None,
        parse: Callable[[str], Any],
        flag: str,
        default: str | None = None,
    ) -> Any:
        if given is not None:
            value = check_given(flag, given, parse)
            self.say(f"{question}: {given}   (from {flag})")
            return value
        if not self.interactive:
            if default is None:
                raise CommandError(f"{flag} is required with --non-interactive ({question.lower()})")
            self.say(f"{question}: {default}   (default)")
            return parse(default)
        suffix = f" [{default}]" if default is not None else ""
        while True:
            try:
                raw = input(f"{question}{suffix}: ").strip()
            except EOFError:
                raise CommandError(
                    "input ended before the wizard finished; script it with flags and --non-interactive"
                ) from None
            if not raw and default is not None:
                raw = default
            try:
                return parse(raw)
            except ValueError as exc:
                self.say(f"  ! {exc}; try again")

    def confirm(self, question: str, accept_flag: bool) -> bool:
        if accept_flag:
            self.say(f"{question} yes   (from --accept-failed)")
            return True
        if not self.interactive:
            return False
        return self.ask(question + " (y/n)", None, _parse_yes_no, "--accept-failed", default="n")


def check_given(flag: str, given: str, parse: Callable[[str], Any]) -> Any:
    """A flag's value through its parser, or the one-line error naming the flag and the value.

    The same call serves the check before step 1 and the step itself, so a value refused at
    the start is refused with the same words the step would use.
    """
    try:
        return parse(given)
    except ValueError as exc:
        raise CommandError(f"{flag} {given!r}: {exc}") from None


def _parse_yes_no(text: str) -> bool:
    t = text.strip().lower()
    if t in ("y", "yes"):
        return True
    if t in ("n", "no", ""):
        return False
    raise ValueError("answer y or n")


def floats(text: str, count: int, what: str) -> np.ndarray:
    """`count` finite numbers separated by a comma or by spaces ("1,2,3", "1, 2, 3", "1 2 3").

    An empty field ("1,,2", a trailing comma) is refused rather than skipped: it is a number
    left out, and skipping it would shift the ones after it into the wrong coordinate.
    """
    numbers = "a number" if count == 1 else f"{count} numbers separated by commas"
    parts = re.split(r"\s*,\s*|\s+", text.strip())
    try:
        values = np.array([float(p) for p in parts])
    except ValueError:
        raise ValueError(f"expected {numbers} for {what}, got {text!r}") from None
    if len(values) != count:
        raise ValueError(f"expected {numbers} for {what}, got {text!r}")
    if not np.all(np.isfinite(values)):
        raise ValueError(f"expected finite numbers for {what} (not nan or inf), got {text!r}")
    return values


def existing_dir(text: str) -> Path:
    p = Path(text).expanduser()
    if not p.exists():
        raise ValueError(f"{text!r} does not exist; expected a folder")
    if not p.is_dir():
        raise ValueError(f"{text!r} is a file; expected a folder")
    return p


def existing_file(text: str) -> Path:
    p = Path(text).expanduser()
    if not p.exists():
        raise ValueError(f"{text!r} does not exist; expected a file")
    if not p.is_file():
        raise ValueError(f"{text!r} is a folder; expected a file")
    return p


def cell_name(text: str) -> str:
    if not CELL_NAME.fullmatch(text):
        raise ValueError(CELL_NAME_HINT)
    return text


def image_file(text: str) -> tuple[Path, np.ndarray]:
    path = existing_file(text)
    try:
        return path, read_image(path)
    except StepError as exc:
        raise ValueError(str(exc)) from None


def read_image(path: Path) -> np.ndarray:
    image = cv2.imread(str(path), cv2.IMREAD_COLOR)
    if image is None:
        raise StepError(f"{path}: cannot be read as an image")
    return image


def list_images(folder: Path) -> list[Path]:
    return sorted(p for p in folder.iterdir() if p.suffix.lower() in IMAGE_SUFFIXES and p.is_file())


def write_image(path: Path, image: np.ndarray) -> None:
    if not cv2.haveImageWriter(str(path)):  # cv2.imwrite raises deep inside OpenCV instead
        raise CommandError(
            f"{path}: no image format for {path.suffix or 'a name without extension'!r}; expected a .png file"
        )
    path.parent.mkdir(parents=True, exist_ok=True)
    if not cv2.imwrite(str(path), image):
        raise CommandError(f"cannot write {path}")


def _board_file(text: str) -> tuple[Path, Board]:
    path = existing_file(text)
    try:
        return path, load_board(path)
    except CalibrationError as exc:
        raise ValueError(str(exc)) from None


def choose_board(w: Wizard, args: argparse.Namespace) -> tuple[Path, Board]:
    boards = sorted(Path(args.out_dir, "boards").glob("*.json"))
    default = str(boards[0]) if boards else None
    if args.board is None and w.interactive and boards:
        w.say("Boards found: " + ", ".join(str(b) for b in boards))
    path, board = w.ask("Board definition file", args.board, _board_file, "--board", default)
    w.say(
        f"  board {board.name}: {board.kind}, {board.columns}x{board.rows} inner corners, "
        f"{board.square_mm:g} mm squares" + (", legacy layout" if board.legacy_pattern else "")
    )
    return path, board


def optional_xyz(what: str) -> Callable[[str], np.ndarray | None]:
    def parse(text: str) -> np.ndarray | None:
        if text.strip().lower() in ("", "skip", "-"):
            return None
        return floats(text, 3, what)

    return parse
