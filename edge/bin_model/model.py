"""The commissioned bin: a JSON file and its empty-bin images, written so that no failed save loses
the model in place (`save_bin_model`)."""

from __future__ import annotations

import hashlib
import json
import math
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np

from edge.atomic_file import keep_backup, write_atomically
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


def _image_path(path: Path, kind: str, png: bytes) -> Path:
    """`<stem>_<kind>.<hash>.png` beside `path`: a name of this content, so a save never
    overwrites an image that the model file in place (or a backup of it) refers to."""
    return path.with_name(f"{path.stem}_{kind}.{hashlib.sha256(png).hexdigest()[:12]}.png")


def _encode(image: np.ndarray, path: Path, what: str) -> bytes:
    ok, png = cv2.imencode(".png", image)
    if not ok:
        raise BinModelError(f"{path}: the {what} image could not be encoded")
    return png.tobytes()


def save_bin_model(model: BinModel, path: str | Path) -> Path:
    """Write `path` (JSON) and its images beside it; returns `path`.

    The images are written first, each atomically under a name of its content
    (`<stem>_reference.<hash>.png`, `<stem>_rim.<hash>.png`) that the JSON names, and the JSON
    is replaced last, atomically, after the previous one is hard-linked to the next numbered
    backup (`<name>.bak<N>`, as `save_calibration` keeps). So at every instant `path` is the
    complete old model with its own images or the complete new one, and every backup still
    loads: no image any model file refers to is overwritten or deleted."""
    path = Path(path)
    if path.is_dir():
        raise BinModelError(f"{path}: is a folder, expected a bin model file name (e.g. bin.json)")
    reference = _encode(model.reference, path, "reference")
    rim = None if model.rim_reference is None else _encode(model.rim_reference, path, "rim reference")
    document = {
        "format": FORMAT,
        "image_size": list(model.image_size),
        "interior": np.asarray(model.interior, float).round(3).tolist(),
        "reference": _image_path(path, "reference", reference).name,
        "floor": None if model.floor is None else model.floor.to_dict(),
        "rim_height_mm": round(float(model.rim_height_mm), 3),
        "rim_reference": None if rim is None else _image_path(path, "rim", rim).name,
    }
    write_atomically(_image_path(path, "reference", reference), reference)
    if rim is not None:
        write_atomically(_image_path(path, "rim", rim), rim)
    keep_backup(path)
    write_atomically(path, (json.dumps(document, indent=2) + "\n").encode())
    return path


# What each required key of a model file holds: the one wording of its "missing" and its
# "expected ..., got ..." errors.
REQUIRED = {
    "interior": "at least 3 [u, v] points",
    "image_size": "[width, height] in pixels",
    "reference": "the name of a PNG file beside it",
}


def _image_name(path: Path, key: str, value: object) -> Path:
    """The image file that `key` names, beside the model file."""
    if not isinstance(value, str) or not value or Path(value).name != value:
        raise BinModelError(f"{path}: {key}: expected {REQUIRED['reference']}, got {value!r:.80}")
    return path.with_name(value)


def _number(path: Path, key: str, value: object) -> float:
    """`value` as a finite number; BinModelError naming `key` otherwise."""
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
        raise BinModelError(f"{path}: {key}: expected a finite number, got {value!r:.80}")
    return float(value)


def load_bin_model(path: str | Path) -> BinModel:
    """Read a bin model; BinModelError naming the file and key on anything wrong."""
    path = Path(path)
    try:
        document = json.loads(path.read_text(encoding="utf-8"))
    except OSError as exc:
        raise BinModelError(f"{path}: cannot read the bin model ({exc.strerror or exc})") from None
    except UnicodeDecodeError:
        raise BinModelError(
            f"{path}: not a bin model (expected a UTF-8 JSON file, got binary data)"
        ) from None
    except json.JSONDecodeError as exc:
        raise BinModelError(f"{path}: not valid JSON ({exc})") from None
    except RecursionError:
        raise BinModelError(f"{path}: not a bin model (JSON nested too deeply)") from None
    if not isinstance(document, dict):
        raise BinModelError(f"{path}: expected a JSON object (a bin model), got {type(document).__name__}")
    if "format" not in document:
        raise BinModelError(f"{path}: format: missing (expected {FORMAT}; is this a bin model?)")
    if document["format"] != FORMAT:
        raise BinModelError(f"{path}: format: expected {FORMAT}, got {document['format']!r:.80}")
    for key, expected in REQUIRED.items():
        if key not in document:
            raise BinModelError(f"{path}: {key}: missing (expected {expected})")
    try:
        interior = np.asarray(document["interior"], float)
    except (TypeError, ValueError, OverflowError):
        interior = np.zeros(0)
    if interior.ndim != 2 or interior.shape[1:] != (2,) or len(interior) < 3:
        raise BinModelError(
            f"{path}: interior: expected {REQUIRED['interior']}, got {document['interior']!r:.80}"
        )
    if not np.isfinite(interior).all():
        raise BinModelError(
            f"{path}: interior: expected finite [u, v] points, got {document['interior']!r:.80}"
        )
    size = document["image_size"]
    if not (
        isinstance(size, list)
        and len(size) == 2
        and all(isinstance(v, int) and not isinstance(v, bool) and v > 0 for v in size)
    ):
        raise BinModelError(f"{path}: image_size: expected {REQUIRED['image_size']}, got {size!r:.80}")
    width, height = size
    rim = _number(path, "rim_height_mm", document.get("rim_height_mm", 0.0))
    floor = None
    if document.get("floor") is not None:
        try:
            floor = FloorPlane.from_dict(document["floor"])
        except ValueError as exc:
            raise BinModelError(f"{path}: {exc}") from None
    reference_path = _image_name(path, "reference", document["reference"])
    reference = cv2.imread(str(reference_path), cv2.IMREAD_GRAYSCALE)
    if reference is None:
        raise BinModelError(f"{path}: reference: cannot read {reference_path}")
    if reference.shape != (height, width):
        raise BinModelError(
            f"{path}: reference: expected {width}x{height} (image_size), "
            f"got {reference.shape[1]}x{reference.shape[0]}"
        )
    rim_reference = None
    rim_name = document.get("rim_reference")  # absent from files written before it existed
    if rim_name is not None:
        rim_path = _image_name(path, "rim_reference", rim_name)
        rim_reference = cv2.imread(str(rim_path), cv2.IMREAD_GRAYSCALE)
        if rim_reference is None or rim_reference.shape != reference.shape:
            raise BinModelError(
                f"{path}: rim_reference: cannot read {rim_path} as a {width}x{height} grey image"
            )
    return BinModel(interior, reference, floor, rim, rim_reference)
