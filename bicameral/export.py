"""Checkpoint -> deployable ONNX model file (docs/contracts.md section 2).

The graph takes the normalised `image` [N, C, H, W] float32 and returns `boundaries` and
`occlusions` [N, 1, H, W] float32 probabilities (sigmoid inside the graph, so every runtime gets
the same numbers). Unpooling uses the exact mask form (`bicameral.unpool`), so the graph has no
MaxUnpool node and TensorRT's ONNX parser accepts it. The metadata records variant, width,
encoder, input kind, export size, preprocessing, model id and training provenance: the appliance
configures itself from the file alone (`binpick_core.model_file.read_model_info`).

Denormal float32 weights are flushed to zero before the file is written and their number is
recorded as `binpick.denormals_flushed` (edge.denormals says why: up to 4x inference time on x86).
An existing .onnx can be re-exported the same way (`reexport_onnx`): weights flushed, every
metadata key kept.

Exported with torch's TorchScript-based exporter (`dynamo=False`): the torch.export-based one
needs `onnxscript`, which is not in our pinned environment, and gains nothing for this static,
control-flow-free network.
"""

from __future__ import annotations

import io
import json
import warnings
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import onnx
import torch
from torch import Tensor, nn

from bicameral.checkpoint import INPUT_KIND_BY_CHANNELS, checkpoint_preprocess, load_checkpoint
from bicameral.export_check import check_export
from bicameral.networks import BicameralNet
from binpick_core.model_file import FORMAT, INPUT_NAME, OUTPUT_NAMES
from edge.atomic_file import write_atomically
from edge.denormals import count_denormals, flush_and_record, set_metadata

OPSET = 17
# ORT vs PyTorch (fp32) limits, once both follow the same max-pooling choices in near-ties
# (bicameral.export_check): the 1e-4 for fp32 graphs; fp16 compute rounds at ~1e-3.
TOLERANCE = {False: 1e-4, True: 2e-2}
# Spatial size traced for a dynamic export (any multiple of the encoder stride works).
DYNAMIC_TRACE_SIZE = 64


class ProbabilityGraph(nn.Module):
    """What is exported: float32 in, sigmoid probabilities out, optional fp16 compute inside."""

    def __init__(self, model: BicameralNet, fp16: bool = False) -> None:
        super().__init__()
        self.model = model.half() if fp16 else model
        self.fp16 = fp16

    def forward(self, image: Tensor) -> tuple[Tensor, Tensor]:
        x = image.half() if self.fp16 else image
        boundaries, occlusions = self.model(x)
        return torch.sigmoid(boundaries).float(), torch.sigmoid(occlusions).float()


@dataclass(frozen=True)
class ExportReport:
    path: Path
    nodes: int
    op_types: tuple[str, ...]
    max_abs_diff: float | None  # ORT vs PyTorch fp32 on a random input, None when not verified
    denormals_flushed: int = 0  # subnormal float32 weights set to 0 (binpick.denormals_flushed)
    float_weights: int = 0  # all float32 weights of the graph
    near_ties: int = 0  # pooling windows ORT resolved the other way in the check (bicameral.export_check)


def metadata(
    model: BicameralNet, checkpoint: dict, height: int, width: int, model_id: int, fp16: bool
) -> dict[str, str]:
    """The `binpick.*` metadata_props of contracts.md section 2 (plus size_multiple and fp16)."""
    config = model.config
    preprocess = checkpoint_preprocess(checkpoint)
    return {
        "binpick.format": FORMAT,
        "binpick.variant": config.variant,
        "binpick.width": repr(float(config.width)),
        "binpick.encoder": config.encoder,
        "binpick.input": INPUT_KIND_BY_CHANNELS[config.in_channels],
        "binpick.channels": str(config.in_channels),
        "binpick.input_height": str(height),
        "binpick.input_width": str(width),
        "binpick.preprocess": json.dumps(preprocess.to_dict()),
        "binpick.model_id": str(model_id),
        "binpick.provenance": json.dumps(checkpoint.get("provenance", {}), sort_keys=True),
        "binpick.size_multiple": str(model.stride),
        "binpick.fp16": "1" if fp16 else "0",
    }


def to_onnx(
    model: BicameralNet,
    height: int | None,
    width: int | None,
    fp16: bool = False,
) -> onnx.ModelProto:
    """Trace `model` (export mode) to an ONNX ModelProto; height/width None means dynamic H/W."""
    dynamic = height is None or width is None
    model = model.eval()
    model.set_export_mode(True)
    graph = ProbabilityGraph(model, fp16=fp16).eval()
    trace_h = DYNAMIC_TRACE_SIZE if dynamic else height
    trace_w = DYNAMIC_TRACE_SIZE if dynamic else width
    dummy = torch.zeros(1, model.config.in_channels, trace_h, trace_w)
    axes = {0: "N", 2: "H", 3: "W"} if dynamic else {0: "N"}
    buffer = io.BytesIO()
    try:
        with warnings.catch_warnings(), torch.no_grad():
            warnings.simplefilter("ignore")  # TorchScript exporter deprecation and tracer notes
            torch.onnx.export(
                graph,
                (dummy,),
                buffer,
                dynamo=False,
                opset_version=OPSET,
                input_names=[INPUT_NAME],
                output_names=list(OUTPUT_NAMES),
                dynamic_axes={INPUT_NAME: axes, **{name: axes for name in OUTPUT_NAMES}},
                do_constant_folding=True,
            )
    finally:
        model.set_export_mode(False)
        if fp16:
            model.float()
    return onnx.load_from_string(buffer.getvalue())


