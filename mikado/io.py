"""Scene files on disk (contracts.md §3): writing one scene atomically, reading it back.

A scene is written into a temporary sibling directory and renamed into place, so a scene
directory that exists is complete: `generate --resume` skips exactly the finished scenes even
after a crash or a killed batch job. PNGs are written with a fixed compression level and no
timestamps, so the same seed gives byte-identical files.
"""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path
from typing import TYPE_CHECKING

import cv2
import numpy as np

from edge.atomic_file import write_atomically

if TYPE_CHECKING:  # reading scenes needs no simulator
    from mikado.pile import Scene

DEPTH_SCALE_M = 0.0001  # one depth unit = 0.1 mm
# zlib level 1 everywhere; the PNG row filter and zlib strategy are chosen per kind of image,
# because libpng's default (try every filter on every row) costs most of the writing time:
# - 0/255 masks (boundaries, occlusions, the 60 per-instance masks): no filter, run-length
#   strategy. Long runs of equal bytes are what RLE encodes, and it is 7x faster than the
#   default and smaller (docs/mikado.md "Writing").
# - RGB: the Sub filter (neighbouring pixels are alike) with RLE: 2x faster, same size.
# - uint16 depth and labels: the Up filter (rows are alike).
# Every choice is lossless: the pixels read back are the ones written.
PNG_LEVEL = [cv2.IMWRITE_PNG_COMPRESSION, 1]
PNG_MASK = [*PNG_LEVEL, cv2.IMWRITE_PNG_FILTER, cv2.IMWRITE_PNG_FILTER_NONE,
            cv2.IMWRITE_PNG_STRATEGY, cv2.IMWRITE_PNG_STRATEGY_RLE]  # fmt: skip
PNG_RGB = [*PNG_LEVEL, cv2.IMWRITE_PNG_FILTER, cv2.IMWRITE_PNG_FILTER_SUB,
           cv2.IMWRITE_PNG_STRATEGY, cv2.IMWRITE_PNG_STRATEGY_RLE]  # fmt: skip
PNG_UINT16 = [*PNG_LEVEL, cv2.IMWRITE_PNG_FILTER, cv2.IMWRITE_PNG_FILTER_UP]
SCENE_DIGITS = 6
# Scene folders are named with SCENE_DIGITS digits (contracts.md §3), so a dataset holds at most
# this many; a --count beyond it is a typing error (a million scenes is ~0.6 TB at 640x512).
MAX_SCENES = 10**SCENE_DIGITS


def scene_dir(dataset: Path, index: int) -> Path:
    return Path(dataset) / "scenes" / f"{index:0{SCENE_DIGITS}d}"


def write_image(path: Path, img: np.ndarray, params: list[int] | None = None, atomic: bool = False) -> None:
    """Encode in memory in the format `path`'s extension names, then write (`write_bytes`):
    cv2.imwrite on a full disk said only "libpng error: Write Error" and False, so the command
    could not tell why, and it truncated an existing file first; Python's write gives the errno."""
    suffix = Path(path).suffix
    ok, data = cv2.imencode(suffix, img, params or [])
    if not ok:
        raise OSError(f"{path}: OpenCV cannot encode a {img.dtype} image of shape {img.shape} as {suffix}")
    write_bytes(path, data.tobytes(), atomic)


def write_bytes(path: Path, data: bytes, atomic: bool = False) -> None:
    """Write `data` (through edge.atomic_file when `atomic`: fsync, rename, no temporary file left
    on failure); an OSError names `path`, as a failing write() or close() does not."""
    try:
        if atomic:
            write_atomically(path, data)
        else:
            Path(path).write_bytes(data)
    except OSError as exc:
        raise OSError(exc.errno, exc.strerror or str(exc), str(path)) from None


def _json_bytes(obj: object) -> bytes:
    return (json.dumps(obj, indent=1, sort_keys=True) + "\n").encode()


def write_json_atomic(path: Path, obj: object) -> None:
    """dataset.json and annotations_coco.json: a reader (or a crash, or a full disk) never sees
    half a file; the temporary file is removed when the write fails (it was left behind)."""
    write_bytes(path, _json_bytes(obj), atomic=True)


