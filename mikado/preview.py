"""Contact sheet: RGB tiles with ground-truth boundaries (blue) and occluding sides (orange)."""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np

from mikado.generate import MAX_IMAGE_SIDE
from mikado.io import list_scenes, read_json, read_scene, write_image

BLUE = (0, 0, 255)  # RGB
ORANGE = (255, 140, 0)


def overlay(rgb: np.ndarray, boundaries: np.ndarray, occlusions: np.ndarray) -> np.ndarray:
    out = rgb.copy()
    out[boundaries] = BLUE
    out[occlusions] = ORANGE
    return out


def contact_sheet(
    dataset: Path,
    out: Path,
    count: int = 16,
    columns: int = 4,
    tile_width: int = 320,
    scenes: list[Path] | None = None,
) -> Path:
    """Write a PNG of the first `count` of `scenes` (default: the dataset's finished ones),
    `columns` per row; returns its path. The command passes the list it checked the dataset
    with, so a dataset of many scenes is not listed (a stat per scene) twice."""
    if count < 1 or columns < 1 or tile_width < 16:
        raise ValueError(
            f"count {count}, columns {columns}, tile {tile_width}: expected count, columns >= 1, tile >= 16"
        )
    scenes = (list_scenes(dataset) if scenes is None else scenes)[:count]
    if not scenes:
        raise ValueError(f"{dataset} holds no complete scenes")
    # The sheet's size from the scenes' metadata, before a pixel is decoded: a large --count with
    # a large --tile asked for gigabytes. Its sides are bounded like a rendered frame's.
    sizes = [_frame_size(path) for path in scenes]
    sheet_width = columns * tile_width
    sheet_height = -(-len(scenes) // columns) * max(_tile_height(size, tile_width) for size in sizes)
    if max(sheet_width, sheet_height) > MAX_IMAGE_SIDE:
        raise ValueError(
            f"--count {count} --columns {columns} --tile {tile_width}: the sheet of {len(scenes)} scene(s) "
            f"would be {sheet_width}x{sheet_height} px; expected at most {MAX_IMAGE_SIDE} px a side "
            "(fewer scenes, a smaller tile or other columns)"
        )
    tiles = []
    for path, (width, height) in zip(scenes, sizes, strict=True):
        s = read_scene(path)
        img = overlay(s["rgb"], s["boundaries"], s["occlusions"])
        if img.shape[:2] != (height, width):  # the sheet was sized from scene.json
            found = f"{img.shape[1]}x{img.shape[0]}"
            raise ValueError(f"{path / 'rgb.png'}: {found} px, expected scene.json's {width}x{height}")
        h = _tile_height((width, height), tile_width)
        # Nearest neighbour keeps one-pixel ground-truth lines visible when downscaling.
        tile = cv2.resize(img, (tile_width, h), interpolation=cv2.INTER_NEAREST)
        cv2.putText(tile, path.name, (6, 18), cv2.FONT_HERSHEY_SIMPLEX, 0.5, (255, 255, 255), 2, cv2.LINE_AA)
        cv2.putText(tile, path.name, (6, 18), cv2.FONT_HERSHEY_SIMPLEX, 0.5, (0, 0, 0), 1, cv2.LINE_AA)
        tiles.append(tile)
    th = max(t.shape[0] for t in tiles)
    rows = []
    for r in range(0, len(tiles), columns):
        row = [np.pad(t, ((0, th - t.shape[0]), (0, 0), (0, 0))) for t in tiles[r : r + columns]]
        row += [np.zeros((th, tile_width, 3), np.uint8)] * (columns - len(row))
        rows.append(np.concatenate(row, axis=1))
    sheet = np.concatenate(rows, axis=0)
    out = Path(out)
    # Written whole or not at all: cv2.imwrite truncated an existing sheet first, so a full disk
    # lost it (with only libpng's "Write Error" to say why).
    write_image(out, cv2.cvtColor(sheet, cv2.COLOR_RGB2BGR), atomic=True)
    return out


def _frame_size(scene: Path) -> tuple[int, int]:
    """(width, height) from scene.json (one ValueError naming the file and key otherwise)."""
    path = scene / "scene.json"
    meta = read_json(path, ("width", "height"))
    for key in ("width", "height"):
        if isinstance(meta[key], bool) or not isinstance(meta[key], int) or meta[key] < 1:
            raise ValueError(f"{path}: '{key}' is {meta[key]!r}, expected a whole number of pixels >= 1")
    return meta["width"], meta["height"]


def _tile_height(size: tuple[int, int], tile_width: int) -> int:
    width, height = size
    return max(1, int(round(height * tile_width / width)))
