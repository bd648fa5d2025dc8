"""fp32 model file -> int8 model file: NNCF post-training quantisation calibrated on Mikado frames.

The result is an ONNX file like any other (contracts.md section 2, every metadata key kept) with
QuantizeLinear/DequantizeLinear pairs around the convolutions. OpenVINO (`inference.backend =
"openvino"`) runs them as int8 kernels (VNNI/AMX); ONNX Runtime can load it too, but its CPU
provider gains nothing on this graph. The metadata adds `binpick.precision` = "int8" and
`binpick.calibration` (JSON: dataset folder, preset, seed, frames, NNCF version, preset of the
quantiser), so the file says how it was made.

Calibration frames are the dataset's frames, preprocessed exactly as the appliance does
(`binpick_core.model_file.preprocess`), at the size the appliance will run (a static model's export size;
for a dynamic model `size`, default 512x512, centre-cropped or edge-padded from the frame).
A depth or RGB-D model gets the dataset's depth.png the way it was trained and is scored
(`binpick eval --depth-noise`): stereo-like noise from `mikado.depth_noise` when its provenance
records `depth_noise` (the appliance's simulated camera and a real stereo camera deliver such
depth), seeded per frame as eval seeds it, the frame-median reference over the whole frame.
NNCF's ONNX path cannot take a Cast whose output is a graph output when that Cast changes
nothing (its nop-Cast pass looks the output up in value_info): such Casts, which the exporter
writes after the sigmoids, become Identity first; the numbers do not change.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass
from pathlib import Path

import cv2
import numpy as np
import onnx

from bicameral.data import DepthNoise, read_dataset_info, read_scene, scored_depth
from binpick_core.model_file import (
    CHANNELS,
    INPUT_NAME,
    ModelInfo,
    frame_reference_m,
    preprocess,
    read_model_info,
)
from edge.atomic_file import write_atomically
from edge.denormals import flush_and_record, set_metadata
from mikado.io import parent_dataset_hint

DEFAULT_FRAMES = 32
DEFAULT_SIZE = 512


@dataclass(frozen=True)
class QuantizeReport:
    path: Path
    frames: int
    size: tuple[int, int]
    quantized_nodes: int  # QuantizeLinear nodes in the result
    max_abs_diff: float  # int8 vs fp32 (ONNX Runtime), on the first calibration frame
    bytes: int
    depth: str | None = None  # depth models: "stereo noise" or "exact"


def model_depth_noise(info: ModelInfo) -> DepthNoise | None:
    """The stereo-like depth noise the model was trained with (its `binpick.provenance`
    `depth_noise` record, written by `binpick train --depth-noise`), or None (exact depth)."""
    record = info.provenance.get("depth_noise")
    if not isinstance(record, dict):
        return None
    fields = {k: tuple(v) if isinstance(v, list) else v for k, v in record.items()}
    try:
        return DepthNoise(**fields)
    except TypeError as exc:  # a key this code's DepthNoise does not have
        raise ValueError(f"{info.path}: binpick.provenance depth_noise {record}: {exc}") from None


def _centre(image: np.ndarray, height: int, width: int) -> np.ndarray:
    """Edge-pad up to height x width, then take the centre height x width window."""
    pad_h, pad_w = max(0, height - image.shape[0]), max(0, width - image.shape[1])
    if pad_h or pad_w:
        image = np.pad(image, ((0, pad_h), (0, pad_w)) + ((0, 0),) * (image.ndim - 2), mode="edge")
    top, left = (image.shape[0] - height) // 2, (image.shape[1] - width) // 2
    return np.ascontiguousarray(image[top : top + height, left : left + width])


def refuse_padding(path: Path, shape: tuple[int, ...], size: tuple[int, int]) -> None:
    """Refuse a calibration frame smaller than the calibration size: `_centre` would edge-pad it,
    and the activation ranges would be measured on padding (96x96 frames at the default 512x512
    were 96 % padding), as train --crop refuses crops larger than the frames."""
    height, width = size
    if shape[0] >= height and shape[1] >= width:
        return
    padding = 1 - min(shape[0], height) * min(shape[1], width) / (height * width)
    raise ValueError(
        f"--size {height}x{width}: larger than the calibration frame {path} ({shape[1]}x{shape[0]}; "
        f"{padding:.0%} of each calibration input would be padding); expected at most the frames' "
        "size (--size, or a calibration set of the size the appliance runs)"
    )


def calibration_frames(
    data: str | Path,
    info: ModelInfo,
    count: int,
    size: tuple[int, int],
    depth_noise: DepthNoise | None = None,
) -> list[np.ndarray]:
    """The first `count` scenes of a Mikado dataset as model input tensors.

    RGB as the appliance reads it; depth (a "depth" or "rgbd" model) as `binpick eval` feeds it:
    `read_scene`'s metres, degraded by `depth_noise` when given with the generator eval uses
    (`np.random.default_rng(frame index)`), the frame-median reference taken over the whole
    (degraded) frame before the crop, as `preprocess_padded` does for the appliance's frame."""
    if info.input_kind not in CHANNELS:
        raise ValueError(f"{info.path}: input {info.input_kind!r}; cannot calibrate it")
    needed = "rgb.png" if info.uses_rgb else "depth.png"
    scenes = sorted(p.parent for p in (Path(data) / "scenes").glob(f"*/{needed}"))
    if not scenes:
        raise ValueError(
            f"--calibration {data}: no scenes/*/{needed} (a binpick mikado generate folder)"
            f"{parent_dataset_hint(data)}"
        )
    height, width = size
    tensors = []
    for index, folder in enumerate(scenes[:count]):
        rgb = depth = None
        if info.uses_rgb:
            path = folder / "rgb.png"
            bgr = cv2.imread(str(path), cv2.IMREAD_COLOR)
            if bgr is None:  # cvtColor would fail on it with an OpenCV assertion naming no file
                raise ValueError(f"--calibration {data}: {path} is not a readable image")
            refuse_padding(path, bgr.shape, size)
            rgb = _centre(cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB), height, width)
        reference = None
        if info.uses_depth:
            if not (folder / "depth.png").is_file():
                raise ValueError(
                    f"--calibration {data}: {folder / 'depth.png'} missing; the model takes "
                    f"{info.input_kind!r} input, calibrate on a dataset with depth (binpick mikado generate)"
                )
            depth = scored_depth(read_scene(folder, ("depth",)), index, depth_noise)
            refuse_padding(folder / "depth.png", depth.shape, size)
            reference = frame_reference_m(info, depth)
            depth = _centre(depth, height, width)
        tensors.append(preprocess(info, rgb, depth, reference))
    return tensors


