"""Write the bundled example frame examples/pile/{rgb,boundaries,occlusions}.png.

The maps are what a well-trained bicameral network would output on this pile
(DESIGN.md's ground truth, slightly blurred and noisy); the RGB picture is a
flat-shaded rendering of the same label image, so the overlay lines up with
it. Deterministic: rerunning rewrites identical files.

Usage: PYTHONPATH=. python scripts/make_example_pile.py [OUT_DIR]
"""

from __future__ import annotations

import sys
from pathlib import Path

import cv2
import numpy as np

from mikado.flat_piles import make_pile
from mikado.ground_truth import boundaries_from_labels

SEED = 2
# Package colours: printed film bags and trays (RGB).
PALETTE = np.array(
    [(200, 40, 40), (230, 190, 40), (235, 235, 225), (40, 90, 180), (60, 150, 70), (220, 120, 40)], np.float32
)


def render_rgb(labels: np.ndarray, seed: int) -> np.ndarray:
    """Flat colour per package, darker towards its visible border, on a grey bin floor."""
    rng = np.random.default_rng(seed)
    colours = PALETTE[rng.integers(0, len(PALETTE), labels.max() + 1)]
    colours[0] = (90, 90, 95)
    rgb = colours[labels]
    edges = boundaries_from_labels(labels).astype(np.uint8)
    inside = cv2.distanceTransform((1 - edges).astype(np.uint8), cv2.DIST_L2, 3)
    shade = 0.55 + 0.45 * np.clip(inside / 12.0, 0, 1)
    shade[labels == 0] = 1.0
    rgb = rgb * shade[..., None] + rng.normal(0, 4, rgb.shape)
    return np.clip(rgb, 0, 255).astype(np.uint8)


def main() -> int:
    out = Path(sys.argv[1]) if len(sys.argv) > 1 else Path("examples/pile")
    out.mkdir(parents=True, exist_ok=True)
    pile = make_pile(SEED, 512, 512, instances=40, noise=0.03)
    cv2.imwrite(str(out / "rgb.png"), cv2.cvtColor(render_rgb(pile.labels, SEED), cv2.COLOR_RGB2BGR))
    cv2.imwrite(str(out / "boundaries.png"), np.round(pile.boundaries * 255).astype(np.uint8))
    cv2.imwrite(str(out / "occlusions.png"), np.round(pile.occlusions * 255).astype(np.uint8))
    print(f"wrote {out}/rgb.png, boundaries.png, occlusions.png")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
