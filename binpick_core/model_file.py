"""The appliance's view of a model file: metadata and input preprocessing, without torch.

`binpick export` records in the ONNX `metadata_props` everything the appliance needs to feed the
network the way it was trained (docs/contracts.md section 2). This module reads and validates
that record (`read_model_info`) and turns camera frames into the network's input tensor
(`preprocess`). It needs only numpy and onnx, so the appliance never imports torch.
"""

from __future__ import annotations

import hashlib
import json
import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

FORMAT = "1"
INPUT_NAME = "image"
OUTPUT_NAMES = ("boundaries", "occlusions")
CHANNELS = {"rgb": 3, "depth": 1, "rgbd": 4}
DEPTH_REFERENCES = ("camera", "frame_median")
PREFIX = "binpick."
# ImageNet statistics: the VGG16 encoder's pretraining normalised RGB with these.
IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)


class ModelFileError(ValueError):
    """A model file that cannot drive the appliance; the message names the file and the key."""


@dataclass(frozen=True)
class Preprocess:
    """tensor channel c = (value_c - mean[c]) / std[c]; RGB value = 8-bit pixel * rgb_scale,
    depth value = metres from the camera, or (`depth_reference = "frame_median"`) metres behind
    the frame's median depth; channels R, G, B then depth.

    Why a relative depth: a network fed metres from the camera learns the camera height of its
    training scenes (Mikado's is about 0.25 m, a cell's 0.8 to 1.5 m) and sees nonsense on any
    other cell; depth relative to the frame's median keeps what separates instances (the steps
    between them, in metres) and drops the mounting height. Files without the field are "camera".
    """

    channel_order: str = "RGB"
    rgb_scale: float = 1.0 / 255.0
    mean: tuple[float, ...] = IMAGENET_MEAN
    std: tuple[float, ...] = IMAGENET_STD
    depth_unit: str = "m"
    depth_reference: str = "camera"

    def to_dict(self) -> dict[str, Any]:
        return {
            "channel_order": self.channel_order,
            "rgb_scale": self.rgb_scale,
            "mean": list(self.mean),
            "std": list(self.std),
            "depth_unit": self.depth_unit,
            "depth_reference": self.depth_reference,
        }

    @classmethod
    def from_dict(cls, data: Any, channels: int, where: str = "preprocess") -> Preprocess:
        """Validate a preprocess record for a `channels`-channel input; errors name the field."""
        if not isinstance(data, dict):
            raise ModelFileError(f"{where}: expected a JSON object, got {type(data).__name__}")
        required = ("channel_order", "rgb_scale", "mean", "std", "depth_unit")
        for key in required:
            if key not in data:
                raise ModelFileError(f"{where}: missing field '{key}' (expected {list(required)})")
        if data["channel_order"] != "RGB":
            raise ModelFileError(f"{where}.channel_order = {data['channel_order']!r}, expected 'RGB'")
        if data["depth_unit"] != "m":
            raise ModelFileError(f"{where}.depth_unit = {data['depth_unit']!r}, expected 'm'")
        scale = data["rgb_scale"]
        if not isinstance(scale, (int, float)) or not math.isfinite(scale) or scale <= 0:
            raise ModelFileError(f"{where}.rgb_scale = {scale!r}, expected a positive number")
        for key in ("mean", "std"):
            values = data[key]
            if (
                not isinstance(values, list)
                or len(values) != channels
                or not all(isinstance(v, (int, float)) and math.isfinite(v) for v in values)
            ):
                raise ModelFileError(f"{where}.{key} = {values!r}, expected {channels} finite numbers")
        if any(s <= 0 for s in data["std"]):
            raise ModelFileError(f"{where}.std = {data['std']!r}, expected every value > 0")
        reference = data.get("depth_reference", "camera")
        if reference not in DEPTH_REFERENCES:
            raise ModelFileError(
                f"{where}.depth_reference = {reference!r}, expected one of {list(DEPTH_REFERENCES)}"
            )
        return cls(
            channel_order="RGB",
            rgb_scale=float(scale),
            mean=tuple(float(v) for v in data["mean"]),
            std=tuple(float(v) for v in data["std"]),
            depth_unit="m",
            depth_reference=reference,
        )


