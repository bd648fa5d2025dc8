"""Training and evaluation samples read from Mikado scene folders (contracts.md §3).

One `MikadoScenes` dataset serves training (random crops, geometric and dynamic augmentation,
depth noise) and evaluation (whole frames, untouched). Everything random is drawn from a NumPy
generator seeded from torch's per-worker RNG, so `torch.manual_seed` makes a run reproducible
while every epoch and every DataLoader worker still sees fresh augmentations.

Geometric augmentation (flip, rotation, scale) is applied to the label and depth maps and the
boundary/occlusion ground truth is then *re-derived* from them with Mikado's own definition:
warping a one-pixel-wide boundary map with interpolation would blur or break it, and the
synthetic ground truth is meant to stay pixel-exact.
"""

from __future__ import annotations

import json
import logging
import math
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np
import torch
from torch.utils.data import Dataset

from binpick_core.model_file import CHANNELS, ModelInfo, Preprocess, default_preprocess, depth_reference_m
from binpick_core.model_file import preprocess as appliance_preprocess
from mikado.depth_noise import DepthNoise, degrade_depth  # noqa: F401 - part of this module's API
from mikado.io import incomplete_note, parent_dataset_hint, read_json

INPUT_CHANNELS = CHANNELS


class DatasetError(ValueError):
    """A dataset folder that does not follow contracts.md §3 (message names the file and key)."""


@dataclass(frozen=True)
class AugmentConfig:
    """Training-time augmentation (thesis Section 5.1.2); ranges are empirical, as in the thesis.

    `preset` decides the Mikado+ extras: RGB channel permutation and under/over-exposure.
    """

    geometric: bool = True
    # Share of crops rotated/scaled arbitrarily (their ground truth re-derived from the warped
    # labels and depth); the others get exact flips and quarter turns of the stored maps.
    warp_probability: float = 0.5
    flip: bool = True
    max_rotation_deg: float = 180.0
    scale_range: tuple[float, float] = (0.8, 1.25)
    dynamic: bool = True
    blur_probability: float = 0.5
    blur_sigma: tuple[float, float] = (0.5, 2.0)
    jitter_gain: float = 0.1  # each RGB channel scaled by 1 ± this
    jitter_offset: float = 12.0  # and shifted by ± this many 8-bit levels
    preset: str = "mikado+"
    exposure_probability: float = 0.5
    exposure_gamma: tuple[float, float] = (0.5, 2.0)  # <1 over-exposes, >1 under-exposes


def preprocess_record(
    input_kind: str, depth_mean_m: float = 1.0, depth_std_m: float = 0.5, depth_reference: str = "camera"
) -> dict:
    """The `binpick.preprocess` record (contracts.md §2) for an input modality: ImageNet
    statistics for RGB (what a pretrained VGG16 encoder expects), the dataset's for depth."""
    if input_kind not in INPUT_CHANNELS:
        raise DatasetError(f"input must be one of {sorted(INPUT_CHANNELS)}, got {input_kind!r}")
    try:
        return default_preprocess(input_kind, depth_mean_m, depth_std_m, depth_reference).to_dict()
    except ValueError as exc:
        raise DatasetError(str(exc)) from None


def normalise(
    rgb: np.ndarray | None,
    depth_m: np.ndarray | None,
    input_kind: str,
    preprocess: dict,
    reference_m: float | None = None,
) -> np.ndarray:
    """Pixels to the network's CxHxW float32 tensor with the appliance's own code
    (`binpick_core.model_file.preprocess`), so training and deployment cannot disagree on the formula.
    `reference_m`: the whole frame's median depth when `depth_m` is a crop ("frame_median" models)."""
    channels = INPUT_CHANNELS[input_kind]
    info = ModelInfo(
        path=Path("<training>"),
        variant="",
        width=1.0,
        encoder="",
        input_kind=input_kind,
        channels=channels,
        input_height=0,
        input_width=0,
        preprocess=Preprocess.from_dict(preprocess, channels),
        model_id=0,
        size_multiple=1,
    )
    return appliance_preprocess(info, rgb, depth_m, reference_m)[0]