def export_checkpoint(
    checkpoint_path: str | Path,
    onnx_path: str | Path,
    height: int | None = None,
    width: int | None = None,
    fp16: bool = False,
    model_id: int = 0,
    verify: bool = True,
    tolerance: float | None = None,
) -> ExportReport:
    """Export a checkpoint; checks the graph, verifies ORT against PyTorch, writes atomically.

    Raises ValueError (bad arguments) or RuntimeError (verification failed; nothing written).
    """
    dynamic = height is None and width is None
    if (height is None) != (width is None):
        raise ValueError("give both height and width, or neither for a dynamic export")
    if not dynamic and (height < 16 or width < 16):  # type: ignore[operator]
        raise ValueError(f"export size {height}x{width} is too small (at least 16x16)")
    if not 0 <= model_id <= 65535:
        raise ValueError(f"model id {model_id} out of range 0..65535 (a PLC register)")
    model, checkpoint = load_checkpoint(checkpoint_path)
    proto = to_onnx(model, height, width, fp16=fp16)
    for key, value in metadata(model, checkpoint, height or 0, width or 0, model_id, fp16).items():
        set_metadata(proto, key, value)
    flushed = flush_and_record(proto)
    _, float_weights = count_denormals(proto)
    proto.producer_name = "binpick export"
    onnx.checker.check_model(proto, full_check=True)
    op_types = tuple(sorted({node.op_type for node in proto.graph.node}))
    if "MaxUnpool" in op_types:
        raise RuntimeError("exported graph contains MaxUnpool (export mode was not applied)")
    diff, near_ties = None, 0
    if verify:
        size_h, size_w = (height, width) if not dynamic else (model.stride * 3, model.stride * 5)
        checked = check_export(proto, model, size_h, size_w, fp16)
        diff, near_ties = checked.max_abs_diff, checked.near_ties
        limit = TOLERANCE[fp16] if tolerance is None else tolerance
        if not diff <= limit:
            raise RuntimeError(
                f"ONNX Runtime differs from PyTorch by {diff:.3g} (> {limit:g}); nothing written"
            )
    data = proto.SerializeToString()
    write_atomically(onnx_path, data)
    return ExportReport(
        Path(onnx_path), len(proto.graph.node), op_types, diff, flushed, float_weights, near_ties
    )


def reexport_onnx(source: str | Path, onnx_path: str | Path, verify: bool = True) -> ExportReport:
    """An exported model whose checkpoint is gone -> the same model with its denormal weights
    flushed: every metadata key kept, `binpick.denormals_flushed` added (the sum with any earlier
    flush). `max_abs_diff` is then ORT flushed vs ORT as it was, on one random input."""
    from binpick_core.model_file import read_model_info

    info = read_model_info(source)  # a binpick model file, or ModelFileError
    proto = onnx.load(str(source))
    original = proto.SerializeToString()
    flushed = flush_and_record(proto)
    _, float_weights = count_denormals(proto)
    proto.producer_name = "binpick export"
    onnx.checker.check_model(proto, full_check=True)
    diff = None
    if verify:
        import onnxruntime as ort

        h = info.input_height or info.size_multiple * 3
        w = info.input_width or info.size_multiple * 5
        x = np.random.default_rng(0).standard_normal((1, info.channels, h, w), dtype=np.float32)
        sessions = [
            ort.InferenceSession(m, providers=["CPUExecutionProvider"])
            for m in (original, proto.SerializeToString())
        ]
        outputs = [s.run(list(OUTPUT_NAMES), {INPUT_NAME: x}) for s in sessions]
        diff = float(max(np.abs(a - b).max() for a, b in zip(*outputs, strict=True)))
        limit = TOLERANCE[info.fp16]
        if not diff <= limit:
            raise RuntimeError(
                f"flushing changed ONNX Runtime's output by {diff:.3g} (> {limit:g}); nothing written"
            )
    data = proto.SerializeToString()
    write_atomically(onnx_path, data)
    op_types = tuple(sorted({node.op_type for node in proto.graph.node}))
    return ExportReport(Path(onnx_path), len(proto.graph.node), op_types, diff, flushed, float_weights)


def export_untrained_f25(
    checkpoint_path: str | Path, onnx_path: str | Path, height: int, width: int, model_id: int, dataset: str
) -> ExportReport:
    """An untrained RGB F25 (seed 0) saved as a checkpoint and exported like a trained one.

    Its maps mean nothing; it exercises the whole plumbing (metadata, backends, timing) where no
    trained model is at hand: the appliance tests and the cycle benchmark use it. `dataset` is
    the provenance note the checkpoint records."""
    from bicameral.checkpoint import save_checkpoint
    from bicameral.init import initialise
    from bicameral.networks import build_network
    from binpick_core.model_file import default_preprocess

    torch.manual_seed(0)
    model = initialise(build_network("bicameral", "F25"))
    save_checkpoint(checkpoint_path, model, model.config, default_preprocess("rgb"), {"dataset": dataset})
    return export_checkpoint(checkpoint_path, onnx_path, height=height, width=width, model_id=model_id)