def depth_reference_m(depth_m: np.ndarray) -> float:
    """The frame's median valid depth (0 for a frame without any): the reference of a
    "frame_median" model. Taken on the whole camera frame, before padding or cropping."""
    valid = depth_m[np.isfinite(depth_m) & (depth_m > 0)]
    return float(np.median(valid)) if valid.size else 0.0


def frame_reference_m(info: ModelInfo, depth_m: np.ndarray | None) -> float | None:
    """The reference `preprocess` subtracts from this whole frame's depth: its median for a
    "frame_median" model, None otherwise (nothing to compute). Callers that pad, crop or flip the
    frame several times take it once here and pass it on."""
    if depth_m is None or info.preprocess.depth_reference != "frame_median":
        return None
    return depth_reference_m(depth_m)


def default_preprocess(
    input_kind: str, depth_mean_m: float = 1.0, depth_std_m: float = 0.5, depth_reference: str = "camera"
) -> Preprocess:
    """ImageNet statistics for RGB (the VGG16 encoder's pretraining); depth statistics are the
    caller's (training should pass its dataset's), defaulting to a bin about 1 m from the camera."""
    if input_kind not in CHANNELS:
        raise ValueError(f"input kind {input_kind!r}, expected one of {sorted(CHANNELS)}")
    if depth_reference not in DEPTH_REFERENCES:
        raise ValueError(f"depth reference {depth_reference!r}, expected one of {DEPTH_REFERENCES}")
    depth_mean, depth_std = (depth_mean_m,), (depth_std_m,)
    mean = {"rgb": IMAGENET_MEAN, "depth": depth_mean, "rgbd": IMAGENET_MEAN + depth_mean}[input_kind]
    std = {"rgb": IMAGENET_STD, "depth": depth_std, "rgbd": IMAGENET_STD + depth_std}[input_kind]
    return Preprocess(mean=mean, std=std, depth_reference=depth_reference)


@dataclass(frozen=True)
class ModelInfo:
    """Validated metadata of an exported model (contracts.md section 2)."""

    path: Path
    variant: str
    width: float
    encoder: str
    input_kind: str  # "rgb" | "depth" | "rgbd"
    channels: int
    input_height: int  # 0 when dynamic
    input_width: int  # 0 when dynamic
    preprocess: Preprocess
    model_id: int
    provenance: dict[str, Any] = field(default_factory=dict)
    size_multiple: int = 16
    fp16: bool = False  # weights/compute in fp16 inside the graph; I/O stays float32
    denormals_flushed: int | None = None  # denormal weights set to 0 by export; None: not recorded

    @property
    def dynamic(self) -> bool:
        return self.input_height == 0 or self.input_width == 0

    @property
    def uses_rgb(self) -> bool:
        return self.input_kind in ("rgb", "rgbd")

    @property
    def uses_depth(self) -> bool:
        return self.input_kind in ("depth", "rgbd")


def _int(props: dict[str, str], key: str, where: str, low: int, high: int) -> int:
    raw = props[key]
    try:
        value = int(raw)
    except ValueError:
        raise ModelFileError(f"{where}: '{key}' = {raw!r}, expected an integer") from None
    if not low <= value <= high:
        raise ModelFileError(f"{where}: '{key}' = {value}, expected {low}..{high}")
    return value


def _json(props: dict[str, str], key: str, where: str) -> Any:
    try:
        return json.loads(props[key])
    except json.JSONDecodeError as exc:
        raise ModelFileError(f"{where}: '{key}' is not valid JSON ({exc})") from None