def _read(path: Path, flags: int = cv2.IMREAD_UNCHANGED) -> np.ndarray:
    image = cv2.imread(str(path), flags)
    if image is None:
        raise DatasetError(f"{path}: missing or unreadable image")
    return image


_PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"


def frame_size(scene: str | Path) -> tuple[int, int]:
    """(width, height) of a scene's rgb.png from its PNG header (24 bytes, no decoding), so a
    whole dataset can be checked before training; a file that is not a PNG is decoded instead
    (OpenCV reads by content), and one that does not decode is refused as `read_scene` would."""
    path = Path(scene) / "rgb.png"
    try:
        with path.open("rb") as file:
            header = file.read(24)
    except OSError:
        header = b""
    if len(header) == 24 and header[:8] == _PNG_SIGNATURE and header[12:16] == b"IHDR":
        return int.from_bytes(header[16:20], "big"), int.from_bytes(header[20:24], "big")
    height, width = _read(path, cv2.IMREAD_COLOR).shape[:2]
    return width, height


def list_scenes(root: str | Path) -> list[Path]:
    """Scene folders of a Mikado dataset, sorted; a clear error when the folder is not one."""
    root = Path(root)
    scenes_dir = root / "scenes"
    if not root.exists():
        raise DatasetError(f"{root}: no such folder (expected a Mikado dataset)")
    if not root.is_dir():
        raise DatasetError(f"{root}: is a file, expected a Mikado dataset folder")
    if not scenes_dir.is_dir():
        raise DatasetError(
            f"{root}: not a Mikado dataset (no scenes/ folder; see contracts.md §3)"
            f"{parent_dataset_hint(root)}"
        )
    # Hidden folders are scenes still being written (Mikado renames them into place when done).
    scenes = sorted(
        p for p in scenes_dir.iterdir() if not p.name.startswith(".") and (p / "scene.json").is_file()
    )
    if not scenes:
        raise DatasetError(f"{scenes_dir}: no finished scene (no scene.json in any sub-folder)")
    note = incomplete_note(root, len(scenes))
    if note:
        logging.getLogger(__name__).warning(note)
    return scenes


def read_dataset_info(root: str | Path) -> dict:
    """`dataset.json` (preset, count, seed, ...) or {} when absent (e.g. a hand-made folder).

    Read by mikado's own reader (the file named on invalid JSON, bytes that are not UTF-8, or a
    value that is no object), so training, evaluation and quantisation refuse a damaged file
    with the same line as `binpick mikado` does."""
    path = Path(root) / "dataset.json"
    if not path.is_file():
        return {}
    try:
        return read_json(path)
    except ValueError as exc:
        raise DatasetError(str(exc)) from None


ARRAYS = ("rgb", "depth", "labels", "boundaries", "occlusions")


@dataclass
class Scene:
    """One frame's arrays; those not asked for in `read_scene(..., arrays)` are None."""

    path: Path
    meta: dict
    rgb: np.ndarray | None = None  # HxWx3 uint8, RGB order
    depth_m: np.ndarray | None = None  # HxW float32 metres
    labels: np.ndarray | None = None  # HxW int32
    boundaries: np.ndarray | None = None  # HxW uint8 0/1
    occlusions: np.ndarray | None = None  # HxW uint8 0/1


def read_scene(path: str | Path, arrays: tuple[str, ...] = ARRAYS) -> Scene:
    """Read the requested arrays of one scene folder (PNG decoding is most of a training
    sample's cost, so callers ask only for what they use), validating sizes against each other."""
    path = Path(path)
    try:
        meta = json.loads((path / "scene.json").read_text())
    except (OSError, json.JSONDecodeError) as exc:
        raise DatasetError(f"{path / 'scene.json'}: unreadable ({exc})") from exc
    if "depth_scale_m" not in meta:
        raise DatasetError(f"{path / 'scene.json'}: missing key 'depth_scale_m'")
    scene = Scene(path, meta)
    if "rgb" in arrays:
        scene.rgb = cv2.cvtColor(_read(path / "rgb.png", cv2.IMREAD_COLOR), cv2.COLOR_BGR2RGB)
    if "depth" in arrays:
        scene.depth_m = _read(path / "depth.png").astype(np.float32) * np.float32(meta["depth_scale_m"])
    if "labels" in arrays:
        scene.labels = _read(path / "labels.png").astype(np.int32)
    if "boundaries" in arrays:
        scene.boundaries = (_read(path / "boundaries.png") > 127).astype(np.uint8)
    if "occlusions" in arrays:
        scene.occlusions = (_read(path / "occlusions.png") > 127).astype(np.uint8)
    _check_sizes(path, meta, scene)
    return scene


