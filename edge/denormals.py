"""Denormal (subnormal) float32 weights: count them, flush them to zero, and run without them.

A trained network can hold many weights below float32's smallest normal number (1.18e-38;
weight decay drives unused filters there). x86 CPUs compute on such numbers in microcode: on an
Intel Xeon the bundled model ran 4.2-4.7x slower than the same file with those weights set to 0
(issue 15), and ONNX Runtime's own flush-to-zero setting (`session.set_denormal_as_zero`)
alone did not recover it (3.25 s against 0.76 s there). Values this small cannot change a probability map, so
`binpick export` flushes them and records how many (`binpick.denormals_flushed`, contracts.md
section 2), and the appliance flushes any it still finds in memory before creating a session.

Needs numpy and onnx only (the appliance never imports torch).
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

if TYPE_CHECKING:
    import onnx

log = logging.getLogger(__name__)

METADATA_KEY = "binpick.denormals_flushed"
TINY = np.finfo(np.float32).tiny  # smallest normal float32


def prime_float_limits() -> None:
    """Compute NumPy's float limits now, before a runtime turns on flush-to-zero in this thread.

    ONNX Runtime's `session.set_denormal_as_zero` sets FTZ/DAZ on the thread that creates the
    session, not only on its own workers. NumPy computes `np.finfo` lazily, once per type; when
    that first happens under FTZ (the first `np.median` imports `numpy.ma`, which asks for it),
    the smallest subnormal reads as zero and NumPy prints a UserWarning on every appliance start.
    The cached limits stay right whatever the thread's flags are later.
    """
    for dtype in (np.float16, np.float32, np.float64, np.longdouble):
        np.finfo(dtype)


def denormal_mask(values: np.ndarray) -> np.ndarray:
    """True where a float32 value is subnormal (non-zero and smaller in magnitude than TINY)."""
    return (values != 0) & (np.abs(values) < TINY)


def _float32_tensors(proto: onnx.ModelProto) -> Iterator[onnx.TensorProto]:
    """Every float32 TensorProto holding weights: graph initializers and Constant-node values,
    in the main graph and in subgraphs."""
    import onnx

    graphs = [proto.graph]
    while graphs:
        graph = graphs.pop()
        for tensor in graph.initializer:
            if tensor.data_type == onnx.TensorProto.FLOAT:
                yield tensor
        for node in graph.node:
            for attr in node.attribute:
                if attr.type == onnx.AttributeProto.TENSOR and attr.t.data_type == onnx.TensorProto.FLOAT:
                    yield attr.t
                graphs.extend(attr.graphs)
                if attr.type == onnx.AttributeProto.GRAPH:
                    graphs.append(attr.g)


def count_denormals(proto: onnx.ModelProto) -> tuple[int, int]:
    """(subnormal float32 weights, all float32 weights) of an onnx.ModelProto."""
    from onnx import numpy_helper

    denormal = total = 0
    for tensor in _float32_tensors(proto):
        values = numpy_helper.to_array(tensor)
        total += values.size
        denormal += int(np.count_nonzero(denormal_mask(values)))
    return denormal, total


def flush_denormals(proto: onnx.ModelProto) -> int:
    """Set every subnormal float32 weight of `proto` to 0 in place; returns how many there were."""
    from onnx import numpy_helper

    flushed = 0
    for tensor in _float32_tensors(proto):
        values = numpy_helper.to_array(tensor)
        mask = denormal_mask(values)
        count = int(np.count_nonzero(mask))
        if count:
            values = np.where(mask, np.float32(0), values).astype(np.float32)
            tensor.CopyFrom(numpy_helper.from_array(values, tensor.name))
            flushed += count
    return flushed


def flush_and_record(proto: onnx.ModelProto) -> int:
    """Flush `proto`'s denormal weights and add their count to its `METADATA_KEY` (the sum with any
    earlier flush, so a file flushed twice still says how many it lost); returns this flush's count."""
    flushed = flush_denormals(proto)
    before = {p.key: p.value for p in proto.metadata_props}.get(METADATA_KEY, "0")
    set_metadata(proto, METADATA_KEY, str(int(before) + flushed if before.isdigit() else flushed))
    return flushed


def set_metadata(proto: onnx.ModelProto, key: str, value: str) -> None:
    """Set one metadata_props entry, replacing an existing one with the same key."""
    for entry in proto.metadata_props:
        if entry.key == key:
            entry.value = value
            return
    entry = proto.metadata_props.add()
    entry.key, entry.value = key, value


def load_flushed(path: str | Path) -> tuple[onnx.ModelProto, int]:
    """The model at `path` as an onnx.ModelProto with no subnormal weights, and how many were
    flushed in memory (0 for a file written by a current `binpick export`). Logs a warning with
    the count when there were any: the file should be re-exported (`binpick export` also takes an
    .onnx as --checkpoint and flushes it, keeping its metadata) so that the fix is on disk."""
    import onnx

    proto = onnx.load(str(path))
    flushed = flush_denormals(proto)
    if flushed:
        _, total = count_denormals(proto)
        log.warning(
            "%s: %d of %d float32 weights are denormal; flushed to zero in memory (they cost up "
            "to 4x inference time on x86). Fix the file: "
            "binpick export --checkpoint <model.onnx> --onnx <out.onnx>",
            path,
            flushed,
            total,
        )
    return proto, flushed