def parse_metadata(props: dict[str, str], where: str = "model") -> dict[str, Any]:
    """Validate `binpick.*` metadata properties; returns ModelInfo fields (no path)."""
    required = [
        "format", "variant", "width", "encoder", "input", "channels",
        "input_height", "input_width", "preprocess", "model_id", "provenance",
    ]  # fmt: skip
    for name in required:
        if PREFIX + name not in props:
            raise ModelFileError(
                f"{where}: metadata key '{PREFIX + name}' is missing (was it written by binpick export?)"
            )
    if props["binpick.format"] != FORMAT:
        raise ModelFileError(
            f"{where}: 'binpick.format' = {props['binpick.format']!r}, this reader knows {FORMAT!r}"
        )
    input_kind = props["binpick.input"]
    if input_kind not in CHANNELS:
        raise ModelFileError(f"{where}: 'binpick.input' = {input_kind!r}, expected one of {sorted(CHANNELS)}")
    channels = _int(props, "binpick.channels", where, 1, 4)
    if channels != CHANNELS[input_kind]:
        raise ModelFileError(
            f"{where}: 'binpick.channels' = {channels} contradicts 'binpick.input' = {input_kind!r} "
            f"(expected {CHANNELS[input_kind]})"
        )
    try:
        width = float(props["binpick.width"])
    except ValueError:
        raise ModelFileError(
            f"{where}: 'binpick.width' = {props['binpick.width']!r}, expected a number"
        ) from None
    if not (math.isfinite(width) and width > 0):
        raise ModelFileError(f"{where}: 'binpick.width' = {width}, expected a positive fraction")
    preprocess = Preprocess.from_dict(
        _json(props, "binpick.preprocess", where), channels, f"{where}: 'binpick.preprocess'"
    )
    provenance = _json(props, "binpick.provenance", where)
    if not isinstance(provenance, dict):
        raise ModelFileError(f"{where}: 'binpick.provenance' must be a JSON object")
    multiple = (
        _int(props, "binpick.size_multiple", where, 1, 1024) if "binpick.size_multiple" in props else 16
    )
    return {
        "variant": props["binpick.variant"],
        "width": width,
        "encoder": props["binpick.encoder"],
        "input_kind": input_kind,
        "channels": channels,
        "input_height": _int(props, "binpick.input_height", where, 0, 65535),
        "input_width": _int(props, "binpick.input_width", where, 0, 65535),
        "preprocess": preprocess,
        "model_id": _int(props, "binpick.model_id", where, 0, 65535),
        "provenance": provenance,
        "size_multiple": multiple,
        "fp16": props.get("binpick.fp16", "0") == "1",
        "denormals_flushed": (
            _int(props, "binpick.denormals_flushed", where, 0, 2**62)
            if "binpick.denormals_flushed" in props
            else None
        ),
    }


def read_model_info(path: str | Path) -> ModelInfo:
    """Read and validate an exported model's metadata and I/O names; ModelFileError otherwise."""
    import onnx

    path = Path(path)
    if not path.is_file():
        raise ModelFileError(f"model file '{path}' does not exist")
    if path.stat().st_size == 0:  # onnx parses no bytes as an empty model: "metadata key ... missing"
        raise ModelFileError(f"model file '{path}' is an empty file (0 bytes): expected an ONNX model")
    try:
        model = onnx.load(str(path), load_external_data=False)
    except Exception as exc:
        raise ModelFileError(f"model file '{path}' is not a readable ONNX model ({exc})") from None
    props = {p.key: p.value for p in model.metadata_props}
    fields = parse_metadata(props, where=f"model file '{path}'")
    inputs = [i.name for i in model.graph.input]
    outputs = [o.name for o in model.graph.output]
    if inputs != [INPUT_NAME]:
        raise ModelFileError(f"model file '{path}': graph inputs {inputs}, expected ['{INPUT_NAME}']")
    if tuple(outputs) != OUTPUT_NAMES:
        raise ModelFileError(f"model file '{path}': graph outputs {outputs}, expected {list(OUTPUT_NAMES)}")
    dims = model.graph.input[0].type.tensor_type.shape.dim
    if len(dims) != 4 or (dims[1].HasField("dim_value") and dims[1].dim_value != fields["channels"]):
        raise ModelFileError(
            f"model file '{path}': input 'image' shape does not match "
            f"'binpick.channels' = {fields['channels']}"
        )
    return ModelInfo(path=path, **fields)