def _check_sizes(path: Path, meta: dict, scene: Scene) -> None:
    """Every map the size scene.json gives (height, width), or, without one, the size most maps
    share: the message names the odd file, not whichever was read first."""
    maps = {
        name: array.shape[:2]
        for name, array in (
            ("rgb.png", scene.rgb),
            ("depth.png", scene.depth_m),
            ("labels.png", scene.labels),
            ("boundaries.png", scene.boundaries),
            ("occlusions.png", scene.occlusions),
        )
        if array is not None
    }
    try:
        expected, source = (int(meta["height"]), int(meta["width"])), "scene.json's height and width"
    except (KeyError, TypeError, ValueError):
        sizes = list(maps.values())
        expected, source = max(sizes, key=sizes.count), "the scene's other maps"
    for name, shape in maps.items():
        if shape != expected:
            raise DatasetError(
                f"{path / name}: size {shape[1]}x{shape[0]} differs from {source} "
                f"({expected[1]}x{expected[0]})"
            )


def focal_length_px(meta: dict) -> float:
    """fx of the scene camera (contracts.md §3 `camera.K`), or a 60° field of view if absent."""
    camera = meta.get("camera", {})
    try:
        return float(np.asarray(camera["K"], dtype=np.float64).reshape(3, 3)[0, 0])
    except (KeyError, ValueError, TypeError):
        width = float(camera.get("width", 512))
        return width / (2.0 * math.tan(math.radians(30.0)))


def scored_depth(scene: Scene, index: int, noise: DepthNoise | None) -> np.ndarray:
    """The depth a held-out frame is scored with (`binpick eval --depth-noise`) and a quantised
    model calibrated on: the scene's exact depth, degraded by `noise` (None: exact) with a
    generator seeded by the frame's index in its dataset, so that every run sees the same frames."""
    if noise is None:
        return scene.depth_m
    return degrade_depth(scene.depth_m, focal_length_px(scene.meta), noise, np.random.default_rng(index))


def _random_affine(
    rng: np.random.Generator, shape: tuple[int, int], out_size: int, cfg: AugmentConfig
) -> np.ndarray:
    """2x3 matrix mapping output pixels to source pixels: a random crop, rotated, scaled, flipped."""
    height, width = shape
    angle = math.radians(rng.uniform(-cfg.max_rotation_deg, cfg.max_rotation_deg))
    scale = math.exp(rng.uniform(math.log(cfg.scale_range[0]), math.log(cfg.scale_range[1])))
    flip = -1.0 if (cfg.flip and rng.random() < 0.5) else 1.0
    # Source centre anywhere the rotated crop's centre can sit inside the image.
    half = out_size / (2.0 * scale)
    cx = rng.uniform(min(half, width / 2), max(width - half, width / 2))
    cy = rng.uniform(min(half, height / 2), max(height - half, height / 2))
    c, s = math.cos(angle) / scale, math.sin(angle) / scale
    linear = np.array([[c * flip, -s], [s * flip, c]])
    offset = np.array([cx, cy]) - linear @ np.array([(out_size - 1) / 2.0, (out_size - 1) / 2.0])
    return np.hstack([linear, offset[:, None]]).astype(np.float64)


def _warp(image: np.ndarray, matrix: np.ndarray, size: int, nearest: bool) -> np.ndarray:
    flags = (cv2.INTER_NEAREST if nearest else cv2.INTER_LINEAR) | cv2.WARP_INVERSE_MAP
    return cv2.warpAffine(image, matrix, (size, size), flags=flags, borderMode=cv2.BORDER_REFLECT_101)