def scene_metadata(scene: Scene, index: int) -> dict:
    meta = dict(scene.params)
    meta["index"] = index
    meta["camera"] = {**scene.params["camera"], **scene.camera.to_dict()}
    meta["instances"] = [
        {**plan, **inst.to_dict()}
        for plan, inst in zip(scene.params["instances"], scene.instances, strict=True)
    ]
    meta["depth_scale_m"] = DEPTH_SCALE_M
    return meta


def write_scene(scene: Scene, dataset: Path, index: int) -> Path:
    """Write one scene's files; returns its directory."""
    final = scene_dir(dataset, index)
    final.parent.mkdir(parents=True, exist_ok=True)
    tmp = final.with_name(f".{final.name}.tmp{os.getpid()}")
    if tmp.exists():
        shutil.rmtree(tmp)
    try:
        _write_scene_files(scene, tmp, index)
    except BaseException:
        # Ctrl-C or a full disk half-way: the next run has another pid and would never reuse
        # (nor remove) this folder, so each interruption left megabytes of hidden files behind.
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    if final.exists():
        shutil.rmtree(final)
    os.replace(tmp, final)
    return final


def _write_scene_files(scene: Scene, tmp: Path, index: int) -> None:
    """Every file of one scene into the (new) folder `tmp`."""
    (tmp / "masks").mkdir(parents=True)
    write_image(tmp / "rgb.png", cv2.cvtColor(scene.rgb, cv2.COLOR_RGB2BGR), PNG_RGB)
    depth = np.clip(np.round(scene.depth_m / DEPTH_SCALE_M), 0, 65535).astype(np.uint16)
    write_image(tmp / "depth.png", depth, PNG_UINT16)
    write_image(tmp / "labels.png", scene.labels.astype(np.uint16), PNG_UINT16)
    write_image(tmp / "boundaries.png", scene.boundaries.astype(np.uint8) * 255, PNG_MASK)
    write_image(tmp / "occlusions.png", scene.occlusions.astype(np.uint8) * 255, PNG_MASK)
    for inst in scene.instances:
        write_image(tmp / "masks" / f"visible_{inst.id}.png", inst.visible.astype(np.uint8) * 255, PNG_MASK)
        write_image(tmp / "masks" / f"amodal_{inst.id}.png", inst.amodal.astype(np.uint8) * 255, PNG_MASK)
    # Inside the temporary folder: the folder's rename is the atomic step, so no fsync here.
    write_bytes(tmp / "scene.json", _json_bytes(scene_metadata(scene, index)))


# What every reader of scene.json (read_scene, coco, stats) takes from it, and from each instance.
SCENE_KEYS = ("width", "height", "seed", "depth_scale_m", "instances")
INSTANCE_KEYS = ("id", "family", "visible_px", "occlusion_rate")


def read_json(path: Path, required: tuple[str, ...] = ()) -> dict:
    """A JSON object file, or one ValueError naming the file and what is wrong with it: a
    truncated or hand-edited scene.json / dataset.json would otherwise surface as a bare
    JSONDecodeError or a KeyError far from the file."""
    path = Path(path)
    try:
        data = json.loads(path.read_text())
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise ValueError(f"{path}: not valid JSON ({exc})") from None
    if not isinstance(data, dict):
        raise ValueError(f"{path}: expected a JSON object, got {type(data).__name__}")
    missing = [key for key in required if key not in data]
    if missing:
        raise ValueError(f"{path}: missing key(s) {', '.join(missing)}")
    if "instances" in required:
        _check_instances(path, data["instances"])
    return data


def _check_instances(path: Path, instances: object) -> None:
    """scene.json's instance list, each entry an object with INSTANCE_KEYS: an entry without
    `visible_px` (hand-edited, or written by another tool) ended stats and coco in a KeyError."""
    if not isinstance(instances, list):
        raise ValueError(f"{path}: 'instances' is {type(instances).__name__}, expected a list")
    for n, inst in enumerate(instances):
        if not isinstance(inst, dict):
            raise ValueError(f"{path}: instances[{n}] is {type(inst).__name__}, expected an object")
        missing = [key for key in INSTANCE_KEYS if key not in inst]
        if missing:
            raise ValueError(f"{path}: instances[{n}] has no {', '.join(missing)}")