def preprocess(
    info: ModelInfo,
    rgb: np.ndarray | None,
    depth_m: np.ndarray | None,
    reference_m: float | None = None,
) -> np.ndarray:
    """Camera frame(s) -> float32 [1, C, H, W] input tensor, per the model's recorded preprocessing.

    rgb: uint8 HxWx3 in R, G, B order (convert OpenCV's BGR first); depth_m: float32 HxW metres.
    Non-finite depth (holes of a depth camera) becomes the depth mean, i.e. 0 after normalisation.
    A "frame_median" model subtracts `reference_m` (default: `depth_reference_m(depth_m)`; pass
    the whole frame's when `depth_m` is a crop or padded).
    The frame must have the model's export size (static) or a multiple of `info.size_multiple`
    (dynamic; `preprocess_padded` pads any frame for such a model).
    """
    planes: list[np.ndarray] = []
    size: tuple[int, int] | None = None
    p = info.preprocess
    if info.uses_rgb:
        if rgb is None:
            raise ValueError(f"model input is {info.input_kind!r}: an RGB frame is required")
        if rgb.dtype != np.uint8 or rgb.ndim != 3 or rgb.shape[2] != 3:
            raise ValueError(f"rgb must be uint8 HxWx3, got {rgb.dtype} {rgb.shape}")
        size = rgb.shape[:2]
        mean = np.asarray(p.mean[:3], np.float32)
        std = np.asarray(p.std[:3], np.float32)
        normalised = (rgb.astype(np.float32) * np.float32(p.rgb_scale) - mean) / std
        planes.extend(normalised.transpose(2, 0, 1))
    if info.uses_depth:
        if depth_m is None:
            raise ValueError(f"model input is {info.input_kind!r}: a depth frame (metres) is required")
        if depth_m.ndim != 2 or not np.issubdtype(depth_m.dtype, np.floating):
            raise ValueError(
                f"depth_m must be a float HxW array in metres, got {depth_m.dtype} {depth_m.shape}"
            )
        if size is not None and depth_m.shape != size:
            raise ValueError(f"depth size {depth_m.shape} differs from rgb size {size}")
        size = depth_m.shape
        c = len(planes)
        if p.depth_reference == "frame_median":
            reference = frame_reference_m(info, depth_m) if reference_m is None else reference_m
            depth_m = depth_m - np.float32(reference)
        depth = np.where(np.isfinite(depth_m), depth_m, p.mean[c]).astype(np.float32)
        planes.append((depth - np.float32(p.mean[c])) / np.float32(p.std[c]))
    assert size is not None
    height, width = size
    if not info.dynamic and (height, width) != (info.input_height, info.input_width):
        raise ValueError(
            f"frame is {height}x{width} but the model was exported for {info.input_height}x{info.input_width}"
        )
    if info.dynamic and (height % info.size_multiple or width % info.size_multiple):
        raise ValueError(
            f"frame is {height}x{width}; this dynamic model needs multiples of {info.size_multiple} "
            "(use preprocess_padded and crop the outputs back)"
        )
    return np.ascontiguousarray(np.stack(planes)[None], dtype=np.float32)


def pad_to_multiple(tensor: np.ndarray, multiple: int) -> tuple[np.ndarray, tuple[int, int]]:
    """Edge-pad an NCHW tensor's H and W up to `multiple`; returns it and the original (H, W)."""
    height, width = tensor.shape[-2:]
    pad_h, pad_w = (-height) % multiple, (-width) % multiple
    if pad_h or pad_w:
        tensor = np.pad(tensor, ((0, 0), (0, 0), (0, pad_h), (0, pad_w)), mode="edge")
    return tensor, (height, width)


def preprocess_padded(
    info: ModelInfo,
    rgb: np.ndarray | None,
    depth_m: np.ndarray | None,
    reference_m: float | None = None,
) -> np.ndarray:
    """For a dynamic-size model: edge-pad the frame(s) to the model's size multiple, then
    `preprocess`. Padding the frames rather than the tensor keeps `preprocess`'s size check whole;
    the caller crops the outputs back to the frame's size. The depth reference is the unpadded
    frame's (`reference_m`, or taken here)."""
    multiple = info.size_multiple

    def pad(a: np.ndarray | None) -> np.ndarray | None:
        if a is None:
            return None
        ph, pw = (-a.shape[0]) % multiple, (-a.shape[1]) % multiple
        return np.pad(a, ((0, ph), (0, pw)) + ((0, 0),) * (a.ndim - 2), mode="edge")

    if reference_m is None:
        reference_m = frame_reference_m(info, depth_m)
    return preprocess(info, pad(rgb), pad(depth_m), reference_m)


def file_sha256(path: str | Path) -> str:
    """The SHA-256 of a file's bytes: what names one model file exactly (an eval's record, a
    TensorRT engine's cache key), wherever it was copied to."""
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()
