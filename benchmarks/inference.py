"""Inference latency of the bicameral network: PyTorch eager vs ONNX Runtime (CPU), and PyTorch
CUDA fp32 / fp16 / channels-last / CUDA graphs when a GPU is present.

Every figure is the median over repeated single-image (batch 1) forward passes after warm-up,
measured side by side in one run on one machine, which is printed with the table. The ONNX model
is the deployable graph `binpick export` writes (exact mask unpooling, sigmoid outputs), built
in memory from an untrained network: latency does not depend on the weights.

    python benchmarks/inference.py --quick                 # CPU, F100/F50/F25 at 256 and 512
    python benchmarks/inference.py --device cuda --json gpu.json   # GPU paths only (~1-2 min)
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import sys
import time
from collections.abc import Callable
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import torch  # noqa: E402

from bicameral.export import to_onnx  # noqa: E402
from bicameral.networks import WIDTHS, build_network, count_parameters  # noqa: E402
from edge.machine import cpu_model, physical_cores  # noqa: E402


def machine() -> dict:
    import onnxruntime as ort

    info = {
        "cpu": cpu_model(),
        "physical_cores": physical_cores(),
        "logical_cpus": os.cpu_count(),
        "python": platform.python_version(),
        "torch": torch.__version__,
        "onnxruntime": ort.__version__,
        # Other work on the machine inflates every figure (ratios less so): report it.
        "load_average_1min": round(os.getloadavg()[0], 2) if hasattr(os, "getloadavg") else None,
    }
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
    parser.add_argument("--widths", nargs="+", default=["F100", "F50", "F25"], choices=sorted(WIDTHS))
    parser.add_argument("--sizes", nargs="+", type=int, default=[256, 512])
    parser.add_argument(
        "--device",
        choices=["auto", "cpu", "cuda"],
        default="auto",
        help="auto: CPU, plus CUDA when available; cuda: GPU paths only (error without a GPU)",
    )
    parser.add_argument("--repeats", type=int, default=None, help="timed runs per figure (median reported)")
    parser.add_argument("--quick", action="store_true", help="fewer repeats (CPU 3, GPU 20)")
    parser.add_argument("--threads", type=int, default=None, help="CPU threads (default: physical cores)")
    parser.add_argument("--json", type=Path, help="also write the results as JSON here")
    args = parser.parse_args(argv)

    if args.device == "cuda" and not torch.cuda.is_available():
        print("error: --device cuda but torch.cuda.is_available() is False", file=sys.stderr)
        return 2
    for size in args.sizes:
        if size < 16:
            parser.error(f"--sizes: {size} is below 16")
    threads = args.threads or physical_cores()
    torch.set_num_threads(threads)
    info = machine()
    info["threads"] = threads
    print("machine: " + ", ".join(f"{k}={v}" for k, v in info.items()))
    results: dict = {"machine": info, "cpu": [], "cuda": []}

    if args.device in ("auto", "cpu"):
        repeats = args.repeats or (3 if args.quick else 7)
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

    if hasattr(os, "getloadavg"):
        info["load_average_1min_end"] = round(os.getloadavg()[0], 2)
        start, end = info["load_average_1min"], info["load_average_1min_end"]
        print(f"\nload average (1 min): {start} at start, {end} at end")
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        tmp = args.json.with_name(args.json.name + ".tmp")
        tmp.write_text(json.dumps(results, indent=2))
        os.replace(tmp, args.json)
        print(f"\nwrote {args.json}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