def identity_for_nop_casts(proto: onnx.ModelProto) -> int:
    """Replace Casts to the type their input already has by Identity (see the module docstring)."""
    inferred = onnx.shape_inference.infer_shapes(proto)
    types = {
        v.name: v.type.tensor_type.elem_type
        for v in [*inferred.graph.value_info, *inferred.graph.input, *inferred.graph.output]
    }
    changed = 0
    for node in proto.graph.node:
        if node.op_type != "Cast":
            continue
        to = next(a.i for a in node.attribute if a.name == "to")
        if types.get(node.input[0]) == to:
            node.op_type = "Identity"
            del node.attribute[:]
            changed += 1
    return changed


def quantize_int8(
    model_path: str | Path,
    calibration: str | Path,
    out_path: str | Path,
    frames: int = DEFAULT_FRAMES,
    size: tuple[int, int] | None = None,
    depth_noise: bool | None = None,
) -> QuantizeReport:
    """Quantise `model_path` to int8 with NNCF on `frames` frames of the Mikado dataset
    `calibration`; writes `out_path` atomically. Raises ValueError on bad input.

    `depth_noise` (depth models): None follows the model's training (`model_depth_noise`), True
    degrades the depth like a stereo camera (the training record's parameters, else `DepthNoise()`
    as `binpick eval --depth-noise`), False keeps Mikado's exact depth."""
    import nncf
    import onnxruntime as ort

    info = read_model_info(model_path)
    if info.fp16:
        raise ValueError(f"{model_path}: an fp16 export; quantise the fp32 export")
    if size is None:
        size = (info.input_height, info.input_width) if not info.dynamic else (DEFAULT_SIZE, DEFAULT_SIZE)
    if info.dynamic and (size[0] % info.size_multiple or size[1] % info.size_multiple):
        raise ValueError(f"calibration size {size[0]}x{size[1]}: expected multiples of {info.size_multiple}")
    if not info.dynamic and tuple(size) != (info.input_height, info.input_width):
        raise ValueError(
            f"{model_path}: exported for {info.input_height}x{info.input_width}, calibration size "
            f"{size[0]}x{size[1]}: expected the export size (or a --dynamic export)"
        )
    trained_noise = model_depth_noise(info)
    noise = None
    if info.uses_depth and depth_noise is not False and (depth_noise or trained_noise):
        noise = trained_noise or DepthNoise()
    tensors = calibration_frames(calibration, info, frames, size, noise)
    # Read before the minutes of quantisation, by the datasets' one reader: a corrupt file was
    # read after them, by a second reader, and ended in json's message without the file's name.
    dataset_info = read_dataset_info(calibration)
    proto = onnx.load(str(model_path))
    if any(node.op_type in ("QuantizeLinear", "DequantizeLinear") for node in proto.graph.node):
        # Quantising again would stack a second set of int8 rounding on the first.
        raise ValueError(f"{model_path}: already quantised (QuantizeLinear nodes); quantise the fp32 export")
    flush_and_record(proto)  # an older file: quantise what the appliance would run
    identity_for_nop_casts(proto)
    quantized = nncf.quantize(
        proto,
        nncf.Dataset(tensors, lambda t: {INPUT_NAME: t}),
        preset=nncf.QuantizationPreset.PERFORMANCE,
        subset_size=len(tensors),
    )
    if info.uses_depth:  # how the depth plane was made (binpick eval --depth-noise's generator)
        record_depth = {"depth_noise": asdict(noise) if noise else None, "depth_noise_seed": "frame index"}
    else:
        record_depth = {}
    record = {
        "dataset": str(calibration),
        "preset": dataset_info.get("preset"),
        "seed": dataset_info.get("base_seed"),
        "frames": len(tensors),
        "size": list(size),
        "input": info.input_kind,
        "method": f"nncf {nncf.__version__} post-training quantisation, preset performance",
        **record_depth,
    }
    # nncf keeps the model's metadata_props; set ours over them.
    for entry in proto.metadata_props:
        set_metadata(quantized, entry.key, entry.value)
    set_metadata(quantized, "binpick.precision", "int8")
    set_metadata(quantized, "binpick.calibration", json.dumps(record, sort_keys=True))
    quantized.producer_name = "binpick quantize"
    onnx.checker.check_model(quantized, full_check=True)
    data = quantized.SerializeToString()
    x = tensors[0]
    reference, got = (
        ort.InferenceSession(m, providers=["CPUExecutionProvider"]).run(None, {INPUT_NAME: x})
        for m in (proto.SerializeToString(), data)
    )
    diff = float(max(np.abs(a - b).max() for a, b in zip(reference, got, strict=True)))
    write_atomically(out_path, data)
    nodes = sum(node.op_type == "QuantizeLinear" for node in quantized.graph.node)
    depth = ("stereo noise" if noise else "exact") if info.uses_depth else None
    return QuantizeReport(Path(out_path), len(tensors), size, nodes, diff, len(data), depth)