def _dynamic_rgb(rgb: np.ndarray, rng: np.random.Generator, cfg: AugmentConfig) -> np.ndarray:
    """Section 5.1.2: blur one image in two, jitter RGB; Mikado+ adds permutation and exposure."""
    out = rgb.astype(np.float32)
    if rng.random() < cfg.blur_probability:
        out = cv2.GaussianBlur(out, (0, 0), float(rng.uniform(*cfg.blur_sigma)))
    gain = 1.0 + rng.uniform(-cfg.jitter_gain, cfg.jitter_gain, 3)
    offset = rng.uniform(-cfg.jitter_offset, cfg.jitter_offset, 3)
    out = out * gain.astype(np.float32) + offset.astype(np.float32)
    if cfg.preset == "mikado+":
        out = out[..., rng.permutation(3)]
        if rng.random() < cfg.exposure_probability:
            gamma = math.exp(rng.uniform(math.log(cfg.exposure_gamma[0]), math.log(cfg.exposure_gamma[1])))
            out = 255.0 * (np.clip(out, 0, 255) / 255.0) ** gamma
    return np.clip(out, 0, 255).astype(np.uint8)


class MikadoScenes(Dataset):
    """Mikado scenes as `(image CxHxW float32, boundaries 1xHxW, occlusions 1xHxW)` tensors.

    With `crop` set, each item is a random `crop`×`crop` window (augmented when `augment` is
    given); without, the whole frame untouched (evaluation, validation).
    """

    def __init__(
        self,
        scenes: Sequence[str | Path],
        input_kind: str = "rgb",
        preprocess: dict | None = None,
        crop: int | None = 256,
        augment: AugmentConfig | None = None,
        depth_noise: DepthNoise | None = None,
        crops_per_scene: int = 1,
    ) -> None:
        if input_kind not in INPUT_CHANNELS:
            raise DatasetError(f"input must be one of {sorted(INPUT_CHANNELS)}, got {input_kind!r}")
        if not scenes:
            raise DatasetError("no scenes given")
        if crops_per_scene < 1 or (crop is None and crops_per_scene != 1):
            raise DatasetError(
                f"crops_per_scene must be >= 1 (and 1 for whole frames), got {crops_per_scene}"
            )
        self.scenes = [Path(s) for s in scenes]
        self.input_kind = input_kind
        self.preprocess = preprocess or preprocess_record(input_kind)
        self.crop = crop
        self.augment = augment
        self.depth_noise = depth_noise
        self.crops_per_scene = crops_per_scene

    def __len__(self) -> int:
        return len(self.scenes)

    def _rng(self) -> np.random.Generator:
        return np.random.default_rng(int(torch.randint(0, 2**62, ()).item()))

    def __getitem__(self, index: int):
        """One sample `(image, boundaries, occlusions)`; with `crops_per_scene` K > 1, K crops of
        the same scene stacked as [K, ...] (decoding the PNGs once for all of them)."""
        rng = self._rng()
        cfg = self.augment
        geometric = self.crop is not None and cfg is not None and cfg.geometric
        warps = [geometric and rng.random() < cfg.warp_probability for _ in range(self.crops_per_scene)]
        needed = {"rgb"}
        if self.input_kind != "rgb" or any(warps):  # depth also feeds the ground truth of warped crops
            needed.add("depth")
        if any(warps):
            needed.add("labels")
        if not all(warps):
            needed |= {"boundaries", "occlusions"}
        scene = read_scene(self.scenes[index], tuple(needed))
        reference = None  # a crop is normalised against its whole frame's median, as on the appliance
        if self.preprocess.get("depth_reference") == "frame_median" and self.input_kind != "rgb":
            reference = depth_reference_m(scene.depth_m)
        samples = [self._sample(scene, rng, warp, geometric, reference) for warp in warps]
        if self.crops_per_scene == 1:
            return samples[0]
        return tuple(torch.stack(parts) for parts in zip(*samples, strict=True))

    def _sample(
        self, scene: Scene, rng: np.random.Generator, warp: bool, geometric: bool, reference_m: float | None
    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        cfg = self.augment
        if warp:
            rgb, depth, boundaries, occlusions = self._warped_crop(scene, rng)
        else:  # an RGB model's plain crops never decode the depth plane (None here)
            planes = (scene.rgb, scene.depth_m, scene.boundaries, scene.occlusions)
            maps = [m for m in planes if m is not None]
            if self.crop is not None:
                maps = _plain_crop(maps, rng, self.crop)
            if geometric:
                maps = _exact_symmetry(maps, rng, cfg)
            if scene.depth_m is None:
                rgb, boundaries, occlusions = maps
                depth = None
            else:
                rgb, depth, boundaries, occlusions = maps
        if cfg is not None and cfg.dynamic and self.input_kind != "depth":
            rgb = _dynamic_rgb(rgb, rng, cfg)
        if self.depth_noise is not None and self.input_kind != "rgb":
            depth = degrade_depth(depth, focal_length_px(scene.meta), self.depth_noise, rng)
        image = normalise(
            rgb if self.input_kind != "depth" else None,
            depth if self.input_kind != "rgb" else None,
            self.input_kind,
            self.preprocess,
            reference_m,
        )
        return (
            torch.from_numpy(np.ascontiguousarray(image)),
            torch.from_numpy(boundaries[None].astype(np.float32)),
            torch.from_numpy(occlusions[None].astype(np.float32)),
        )

    def _warped_crop(
        self, scene: Scene, rng: np.random.Generator
    ) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
        """Rotated/scaled/flipped crop; boundaries and occlusions re-derived by Mikado's rules."""
        from mikado.ground_truth import ground_truth

        size = int(self.crop)
        # Warp a margin around the crop so the 9×9 occlusion windows at its edge see real pixels.
        margin = 8
        matrix = _random_affine(rng, scene.rgb.shape[:2], size + 2 * margin, self.augment)
        rgb = _warp(scene.rgb, matrix, size + 2 * margin, nearest=False)
        depth = _warp(scene.depth_m, matrix, size + 2 * margin, nearest=True)
        labels = _warp(scene.labels.astype(np.float32), matrix, size + 2 * margin, nearest=True)
        boundaries, occlusions = ground_truth(labels.astype(np.int32), depth)
        inner = slice(margin, margin + size)
        return (
            np.ascontiguousarray(rgb[inner, inner]),
            np.ascontiguousarray(depth[inner, inner]),
            np.asarray(boundaries[inner, inner] > 0, np.uint8),
            np.asarray(occlusions[inner, inner] > 0, np.uint8),
        )


def _plain_crop(arrays: list[np.ndarray], rng: np.random.Generator, size: int) -> list[np.ndarray]:
    """The same random `size`×`size` window of every array (zero-padded when the frame is smaller)."""
    height, width = arrays[0].shape[:2]
    if height < size or width < size:
        pad_y, pad_x = max(0, size - height), max(0, size - width)
        arrays = [np.pad(a, ((0, pad_y), (0, pad_x)) + ((0, 0),) * (a.ndim - 2)) for a in arrays]
        height, width = arrays[0].shape[:2]
    y = int(rng.integers(0, height - size + 1))
    x = int(rng.integers(0, width - size + 1))
    return [a[y : y + size, x : x + size] for a in arrays]


def _exact_symmetry(
    arrays: list[np.ndarray], rng: np.random.Generator, cfg: AugmentConfig
) -> list[np.ndarray]:
    """Random flip and quarter turn: exact for the ground truth (4-adjacency and square windows
    are symmetric under them), so no re-derivation is needed."""
    turns = int(rng.integers(0, 4)) if cfg.max_rotation_deg >= 90 else 0
    flip = cfg.flip and rng.random() < 0.5
    out = []
    for a in arrays:
        a = np.rot90(a, turns, axes=(0, 1))
        out.append(np.ascontiguousarray(a[:, ::-1] if flip else a))
    return out


def depth_statistics(
    scenes: Sequence[str | Path], limit: int = 32, depth_reference: str = "camera"
) -> tuple[float, float]:
    """Mean and standard deviation (m) of valid depth over up to `limit` scenes, for normalising
    (of depth behind each frame's median for a "frame_median" model)."""
    values = []
    for path in list(scenes)[:limit]:
        scene = read_scene(path, ("depth",))
        valid = scene.depth_m[scene.depth_m > 0]
        if depth_reference == "frame_median":
            valid = valid - np.float32(depth_reference_m(scene.depth_m))
        values.append(valid[:: max(1, valid.size // 4096)])
    data = np.concatenate(values) if values else np.array([1.0])
    return float(data.mean()), float(max(data.std(), 1e-3))