def incomplete_note(dataset: Path, found: int) -> str | None:
    """A dataset with fewer finished scenes than its `dataset.json` announces: a generation that
    stopped (or still runs). Used as it is, not refused, since generation can be resumed later,
    but said (training, evaluation, quantisation, `binpick mikado coco` and `stats`), so that a
    figure or a COCO index is not read as one of the whole set. None when complete or nothing announces."""
    try:
        announced = int(read_json(Path(dataset) / "dataset.json").get("count", 0))
    except (OSError, TypeError, ValueError):  # absent (a hand-made folder) or unreadable
        return None
    if found >= announced:
        return None
    return (
        f"{dataset}: {found} of the {announced} scenes its dataset.json announces are finished "
        "(a generation that stopped or is still running; `binpick mikado generate` with the same "
        "--out resumes it): using those"
    )


def parent_dataset_hint(folder: str | Path) -> str:
    """The text "; did you mean DS?" when `folder` is not a dataset but its parent is one (has a
    dataset.json), else "": `--data DS/scenes` (the scenes folder, not the dataset) was refused
    with "no scenes/ folder" only, which does not say what to type instead. Shared by every
    reader of a dataset folder (mikado's commands, training, evaluation, quantisation)."""
    parent = Path(folder).parent
    return f"; did you mean {parent}?" if (parent / "dataset.json").is_file() else ""


def is_complete(path: Path) -> bool:
    """A scene directory is complete once it exists (it is renamed into place last)."""
    return (Path(path) / "scene.json").is_file()


def _read_png(path: Path, flags: int = cv2.IMREAD_UNCHANGED) -> np.ndarray:
    img = cv2.imread(str(path), flags)
    if img is None:
        raise FileNotFoundError(f"missing or unreadable image {path}")
    return img


def read_scene(path: Path, masks: bool = False) -> dict:
    """A scene's arrays and metadata: rgb (RGB), depth_m, labels, boundaries, occlusions (bool)."""
    path = Path(path)
    meta_path = path / "scene.json"
    if not meta_path.is_file():
        raise FileNotFoundError(f"{path} is not a Mikado scene (no scene.json)")
    meta = read_json(meta_path, SCENE_KEYS)
    out = {
        "meta": meta,
        "rgb": cv2.cvtColor(_read_png(path / "rgb.png", cv2.IMREAD_COLOR), cv2.COLOR_BGR2RGB),
        "depth_m": _read_png(path / "depth.png").astype(np.float32) * float(meta["depth_scale_m"]),
        "labels": _read_png(path / "labels.png"),
        "boundaries": _read_png(path / "boundaries.png") > 0,
        "occlusions": _read_png(path / "occlusions.png") > 0,
    }
    if masks:
        out["visible"] = {
            i["id"]: _read_png(path / "masks" / f"visible_{i['id']}.png") > 0 for i in meta["instances"]
        }
        out["amodal"] = {
            i["id"]: _read_png(path / "masks" / f"amodal_{i['id']}.png") > 0 for i in meta["instances"]
        }
    return out


def list_scenes(dataset: Path) -> list[Path]:
    root = Path(dataset) / "scenes"
    if not Path(dataset).exists():
        raise FileNotFoundError(f"{dataset}: no such folder (expected a Mikado dataset)")
    if not Path(dataset).is_dir():
        raise FileNotFoundError(  # as the other refusals, which every caller catches
            f"{dataset}: is a file, expected a Mikado dataset folder{parent_dataset_hint(dataset)}"
        )
    if not root.is_dir():
        raise FileNotFoundError(
            f"{dataset} is not a Mikado dataset (no scenes/ directory){parent_dataset_hint(dataset)}"
        )
    return sorted(p for p in root.iterdir() if p.is_dir() and not p.name.startswith(".") and is_complete(p))
