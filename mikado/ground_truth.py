"""Boundary and occlusion ground truth from a label map and a depth map (DESIGN.md, exactly).

- Boundary pixel: 4-adjacent to a pixel of another label (background 0 is a label too).
- Occlusion pixel: for a boundary pixel whose 9x9 window holds exactly two labels whose mean
  depths in that window differ by more than a tolerance, the nearer label's non-boundary pixels
  in the 3x3 neighbourhood of that boundary pixel ("next to" it; 8-neighbours so the occluding
  side forms an unbroken line around corners). Boundary pixels themselves stay 0, and so do
  windows with more than two labels or equal depths.

Only boundary pixels are examined (a few percent of the image), so the 81-pixel windows are
gathered for them alone with NumPy fancy indexing: no Python loop over pixels.
"""

from __future__ import annotations

import numpy as np

WINDOW = 9
DEFAULT_DEPTH_TOLERANCE_M = 0.001


def boundaries_from_labels(labels: np.ndarray) -> np.ndarray:
    """Boolean HxW: pixels with a 4-neighbour of a different label."""
    labels = np.asarray(labels)
    if labels.ndim != 2:
        raise ValueError(f"labels must be a 2-D array, got shape {labels.shape}")
    b = np.zeros(labels.shape, dtype=bool)
    dv = labels[1:, :] != labels[:-1, :]
    dh = labels[:, 1:] != labels[:, :-1]
    b[1:, :] |= dv
    b[:-1, :] |= dv
    b[:, 1:] |= dh
    b[:, :-1] |= dh
    return b


def _windows_at(padded: np.ndarray, rows: np.ndarray, cols: np.ndarray, radius: int) -> np.ndarray:
    """(n, (2r+1)^2) values of `padded` around (rows, cols) given in unpadded coordinates."""
    offs = np.arange(-radius, radius + 1)
    dr, dc = np.meshgrid(offs, offs, indexing="ij")
    return padded[rows[:, None] + radius + dr.ravel()[None, :], cols[:, None] + radius + dc.ravel()[None, :]]


def occlusions_from_labels(
    labels: np.ndarray,
    depth_m: np.ndarray,
    boundaries: np.ndarray | None = None,
    depth_tolerance_m: float = DEFAULT_DEPTH_TOLERANCE_M,
    window: int = WINDOW,
) -> np.ndarray:
    """Boolean HxW occlusion map ("unoccluded side") as defined in DESIGN.md."""
    labels = np.asarray(labels)
    depth = np.asarray(depth_m, dtype=np.float64)
    if labels.shape != depth.shape:
        raise ValueError(f"labels shape {labels.shape} and depth shape {depth.shape} differ")
    if boundaries is None:
        boundaries = boundaries_from_labels(labels)
    h, w = labels.shape
    occ = np.zeros((h, w), dtype=bool)
    rows, cols = np.nonzero(boundaries)
    if rows.size == 0:
        return occ
    r = window // 2
    # Pad with a sentinel label (-1) that never counts: windows near the border see fewer pixels.
    lab = np.pad(labels.astype(np.int64), r, mode="constant", constant_values=-1)
    dep = np.pad(depth, r, mode="constant", constant_values=0.0)
    wl = _windows_at(lab, rows, cols, r)
    wd = _windows_at(dep, rows, cols, r)
    valid = wl >= 0
    big = np.iinfo(np.int64).max
    lo = np.where(valid, wl, big).min(axis=1)
    hi = np.where(valid, wl, -1).max(axis=1)
    is_lo = wl == lo[:, None]
    is_hi = wl == hi[:, None]
    two = (lo != hi) & ~np.any(valid & ~is_lo & ~is_hi, axis=1)
    n_lo = is_lo.sum(axis=1)
    n_hi = is_hi.sum(axis=1)
    mean_lo = np.where(is_lo, wd, 0.0).sum(axis=1) / np.maximum(n_lo, 1)
    mean_hi = np.where(is_hi, wd, 0.0).sum(axis=1) / np.maximum(n_hi, 1)
    keep = two & (np.abs(mean_lo - mean_hi) > depth_tolerance_m)
    if not np.any(keep):
        return occ
    upper = np.where(mean_lo < mean_hi, lo, hi)[keep]
    rows, cols = rows[keep], cols[keep]
    lab_c = labels.astype(np.int64)
    for drow in (-1, 0, 1):
        for dcol in (-1, 0, 1):
            if drow == 0 and dcol == 0:
                continue
            rr, cc = rows + drow, cols + dcol
            inside = (rr >= 0) & (rr < h) & (cc >= 0) & (cc < w)
            rr, cc, up = rr[inside], cc[inside], upper[inside]
            hit = (lab_c[rr, cc] == up) & ~boundaries[rr, cc]
            occ[rr[hit], cc[hit]] = True
    return occ


def ground_truth(
    labels: np.ndarray, depth_m: np.ndarray, depth_tolerance_m: float = DEFAULT_DEPTH_TOLERANCE_M
) -> tuple[np.ndarray, np.ndarray]:
    """(boundaries, occlusions) as boolean HxW maps."""
    b = boundaries_from_labels(labels)
    return b, occlusions_from_labels(labels, depth_m, b, depth_tolerance_m)


def depth_from_order(labels: np.ndarray, level: np.ndarray | None = None, step_m: float = 0.01) -> np.ndarray:
    """A depth map (metres) for a 2.5D pile without a renderer: label k lies at `level[k]`.

    The cheap mode for label-ordered piles (flat shapes drawn in painter's order): by default
    the level is the label itself (a later-drawn instance is nearer), and the background (label
    0, level 0) is the farthest. Equal levels are equal depths (touching items at one height:
    no occlusion between them). Levels are `step_m` apart, well above the 1 mm tolerance of
    `occlusions_from_labels`, so the ground truth is `ground_truth(labels, depth_from_order(labels))`.
    """
    labels = np.asarray(labels)
    if labels.size and labels.min() < 0:
        raise ValueError("labels must be >= 0 (0 = background)")
    top = int(labels.max()) if labels.size else 0
    if level is None:
        level = np.arange(top + 1, dtype=np.float64)
    level = np.asarray(level, dtype=np.float64)
    if level.ndim != 1 or level.size <= top:
        raise ValueError(f"level must give one level per label 0..{top}, got shape {level.shape}")
    return (level.max() + 1.0 - level)[labels] * step_m


def occlusion_rate(visible_px: int, amodal_px: int) -> float:
    """Fraction of the instance hidden by others (0 = fully visible, 1 = fully hidden)."""
    if amodal_px <= 0:
        return 1.0
    return float(min(1.0, max(0.0, 1.0 - visible_px / amodal_px)))
