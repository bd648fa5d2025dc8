"""Inference latency of the bicameral network on the CPU, every backend side by side, and PyTorch
CUDA fp32 / fp16 / channels-last / CUDA graphs when a GPU is present.

First the model that ships (the one firmware_config/embedded.toml names, the RGB-D
`models/bicameral_f25_rgbd.onnx`, on a synthetic depth frame; denormal weights flushed by export)
on every CPU backend the appliance offers, through the appliance's own backend classes: ONNX
Runtime fp32, OpenVINO fp32 / bf16 (where the CPU has it) / int8 (`models/*_int8.onnx`, written by
`binpick quantize`), PyTorch eager on its checkpoint; and ONNX Runtime on the same weights with
the denormals left in (the file as it shipped before issue 15). The last two need the checkpoint
`X.pt` beside the model (the RGB model has one, the RGB-D model not: skipped and said so). A
compute-floor row sets them against the hardware: the model's convolution GFLOP divided by a
measured fp32 sgemm rate (torch.mm, large square matrices, the same thread count). Then
untrained networks of each width (the second table; latency hardly depends on the weights
once denormals are gone).

Every figure is the median over repeated single-image (batch 1) runs after warm-up, the
candidates timed in alternation so that other load on the machine hits them alike; the machine
(CPU model, AVX-512 BF16/VNNI, AMX) and its load are printed with the tables.

    python -m benchmarks.inference --quick                 # CPU: shipped model, then widths at 256, 512
    python -m benchmarks.inference --device cuda --json gpu.json   # GPU paths only (~1-2 min)
    python -m benchmarks.inference --device cpu --widths --sizes 512 \
        --model models/bicameral_f25_rgb.onnx                      # the RGB model (and its _int8, .pt)
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np
import torch

from benchmarks.arguments import output_file, positive_int, shipped_model, write_output
from benchmarks.machine_info import machine_info
from bicameral.export import to_onnx
from bicameral.networks import WIDTHS, build_network, count_parameters
from edge.machine import physical_cores

ROOT = Path(__file__).resolve().parents[1]
BUNDLED = shipped_model()  # firmware_config/embedded.toml's model


def machine() -> dict:
    info = machine_info("torch", "onnxruntime", "openvino")
    if torch.cuda.is_available():
        info["gpu"] = torch.cuda.get_device_name(0)
        info["cuda"] = torch.version.cuda
        info["cudnn"] = torch.backends.cudnn.version()
    return info


def median_ms(
    fn: Callable[[], object], repeats: int, warmup: int, sync: Callable[[], None] = lambda: None
) -> float:
    for _ in range(warmup):
        fn()
    sync()
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        sync()
        times.append((time.perf_counter() - start) * 1000)
    return statistics.median(times)


def interleaved_median_ms(
    fns: dict[str, Callable[[], object]], repeats: int, warmup: int
) -> dict[str, float]:
    """Median wall time of each candidate, timed in alternation (A, B, A, B ...) so that load
    from other processes on a shared machine hits both sides of a ratio alike."""
    for fn in fns.values():
        for _ in range(warmup):
            fn()
    times: dict[str, list[float]] = {name: [] for name in fns}
    for _ in range(repeats):
        for name, fn in fns.items():
            start = time.perf_counter()
            fn()
            times[name].append((time.perf_counter() - start) * 1000)
    return {name: statistics.median(values) for name, values in times.items()}


def bench_cpu(width: str, size: int, repeats: int, warmup: int, threads: int) -> dict:
    import onnxruntime as ort

    torch.manual_seed(0)
    model = build_network("bicameral", width).eval()
    x = torch.randn(1, 3, size, size)
    options = ort.SessionOptions()
    options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    options.intra_op_num_threads = threads
    options.inter_op_num_threads = 1
    proto = to_onnx(model, size, size)
    session = ort.InferenceSession(proto.SerializeToString(), options, providers=["CPUExecutionProvider"])
    feed = {"image": x.numpy()}

    def torch_eager() -> object:
        with torch.inference_mode():
            return model(x)

    ms = interleaved_median_ms(
        {"torch": torch_eager, "ort": lambda: session.run(None, feed)}, repeats, warmup
    )
    return {
        "device": "cpu",
        "width": width,
        "size": size,
        "parameters": count_parameters(model),
        "torch_eager_ms": round(ms["torch"], 2),
        "onnxruntime_ms": round(ms["ort"], 2),
        "torch_over_ort": round(ms["torch"] / ms["ort"], 3),
    }


def conv_gflop(model: torch.nn.Module, size: int) -> float:
    """GFLOP of one forward pass at size x size: 2 x multiply-adds of every convolution."""
    flops = 0

    def hook(module: torch.nn.Module, _inputs, output: torch.Tensor) -> None:
        nonlocal flops
        k = module.weight[0].numel()  # in_channels / groups x kernel area
        flops += 2 * k * output.numel()

    handles = [
        m.register_forward_hook(hook)
        for m in model.modules()
        if isinstance(m, (torch.nn.Conv2d, torch.nn.ConvTranspose2d))
    ]
    try:
        with torch.inference_mode():
            model(torch.zeros(1, model.config.in_channels, size, size))
    finally:
        for h in handles:
            h.remove()
    return flops / 1e9


def sgemm_gflops(threads: int, n: int = 2048, repeats: int = 5) -> float:
    """Measured fp32 matrix-multiply rate (GFLOP/s) of torch.mm at `threads` threads: the best
    this CPU does on dense fp32 work, the yardstick for the compute floor."""
    torch.set_num_threads(threads)
    a, b = torch.randn(n, n), torch.randn(n, n)
    ms = median_ms(lambda: torch.mm(a, b), repeats, 1)
    return 2 * n**3 / (ms / 1000) / 1e9


def synthetic_depth_m(size: int) -> np.ndarray:
    """A bin-like depth frame for a depth model's input: a floor at 1 m, a few boxes above it,
    NaN holes as a stereo camera leaves them (latency does not depend on the values)."""
    rng = np.random.default_rng(1)
    depth = np.full((size, size), 1.0, np.float32)
    for _ in range(12):
        y, x = rng.integers(0, size - size // 6, 2)
        depth[y : y + size // 6, x : x + size // 8] = rng.uniform(0.85, 0.97)
    depth[rng.random((size, size)) < 0.01] = np.nan
    return depth


def shipped_candidates(
    size: int, threads: int, shipped: Path = BUNDLED
) -> tuple[dict[str, Callable[[], object]], dict]:
    """name -> one inference of the shipped model on that backend, built with the appliance's own
    backend classes; and notes (what was skipped and why). A depth or RGB-D model gets a
    synthetic depth frame beside the random RGB."""
    import onnxruntime as ort

    from bicameral.checkpoint import load_checkpoint
    from bicameral.export import to_onnx
    from binpick_core.model_file import preprocess_padded, read_model_info
    from edge.config import InferenceSection
    from edge.inference import InferenceError, load_backend

    info = read_model_info(shipped)
    rng = np.random.default_rng(0)
    rgb = rng.integers(0, 255, (size, size, 3), dtype=np.uint8)
    x = preprocess_padded(info, rgb, synthetic_depth_m(size) if info.uses_depth else None)
    shape = tuple(x.shape)
    fns: dict[str, Callable[[], object]] = {}
    notes: dict = {}

    def backend(label: str, model: Path, name: str, **kwargs) -> None:
        cfg = InferenceSection(model=str(model), backend=name, threads=threads, **kwargs)
        try:
            loaded = load_backend(cfg, shape)
        except InferenceError as exc:
            notes[label] = str(exc)
            return
        fns[label] = lambda: loaded.infer(x)

    backend("onnxruntime fp32", shipped, "onnxruntime")
    checkpoint = shipped.with_suffix(".pt")
    if checkpoint.is_file():  # the same weights with their denormals, as exported before issue 15
        model, _ = load_checkpoint(checkpoint)
        options = ort.SessionOptions()
        options.intra_op_num_threads, options.inter_op_num_threads = threads, 1
        raw = ort.InferenceSession(to_onnx(model, None, None).SerializeToString(), options,
                                   providers=["CPUExecutionProvider"])  # fmt: skip
        fns["onnxruntime fp32, denormals kept"] = lambda: raw.run(None, {"image": x})
    int8 = shipped.with_name(shipped.stem + "_int8.onnx")
    backend("openvino fp32", shipped, "openvino", precision="fp32")
    if "openvino fp32" in fns:
        backend("openvino bf16", shipped, "openvino", precision="bf16")
        if int8.is_file():
            backend("openvino int8", int8, "openvino", precision="fp32")
        else:
            notes["openvino int8"] = f"{int8.name} not found (binpick quantize writes it)"
    if checkpoint.is_file():
        backend("torch eager fp32", shipped, "torch", torch_checkpoint=str(checkpoint))
    else:
        notes["torch eager fp32"] = f"{checkpoint.name} not found (the checkpoint of the same weights)"
    if "torch eager fp32" in fns:
        # The torch backend switches flush-to-zero on for this (the calling) thread, which ONNX
        # Runtime also computes on: on only while torch runs, so the other rows keep their own.
        torch_infer = fns["torch eager fp32"]

        def torch_with_ftz() -> object:
            torch.set_flush_denormal(True)
            try:
                return torch_infer()
            finally:
                torch.set_flush_denormal(False)

        torch.set_flush_denormal(False)
        fns["torch eager fp32"] = torch_with_ftz
    return fns, notes


def bench_shipped(size: int, repeats: int, warmup: int, threads: int, shipped: Path = BUNDLED) -> dict:
    """The shipped model on every CPU backend, interleaved, plus the compute floor."""
    from bicameral.checkpoint import load_checkpoint
    from binpick_core.model_file import read_model_info

    fns, notes = shipped_candidates(size, threads, shipped)
    ms = interleaved_median_ms(fns, repeats, warmup)
    if shipped.with_suffix(".pt").is_file():
        model, _ = load_checkpoint(shipped.with_suffix(".pt"))
    else:  # the same architecture and input channels: the same convolution FLOPs
        info = read_model_info(shipped)
        model = build_network(info.variant, info.width, info.channels, info.encoder).eval()
    gflop = conv_gflop(model, size)
    rate = sgemm_gflops(threads)
    base = ms.get("onnxruntime fp32")
    rows = [
        {
            "backend": name,
            "ms": round(value, 2),
            "speedup_vs_ort_fp32": round(base / value, 2) if base else None,
        }
        for name, value in ms.items()
    ]
    floor = 1000 * gflop / rate
    rows.append({"backend": "compute floor (GFLOP / sgemm rate)", "ms": round(floor, 2),
                 "speedup_vs_ort_fp32": round(base / floor, 2) if base else None})  # fmt: skip
    return {
        "model": str(shipped.relative_to(ROOT)) if shipped.is_relative_to(ROOT) else str(shipped),
        "size": size,
        "gflop": round(gflop, 2),
        "sgemm_gflops": round(rate, 1),
        "rows": rows,
        "skipped": notes,
    }


def print_shipped(result: dict) -> None:
    print(f"\n{result['model']} at {result['size']}x{result['size']}: {result['gflop']} GFLOP; "
          f"sgemm {result['sgemm_gflops']} GFLOP/s")  # fmt: skip
    print(f"{'backend':>34} {'ms':>9} {'vs ORT fp32':>12}")
    for r in result["rows"]:
        speedup = "-" if r["speedup_vs_ort_fp32"] is None else f"{r['speedup_vs_ort_fp32']:.2f}x"
        print(f"{r['backend']:>34} {r['ms']:>9.1f} {speedup:>12}")
    for name, why in result["skipped"].items():
        print(f"  skipped {name}: {why}")


def bench_cuda(width: str, size: int, repeats: int, warmup: int) -> dict:
    """fp32 eager, fp16 eager, fp16 channels-last, and that last one replayed as a CUDA graph."""
    torch.backends.cudnn.benchmark = True
    device = torch.device("cuda")
    sync = torch.cuda.synchronize
    result: dict = {"device": "cuda", "width": width, "size": size}
    torch.manual_seed(0)
    model = build_network("bicameral", width).eval().to(device)
    result["parameters"] = count_parameters(model)
    x = torch.randn(1, 3, size, size, device=device)

    def timed(name: str, fn: Callable[[], object]) -> None:
        try:
            with torch.inference_mode():
                result[name] = round(median_ms(fn, repeats, warmup, sync), 3)
        except Exception as exc:  # one failing path must not lose the others' figures
            result[name] = None
            result[name + "_error"] = f"{type(exc).__name__}: {exc}"[:300]

    timed("fp32_ms", lambda: model(x))
    half = build_network("bicameral", width).eval().to(device).half()
    half.load_state_dict(model.state_dict())
    xh = x.half()
    timed("fp16_ms", lambda: half(xh))
    half_cl = half.to(memory_format=torch.channels_last)
    xh_cl = xh.contiguous(memory_format=torch.channels_last)
    timed("fp16_channels_last_ms", lambda: half_cl(xh_cl))
    # CUDA graphs need capture-safe kernels; the export-mode (mask) unpooling is purely elementwise.
    half_cl.set_export_mode(True)
    try:
        with torch.inference_mode():
            static_x = xh_cl.clone()
            stream = torch.cuda.Stream()
            stream.wait_stream(torch.cuda.current_stream())
            with torch.cuda.stream(stream):
                for _ in range(3):
                    half_cl(static_x)
            torch.cuda.current_stream().wait_stream(stream)
            graph = torch.cuda.CUDAGraph()
            with torch.cuda.graph(graph):
                half_cl(static_x)
        timed("fp16_channels_last_cuda_graph_ms", graph.replay)
    except Exception as exc:
        result["fp16_channels_last_cuda_graph_ms"] = None
        result["fp16_channels_last_cuda_graph_ms_error"] = f"{type(exc).__name__}: {exc}"[:300]
    if result.get("fp32_ms"):
        for key in ("fp16_ms", "fp16_channels_last_ms", "fp16_channels_last_cuda_graph_ms"):
            if result.get(key):
                result[key.replace("_ms", "_speedup")] = round(result["fp32_ms"] / result[key], 2)
    return result


def print_cpu(rows: list[dict]) -> None:
    print(f"\n{'width':>6} {'size':>5} {'params':>11} {'torch eager ms':>15} {'ORT ms':>9} {'torch/ORT':>10}")
    for r in rows:
        print(
            f"{r['width']:>6} {r['size']:>5} {r['parameters']:>11,} {r['torch_eager_ms']:>15.1f} "
            f"{r['onnxruntime_ms']:>9.1f} {r['torch_over_ort']:>9.2f}x"
        )


def _ms(row: dict, key: str) -> str:
    return "failed" if row.get(key) is None else f"{row[key]:.2f}"


CUDA_PATHS = ("fp32_ms", "fp16_ms", "fp16_channels_last_ms", "fp16_channels_last_cuda_graph_ms")


def print_cuda(rows: list[dict]) -> None:
    header = ("fp32 ms", "fp16 ms", "fp16 CL ms", "CL+graph ms")
    print(f"\n{'width':>6} {'size':>5} " + " ".join(f"{h:>12}" for h in header) + "  speedups vs fp32")
    for r in rows:
        speedups = " ".join(f"{r.get(k.replace('_ms', '_speedup'), '-')}x" for k in CUDA_PATHS[1:])
        times = " ".join(f"{_ms(r, k):>12}" for k in CUDA_PATHS)
        print(f"{r['width']:>6} {r['size']:>5} {times}  {speedups}")
        for key, value in r.items():
            if key.endswith("_error"):
                print(f"       {key}: {value}")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--widths", nargs="*", default=["F100", "F50", "F25"], choices=sorted(WIDTHS),
                        help="untrained networks' table (none: skip it)")  # fmt: skip
    parser.add_argument("--sizes", nargs="+", type=positive_int, default=[256, 512])
    parser.add_argument(
        "--device",
        choices=["auto", "cpu", "cuda"],
        default="auto",
        help="auto: CPU, plus CUDA when available; cuda: GPU paths only (error without a GPU)",
    )
    parser.add_argument(
        "--repeats", type=positive_int, default=None, help="timed runs per figure (median reported)"
    )
    parser.add_argument(
        "--quick", action="store_true", help="fewer repeats (shipped model 5, widths on the CPU 3, GPU 20)"
    )
    parser.add_argument(
        "--threads", type=positive_int, default=None, help="CPU threads (default: physical cores)"
    )
    parser.add_argument("--json", type=output_file, help="also write the results as JSON here")
    parser.add_argument(
        "--shipped-sizes", nargs="*", type=positive_int, default=None,
        help="sizes for the shipped model's table (default: --sizes); none: skip it",
    )  # fmt: skip
    parser.add_argument(
        "--model", nargs="+", type=Path, default=[BUNDLED],
        help="shipped model file(s) for that table, each beside its X_int8.onnx and X.pt if any "
        "(default: the model firmware_config/embedded.toml names, models/bicameral_f25_rgbd.onnx); "
        "a depth model gets a synthetic depth frame",
    )  # fmt: skip
    args = parser.parse_args(argv)

    if args.device == "cuda" and not torch.cuda.is_available():
        print("error: --device cuda but torch.cuda.is_available() is False", file=sys.stderr)
        return 2
    for size in args.sizes:
        if size < 16:
            parser.error(f"--sizes: {size} is below 16")
    shipped_sizes = args.sizes if args.shipped_sizes is None else args.shipped_sizes
    if args.device in ("auto", "cpu"):  # before any table is timed, not after the first
        for size in shipped_sizes:
            if size % 16:
                parser.error(f"size {size}: the shipped model is dynamic, sizes must be multiples of 16")
    for model in args.model:
        if not model.is_file():
            parser.error(f"--model {model}: no such file")
    threads = args.threads or physical_cores()
    torch.set_num_threads(threads)
    info = machine()
    info["threads"] = threads
    print("machine: " + ", ".join(f"{k}={v}" for k, v in info.items()))
    results: dict = {"machine": info, "shipped": [], "cpu": [], "cuda": []}

    if args.device in ("auto", "cpu"):
        repeats = args.repeats or (5 if args.quick else 11)
        print(f"\nShipped model, CPU: batch 1, median of {repeats} interleaved runs after 2 warm-ups, "
              f"{threads} threads")  # fmt: skip
        for size in shipped_sizes:
            for model in args.model:
                results["shipped"].append(bench_shipped(size, repeats, 2, threads, model.resolve()))
                print_shipped(results["shipped"][-1])
        torch.set_num_threads(threads)

    if args.device in ("auto", "cpu") and args.widths:
        repeats = args.repeats or (3 if args.quick else 7)
        print("\nUntrained networks (a second table: the same architecture, fresh weights)")
        print(f"CPU: batch 1, median of {repeats} interleaved runs after 1 warm-up; "
              f"ORT all graph optimisations, {threads} intra-op threads")  # fmt: skip
        for width in args.widths:
            for size in args.sizes:
                row = bench_cpu(width, size, repeats, 1, threads)
                results["cpu"].append(row)
                print(
                    f"  {width} {size}: torch {row['torch_eager_ms']} ms, ORT {row['onnxruntime_ms']} ms",
                    flush=True,
                )
        print_cpu(results["cpu"])

    if args.device == "cuda" or (args.device == "auto" and torch.cuda.is_available()):
        repeats = args.repeats or (20 if args.quick else 100)
        print(f"\nCUDA: batch 1, median of {repeats} runs after 10 warm-ups, cudnn.benchmark on")
        for width in args.widths:
            for size in args.sizes:
                results["cuda"].append(bench_cuda(width, size, repeats, 10))
                torch.cuda.empty_cache()  # the benchmarked models are gone; free their memory
                print(f"  {width} {size}: done", flush=True)
        print_cuda(results["cuda"])

    if info["load_average"] is not None:
        info["load_average_end"] = [round(v, 2) for v in os.getloadavg()]
        start, end = info["load_average"][0], info["load_average_end"][0]
        print(f"\nload average (1 min): {start} at start, {end} at end")
    if args.json:
        write_output(args.json, json.dumps(results, indent=2))
        print(f"\nwrote {args.json}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
