"""ONNX Runtime vs PyTorch on an exported graph, with max-pooling near-ties told from export bugs.

The decoders put values back where the encoder's 2x2 max-pooling found each window's maximum.
Where two values of a window differ by less than float32 rounding (a near-tie), ONNX Runtime's
convolutions (NCHWc layout, other summation order than PyTorch's) can make the other one the
maximum; the unpooled value then lands one pixel away and the probabilities downstream differ
by up to ~1e-3 over tens of pixels. Both answers are right to float32 precision. At 512x512 the
shipped F25 has ~2 million windows, and one such flip in the seeded check input was enough for
a 5e-4 difference (docs/bicameral.md "Export check").

So the check reads ONNX Runtime's "equal to the window's maximum" flags (the graph's Equal nodes
fed by a ReduceMax) and runs PyTorch on the same input with them: where they differ from
PyTorch's own, the window must be a near-tie (top two values closer than `NEAR_TIE` times the
tensor's largest magnitude), else the export is wrong. With the tie choices shared, the outputs
are compared at the usual tolerance, and PyTorch's mask form (what is exported) is compared
against its pooling-indices form (what was trained).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import onnx
import torch
from torch import Tensor

from bicameral.networks import BicameralNet
from bicameral.unpool import resolving_ties
from binpick_core.model_file import INPUT_NAME, OUTPUT_NAMES

# Relative gap under which a window's top two values count as a near-tie: ORT and PyTorch
# pre-pool features differ by ~1e-6 of their scale in fp32 (measured: 3e-6 on values up to 4),
# by ~1e-3 with fp16 compute; the bounds leave a margin of 10 over both.
NEAR_TIE = {False: 1e-5, True: 1e-2}


@dataclass(frozen=True)
class CheckResult:
    max_abs_diff: float  # ORT vs PyTorch probabilities, with ORT's near-tie choices
    near_ties: int  # pooling windows ORT resolved the other way (each a near-tie)


def tie_flag_outputs(proto: onnx.ModelProto) -> list[str]:
    """Outputs of the Equal nodes that compare pooling windows with their ReduceMax (in graph
    order, which is the order PyTorch computed the masks in when the graph was traced)."""
    reduce_max = {out for node in proto.graph.node if node.op_type == "ReduceMax" for out in node.output}
    return [
        node.output[0]
        for node in proto.graph.node
        if node.op_type == "Equal" and any(name in reduce_max for name in node.input)
    ]


def run_with_tie_flags(proto: onnx.ModelProto, x: np.ndarray) -> tuple[list[np.ndarray], list[np.ndarray]]:
    """ORT's two probability maps and its max flags, one session as the appliance opens it."""
    import onnxruntime as ort

    flags = tie_flag_outputs(proto)
    probe = onnx.ModelProto()
    probe.CopyFrom(proto)
    known = {o.name for o in probe.graph.output}
    for name in flags:
        if name not in known:
            probe.graph.output.append(onnx.helper.make_empty_tensor_value_info(name))
    session = ort.InferenceSession(probe.SerializeToString(), providers=["CPUExecutionProvider"])
    results = session.run([*OUTPUT_NAMES, *flags], {INPUT_NAME: x})
    return results[: len(OUTPUT_NAMES)], results[len(OUTPUT_NAMES) :]


class TieFollower:
    """A `resolving_ties` resolver: hands PyTorch ORT's flags, refusing any that differ outside
    a near-tie."""

    def __init__(self, flags: list[np.ndarray], fp16: bool) -> None:
        self.flags = list(flags)
        self.relative_gap = NEAR_TIE[fp16]
        self.near_ties = 0
        self.calls = 0

    def __call__(self, windows: Tensor, is_max: Tensor) -> Tensor:
        if self.calls >= len(self.flags):
            raise RuntimeError("the exported graph has fewer max-pooling masks than the network")
        theirs = torch.from_numpy(np.asarray(self.flags[self.calls], dtype=bool))
        self.calls += 1
        if theirs.shape != is_max.shape:
            raise RuntimeError(
                f"max-pooling mask {self.calls} is {list(theirs.shape)} in the exported graph, "
                f"{list(is_max.shape)} in the network"
            )
        differs = (theirs != is_max).any(dim=2)
        if differs.any():
            top2 = windows.float().topk(2, dim=2).values
            gap = top2[:, :, 0] - top2[:, :, 1]
            scale = float(windows.abs().max()) or 1.0
            clear = differs & (gap > self.relative_gap * scale)
            if clear.any():
                raise RuntimeError(
                    f"ONNX Runtime's max-pooling picks other positions than PyTorch's in "
                    f"{int(clear.sum())} window(s) of mask {self.calls} that are no near-ties; "
                    "nothing written"
                )
            self.near_ties += int(differs.sum())
        return theirs


def check_export(
    proto: onnx.ModelProto, model: BicameralNet, height: int, width: int, fp16: bool
) -> CheckResult:
    """Compare ORT with PyTorch fp32 on one seeded random input (see the module docstring)."""
    model = model.eval()
    x = torch.randn(1, model.config.in_channels, height, width, generator=torch.Generator().manual_seed(0))
    got, flags = run_with_tie_flags(proto, x.numpy())
    follower = TieFollower(flags, fp16)
    model.set_export_mode(True)
    try:
        with torch.no_grad():
            with resolving_ties(follower):
                shared = [torch.sigmoid(t).numpy() for t in model(x)]
            own = [torch.sigmoid(t).numpy() for t in model(x)]
    finally:
        model.set_export_mode(False)
    if follower.calls != len(flags):
        raise RuntimeError(
            f"the exported graph has {len(flags)} max-pooling masks, the network {follower.calls}"
        )
    with torch.no_grad():
        trained = [torch.sigmoid(t).numpy() for t in model(x)]
    form_diff = max(float(np.abs(a - b).max()) for a, b in zip(own, trained, strict=True))
    if not form_diff <= 1e-5:  # same convolutions, only the unpooling's form differs
        raise RuntimeError(
            f"the exported mask unpooling differs from max_unpool2d by {form_diff:.3g}; nothing written"
        )
    diff = max(float(np.abs(g - e).max()) for g, e in zip(got, shared, strict=True))
    return CheckResult(diff, follower.near_ties)
