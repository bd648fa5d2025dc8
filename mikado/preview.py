"""Contact sheet: RGB tiles with ground-truth boundaries (blue) and occluding sides (orange)."""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np

from mikado.io import list_scenes, read_scene

BLUE = (0, 0, 255)  # RGB
ORANGE = (255, 140, 0)


def overlay(rgb: np.ndarray, boundaries: np.ndarray, occlusions: np.ndarray) -> np.ndarray:
    out = rgb.copy()
    out[boundaries] = BLUE
    out[occlusions] = ORANGE
    return out


def contact_sheet(dataset: Path, out: Path, count: int = 16, columns: int = 4, tile_width: int = 320) -> Path:
    """Write a PNG of the first `count` scenes, `columns` per row; returns its path."""
    if count < 1 or columns < 1 or tile_width < 16:
        raise ValueError(
            f"count {count}, columns {columns}, tile {tile_width}: expected count, columns >= 1, tile >= 16"
        )
    scenes = list_scenes(dataset)[:count]
    if not scenes:
        raise ValueError(f"{dataset} holds no complete scenes")
    tiles = []
    for path in scenes:
        s = read_scene(path)
        img = overlay(s["rgb"], s["boundaries"], s["occlusions"])
        h = int(round(img.shape[0] * tile_width / img.shape[1]))
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
    out.parent.mkdir(parents=True, exist_ok=True)
    if not cv2.imwrite(str(out), cv2.cvtColor(sheet, cv2.COLOR_RGB2BGR)):
        raise OSError(f"cannot write {out}")
    return out
