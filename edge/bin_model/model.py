"""The commissioned bin: a JSON file and its empty-bin reference image, written atomically."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np

from edge.atomic_file import write_atomically
from edge.bin_model.floor import FloorPlane

FORMAT = 1


def interior_mask(polygon: np.ndarray, shape: tuple[int, int]) -> np.ndarray:
    """The pixels of a frame of `shape` (h, w) inside `polygon` (N x 2 camera px, corners may lie
    outside the frame), as H x W bool: the one way every step draws the bin's interior."""
    mask = np.zeros(shape, np.uint8)
    cv2.fillPoly(mask, [np.round(np.asarray(polygon, float)).astype(np.int32)], 1)
    return mask.astype(bool)


class BinModelError(ValueError):
    """A bin model file that cannot be used; the message names the file, key and problem."""


@dataclass
class BinModel:
    """The empty bin as commissioned, in the camera's pixels.

    `interior`: the floor's polygon (N x 2, u then v). `reference`: the empty bin's grayscale
    frame (H x W uint8). `floor`: the floor plane from depth (None without a depth camera);
    `rim_height_mm`: the rim's median height above it (0 without depth); `rim_reference`: the
    empty bin's height map as `locate.rim_view` shows it (H x W uint8; None without depth or
    with a rim too low to register on)."""

    interior: np.ndarray
    reference: np.ndarray
    floor: FloorPlane | None = None
    rim_height_mm: float = 0.0
    rim_reference: np.ndarray | None = None

    @property
    def image_size(self) -> tuple[int, int]:
        """(width, height) of the frames the model was recorded on."""
        return int(self.reference.shape[1]), int(self.reference.shape[0])


def _reference_path(path: Path) -> Path:
    return path.with_name(path.stem + "_reference.png")


def _rim_path(path: Path) -> Path:
    return path.with_name(path.stem + "_rim.png")


def save_bin_model(model: BinModel, path: str | Path) -> Path:
    """Write `path` (JSON) and its reference image beside it, each atomically (image first, so a
    reader never finds a JSON without its image)."""
    path = Path(path)
    ok, png = cv2.imencode(".png", model.reference)
    if not ok:
        raise BinModelError(f"{path}: the reference image could not be encoded")
    write_atomically(_reference_path(path), png.tobytes())
    if model.rim_reference is not None:
        ok, rim_png = cv2.imencode(".png", model.rim_reference)
        if not ok:
            raise BinModelError(f"{path}: the rim reference image could not be encoded")
        write_atomically(_rim_path(path), rim_png.tobytes())
    document = {
        "format": FORMAT,
        "image_size": list(model.image_size),
        "interior": np.asarray(model.interior, float).round(3).tolist(),
        "reference": _reference_path(path).name,
        "floor": None if model.floor is None else model.floor.to_dict(),
        "rim_height_mm": round(float(model.rim_height_mm), 3),
        "rim_reference": None if model.rim_reference is None else _rim_path(path).name,
    }
    write_atomically(path, (json.dumps(document, indent=2) + "\n").encode())
    return path


def load_bin_model(path: str | Path) -> BinModel:
    """Read a bin model; BinModelError naming the file and key on anything wrong."""
    path = Path(path)
    try:
        document = json.loads(path.read_text())
    except OSError as exc:
        raise BinModelError(f"{path}: cannot read the bin model ({exc.strerror or exc})") from None
    except json.JSONDecodeError as exc:
        raise BinModelError(f"{path}: not valid JSON ({exc})") from None
    if not isinstance(document, dict) or document.get("format") != FORMAT:
        raise BinModelError(f"{path}: format: expected {FORMAT}, got {document.get('format')!r}")
    try:
        interior = np.asarray(document["interior"], float)
        width, height = (int(v) for v in document["image_size"])
        reference_name = str(document["reference"])
        rim = float(document.get("rim_height_mm", 0.0))
        floor = None if document.get("floor") is None else FloorPlane.from_dict(document["floor"])
        rim_name = document.get("rim_reference")  # absent from files written before it existed
    except (KeyError, TypeError, ValueError) as exc:
        raise BinModelError(f"{path}: missing or malformed key {exc}") from None
    if interior.ndim != 2 or interior.shape[1] != 2 or len(interior) < 3:
        raise BinModelError(
            f"{path}: interior: expected at least 3 [u, v] points, got shape {interior.shape}"
        )
    reference = cv2.imread(str(path.with_name(reference_name)), cv2.IMREAD_GRAYSCALE)
    if reference is None:
        raise BinModelError(f"{path}: reference: cannot read {path.with_name(reference_name)}")
    if reference.shape != (height, width):
        raise BinModelError(
            f"{path}: reference: expected {width}x{height} (image_size), "
            f"got {reference.shape[1]}x{reference.shape[0]}"
        )
    rim_reference = None
    if rim_name is not None:
        rim_reference = cv2.imread(str(path.with_name(str(rim_name))), cv2.IMREAD_GRAYSCALE)
        if rim_reference is None or rim_reference.shape != reference.shape:
            raise BinModelError(
                f"{path}: rim_reference: cannot read {path.with_name(str(rim_name))} "
                f"as a {width}x{height} grey image"
            )
    return BinModel(interior, reference, floor, rim, rim_reference)
