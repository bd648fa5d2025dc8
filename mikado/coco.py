"""Dataset-level COCO instances file with RLE masks, so other tools read our data.

Written from the scene files (not from memory) after generation, so it also covers scenes
made by other shards or machines: run `binpick mikado generate` on every shard, then once
without `--shard` (or `binpick mikado coco`) to index them all.
"""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
from pycocotools import mask as mask_utils

from mikado.families import FAMILIES
from mikado.io import SCENE_KEYS, _read_png, list_scenes, read_json, write_json_atomic

CATEGORIES = [{"id": i + 1, "name": name, "supercategory": "product"} for i, name in enumerate(FAMILIES)]
CATEGORY_ID = {c["name"]: c["id"] for c in CATEGORIES}


def _rle(mask: np.ndarray) -> tuple[dict, float, list[float]]:
    """JSON-ready RLE plus its area and [x, y, w, h] bbox."""
    rle = mask_utils.encode(np.asfortranarray(mask.astype(np.uint8)))
    area = float(mask_utils.area(rle))
    bbox = [float(v) for v in mask_utils.toBbox(rle)]
    rle["counts"] = rle["counts"].decode("ascii")
    return rle, area, bbox


def build_coco(dataset: Path, scenes: list[Path] | None = None) -> dict:
    """COCO dict: one image per scene, one annotation per instance with a visible pixel.

    `segmentation` is the visible (modal) mask; `amodal_segmentation` the full silhouette (as
    the amodal COCOA/D2SA files do); `occlusion_rate` and the scene-local `instance_id` too.
    """
    dataset = Path(dataset)
    scenes = list_scenes(dataset) if scenes is None else scenes
    images, annotations = [], []
    ann_id = 1
    for img_id, path in enumerate(scenes, start=1):
        meta = read_json(path / "scene.json", SCENE_KEYS)
        images.append(
            {
                "id": img_id,
                "file_name": str((path / "rgb.png").relative_to(dataset)),
                "width": meta["width"],
                "height": meta["height"],
                "seed": meta["seed"],
            }
        )
        for n, inst in enumerate(meta["instances"]):
            if inst["visible_px"] == 0:
                continue
            if inst["family"] not in CATEGORY_ID:  # was a KeyError traceback naming the family only
                raise ValueError(
                    f"{path / 'scene.json'}: instances[{n}] has family {inst['family']!r}; "
                    f"expected one of {sorted(CATEGORY_ID)}"
                )
            vis = _read_png(path / "masks" / f"visible_{inst['id']}.png", cv2.IMREAD_GRAYSCALE) > 0
            amo = _read_png(path / "masks" / f"amodal_{inst['id']}.png", cv2.IMREAD_GRAYSCALE) > 0
            rle, area, bbox = _rle(vis)
            amodal_rle, amodal_area, _ = _rle(amo)
            annotations.append(
                {
                    "id": ann_id,
                    "image_id": img_id,
                    "category_id": CATEGORY_ID[inst["family"]],
                    "segmentation": rle,
                    "area": area,
                    "bbox": bbox,
                    "iscrowd": 0,
                    "amodal_segmentation": amodal_rle,
                    "amodal_area": amodal_area,
                    "occlusion_rate": inst["occlusion_rate"],
                    "instance_id": inst["id"],
                }
            )
            ann_id += 1
    return {
        "info": {"description": "Mikado synthetic piles", "version": "1"},
        "images": images,
        "annotations": annotations,
        "categories": CATEGORIES,
    }


def write_coco(dataset: Path, scenes: list[Path] | None = None) -> Path:
    """Write DATASET/annotations_coco.json of `scenes` (default: the finished ones); a ValueError,
    and the file left as it was, when there are none: an index of 0 images was written (over a
    previous one) and the command said nothing, so a wrong folder or a generation not yet started
    looked like success."""
    scenes = list_scenes(dataset) if scenes is None else scenes
    if not scenes:
        raise ValueError(
            f"{Path(dataset) / 'scenes'}: no finished scene (no sub-folder with a scene.json); "
            "expected at least one to index"
        )
    out = Path(dataset) / "annotations_coco.json"
    write_json_atomic(out, build_coco(dataset, scenes))
    return out
