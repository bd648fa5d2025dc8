"""End-to-end GPU latency of one pick: host image in -> grasp out, F100 and F25 at 512x512.

Per network width, measured side by side in one run on one GPU (printed with the table):
  - end to end: 8-bit RGB numpy image -> pinned copy -> GPU -> preprocessing, network and sigmoid
    (PyTorch, fp16, channels-last, one CUDA graph: bicameral.graphed, as the
    appliance's torch-cuda backend) -> CUDA ranking of the maps in place
    (edge.ranking.cuda) -> Grasp on the host; p50/p95 and each stage's share;
  - the same with the maps copied to the host and ranked by the CPU hot path (edge.ranking),
    the alternative a user would pick;
  - the compute floor: the network's FLOPs, counted analytically from its convolutions, over the
    fp16 matrix throughput measured in this run (a large matmul).
And once: the GPU post-processing alone (target <= 0.5 ms at 512x512) vs the CPU hot path, on a
synthetic 30-instance pile (mikado.flat_piles), since an untrained network's maps are not a
realistic pile. End-to-end figures are given both for ranking the network's own maps and for
ranking that pile in their place (network still run): the second is the realistic cycle.

The network is untrained (latency does not depend on the weights); the normalisation uses
ImageNet mean/std.

Then, per width, the inference variants side by side (bicameral.graphed's `unpool` and `compile`
options: "mask" as above, "indices", and with --compile both again through torch.compile): graph
replay alone timed by CUDA events, build/compile seconds, and each variant's maps against the
"mask" maps of the same image, so the fastest variant that still gives the same maps can be
chosen from one run. One GPU run is all there is, so a variant that fails records its error and
the rest go on, and a time budget skips what is left rather than lose the whole log to a timeout.

    python -m benchmarks.gpu --json gpu.json
"""

from __future__ import annotations

import argparse
import contextlib
import json
import statistics
import sys
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np
import torch
from torch import nn

from benchmarks.arguments import non_negative_float, output_file, positive_int, write_output
from benchmarks.machine_info import machine_info
from bicameral import build_network
from bicameral.graphed import GraphedNetwork
from bicameral.networks import WIDTHS
from edge.ranking import RankingParams, rank
from edge.ranking.cuda import CudaRanker, cuda_available
from mikado.flat_piles import make_pile

IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)


def machine() -> dict:
    props = torch.cuda.get_device_properties(0)
    return {
        "gpu": torch.cuda.get_device_name(0),
        "gpu_memory_gib": round(props.total_memory / 2**30, 1),
        "sm_count": props.multi_processor_count,
        "cuda": torch.version.cuda,
        **machine_info("torch"),
    }


def percentiles(samples_ms: list[float]) -> dict:
    ordered = sorted(samples_ms)
    p95 = ordered[min(len(ordered) - 1, round(0.95 * (len(ordered) - 1)))]
    return {"p50_ms": round(statistics.median(ordered), 4), "p95_ms": round(p95, 4), "runs": len(ordered)}


def timed_runs(fn: Callable[[], object], repeats: int, warmup: int) -> list[float]:
    """Wall-clock milliseconds of `fn`, which must return only once its result is on the host."""
    for _ in range(warmup):
        fn()
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        times.append((time.perf_counter() - start) * 1000)
    return times


def matmul_tflops(n: int = 8192, repeats: int = 20) -> float:
    """Dense fp16 matrix throughput (tensor cores) in TFLOP/s, the floor's denominator."""
    a = torch.randn(n, n, device="cuda", dtype=torch.float16)
    b = torch.randn(n, n, device="cuda", dtype=torch.float16)
    for _ in range(3):
        a @ b
    torch.cuda.synchronize()
    start, stop = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
    start.record()
    for _ in range(repeats):
        a @ b
    stop.record()
    stop.synchronize()
    seconds = start.elapsed_time(stop) / 1000 / repeats
    return 2 * n**3 / seconds / 1e12


def conv_flops(model: nn.Module, height: int, width: int) -> int:
    """FLOPs (2 per multiply-add) of every convolution for one image, from the layer shapes."""
    total = 0

    def conv_hook(module: nn.Conv2d, inputs: tuple, output: torch.Tensor) -> None:
        nonlocal total
        kh, kw = module.kernel_size
        per_output = (module.in_channels // module.groups) * kh * kw
        total += 2 * per_output * output[0].numel()

    def deconv_hook(module: nn.ConvTranspose2d, inputs: tuple, output: torch.Tensor) -> None:
        nonlocal total
        kh, kw = module.kernel_size
        per_input = (module.out_channels // module.groups) * kh * kw
        total += 2 * per_input * inputs[0][0].numel()

    handles = []
    for m in model.modules():
        if isinstance(m, nn.Conv2d):
            handles.append(m.register_forward_hook(conv_hook))
        elif isinstance(m, nn.ConvTranspose2d):
            handles.append(m.register_forward_hook(deconv_hook))
    weight = next(model.parameters())
    with torch.inference_mode():
        model(
            torch.zeros(1, model.config.in_channels, height, width, device=weight.device, dtype=weight.dtype)
        )
    for h in handles:
        h.remove()
    return total


def graphed_network(
    width: str, height_px: int, width_px: int, unpool: str = "mask", compile: bool = False
) -> GraphedNetwork:
    """An untrained bicameral network of this width, captured as the appliance's torch-cuda
    backend captures it (bicameral.graphed), with the ImageNet normalisation inside the graph.
    Seeded, so every variant of a width has the same weights and their maps can be compared."""
    torch.manual_seed(0)
    model = build_network("bicameral", width)
    return GraphedNetwork(
        model,
        (3, height_px, width_px),
        mean=IMAGENET_MEAN,
        std=IMAGENET_STD,
        unpool=unpool,
        compile=compile,
    )


def synthetic_pile(seed: int, size: int, instances: int, noise: float) -> tuple[object, str]:
    """The pile the post-processing is timed on, with its source's name for the report."""
    return make_pile(seed, size, size, instances=instances, noise=noise), "mikado.flat_piles"


def pile_rgb(pile_labels: np.ndarray) -> np.ndarray:
    """A colour picture of the pile (the camera image stand-in; content does not change timing)."""
    rng = np.random.default_rng(0)
    palette = rng.integers(40, 255, size=(int(pile_labels.max()) + 1, 3), dtype=np.uint8)
    palette[0] = (20, 20, 20)
    return palette[pile_labels]


def bench_postprocess(pile, ranker: CudaRanker, repeats: int, cpu_repeats: int) -> dict:
    y_gpu = torch.from_numpy(pile.boundaries).cuda()
    z_gpu = torch.from_numpy(pile.occlusions).cuda()
    torch.cuda.synchronize()
    params = RankingParams()
    device_ms: list[float] = []

    def gpu_call() -> None:
        ranker.rank(y_gpu, z_gpu, params)
        device_ms.append(ranker.last_device_ms)

    gpu = timed_runs(gpu_call, repeats, warmup=20)
    device_ms = device_ms[20:]
    # Where the wall time over the device time goes: the native call alone (C++, driver and
    # both synchronisations, without the Python wrapper's argument checks and Candidate objects),
    # and one tiny device->host round trip (the floor of each synchronisation).
    native_args = (
        y_gpu.data_ptr(), 0, y_gpu.stride(0), y_gpu.stride(1),
        z_gpu.data_ptr(), 0, z_gpu.stride(0), z_gpu.stride(1),
        y_gpu.shape[0], y_gpu.shape[1], params.native(),
        torch.cuda.current_stream().cuda_stream, False,
    )  # fmt: skip
    native = timed_runs(lambda: ranker._native.rank_device(*native_args), repeats, warmup=5)
    tiny = torch.zeros(4, device=y_gpu.device)
    round_trip = timed_runs(lambda: tiny.cpu(), repeats, warmup=5)
    cpu = timed_runs(lambda: rank(pile.boundaries, pile.occlusions, params), cpu_repeats, warmup=2)
    ranking = ranker.rank(y_gpu, z_gpu, params)
    row = {
        "candidates": len(ranking.candidates),
        "components": ranker.last_component_count,
        "gpu_wall": percentiles(gpu),
        "gpu_device": percentiles(device_ms),
        "gpu_native_call_wall": percentiles(native),
        "tiny_device_to_host_round_trip": percentiles(round_trip),
        "cpu_hotpath": percentiles(cpu),
    }
    row["cpu_over_gpu"] = round(row["cpu_hotpath"]["p50_ms"] / row["gpu_wall"]["p50_ms"], 2)
    row["meets_0_5_ms"] = row["gpu_wall"]["p50_ms"] <= 0.5
    return row


def bench_end_to_end(
    width: str, net: GraphedNetwork, pile, ranker: CudaRanker, tflops: float, repeats: int, cpu_repeats: int
) -> dict:
    h, w = pile.boundaries.shape
    rgb = pile_rgb(pile.labels)
    pile_y = torch.from_numpy(pile.boundaries).cuda()
    pile_z = torch.from_numpy(pile.occlusions).cuda()
    params = RankingParams()
    stream = torch.cuda.current_stream()

    def cycle(maps: tuple[torch.Tensor, torch.Tensor]) -> None:
        net.upload(rgb)
        net.replay()
        ranker.rank(maps[0], maps[1], params, stream=stream.cuda_stream)  # returns with the grasp on the host

    stages: dict[str, list[float]] = {"upload": [], "inference": [], "postprocess": []}

    def staged_cycle() -> None:
        """One cycle with a synchronisation after each stage, to apportion the time."""
        t0 = time.perf_counter()
        net.upload(rgb)
        torch.cuda.synchronize()
        t1 = time.perf_counter()
        net.replay()
        torch.cuda.synchronize()
        t2 = time.perf_counter()
        ranker.rank(pile_y, pile_z, params, stream=stream.cuda_stream)
        t3 = time.perf_counter()
        for name, ms in zip(stages, ((t1 - t0), (t2 - t1), (t3 - t2)), strict=True):
            stages[name].append(ms * 1000)

    def cpu_cycle() -> None:
        """The alternative: maps copied to the host, ranked by the CPU hot path. Like the headline
        figure, it ranks the pile in place of the untrained network's maps (after copying those)."""
        net.upload(rgb)
        net.replay()
        net.boundaries.cpu(), net.occlusions.cpu()
        rank(pile.boundaries, pile.occlusions, params)

    with torch.inference_mode():
        own = timed_runs(lambda: cycle((net.boundaries, net.occlusions)), repeats, warmup=20)
        own_candidates = len(ranker.rank(net.boundaries, net.occlusions, params).candidates)
        realistic = timed_runs(lambda: cycle((pile_y, pile_z)), repeats, warmup=20)
        timed_runs(staged_cycle, repeats, warmup=0)
        cpu_alt = timed_runs(cpu_cycle, cpu_repeats, warmup=3)
        flops = conv_flops(net.model, h, w)
    stage_p50 = {k: statistics.median(v) for k, v in stages.items()}
    total = sum(stage_p50.values())
    row = {
        "width": width,
        "size": f"{h}x{w}",
        "end_to_end_network_maps": percentiles(own),
        "network_maps_candidates": own_candidates,
        "end_to_end_pile_maps": percentiles(realistic),
        "end_to_end_cpu_postprocess": percentiles(cpu_alt),
        "stage_p50_ms": {k: round(v, 4) for k, v in stage_p50.items()},
        "stage_share": {k: round(v / total, 3) for k, v in stage_p50.items()},
        "gflops": round(flops / 1e9, 2),
        "matmul_tflops": round(tflops, 1),
        "compute_floor_ms": round(flops / (tflops * 1e12) * 1000, 4),
    }
    row["cpu_postprocess_over_gpu"] = round(
        row["end_to_end_cpu_postprocess"]["p50_ms"] / row["end_to_end_pile_maps"]["p50_ms"], 2
    )
    return row


# ---------------------------------------------------------------- inference variants

# (unpool, compile), the reference first: the other variants' maps are compared with its maps.
VARIANT_FORMS: tuple[tuple[str, bool], ...] = (
    ("mask", False),
    ("indices", False),
    ("mask", True),
    ("indices", True),
)
REFERENCE_FORM = VARIANT_FORMS[0]
VARIANT_WARMUP = 20
MIN_VARIANT_REPLAYS = 100


def variant_name(unpool: str, compiled: bool) -> str:
    return unpool + ("+compile" if compiled else "")


def variant_plan(widths: list[str], compile: bool) -> list[tuple[str, str, bool]]:
    """(width, unpool, compile) in measuring order: form by form, every width's reference first.

    The cheap forms of every width come before any compilation (a minute each), so a slow compile
    cannot eat the budget of the uncompiled variants; the references come before everything
    else, so a variant that wrecks the CUDA context (a device-side assert is sticky) can only cost
    the variants after it, never the maps they are compared with.
    """
    forms = [form for form in VARIANT_FORMS if compile or not form[1]]
    return [(width, unpool, compiled) for unpool, compiled in forms for width in widths]


def one_line(exc: BaseException, limit: int = 400) -> str:
    """An exception as one line, with what it was raised while handling (a failed CUDA graph
    capture raises again when the capture ends; the first error is the one that explains it)."""
    parts = []
    seen: BaseException | None = exc
    while seen is not None and len(parts) < 3:
        parts.append(" ".join(f"{type(seen).__name__}: {seen}".split()))
        seen = seen.__cause__ or (None if seen.__suppress_context__ else seen.__context__)
    text = " <- ".join(parts)
    return text if len(text) <= limit else text[: limit - 3] + "..."


def max_abs_diff(a: np.ndarray, b: np.ndarray) -> float:
    """Largest |a - b|, computed in float64 so that the difference itself is not rounded."""
    return float(np.max(np.abs(np.asarray(a, np.float64) - np.asarray(b, np.float64))))


Maps = tuple[np.ndarray, np.ndarray]
MeasureVariant = Callable[[str, str, bool], tuple[dict, Maps]]


def run_variants(
    plan: list[tuple[str, str, bool]],
    measure: MeasureVariant,
    budget_s: float,
    clock: Callable[[], float] = time.monotonic,
    log: Callable[[str], None] = print,
    on_row: Callable[[list[dict]], None] | None = None,
) -> list[dict]:
    """One row per planned variant: measured ("ok"), "failed" with the error, or "skipped" once
    `budget_s` seconds have passed since the first variant started.

    `measure(width, unpool, compile)` returns (timing fields, (boundaries, occlusions) maps);
    each variant's maps are compared with its width's reference maps (None where the reference
    did not run). The budget is checked before a variant starts, so the last one can overrun it:
    `log` says when each starts and `on_row` gets the rows after each, so whatever kills an
    overrunning run leaves the finished variants on record.
    """
    start = clock()
    references: dict[str, Maps] = {}
    rows = []
    for width, unpool, compiled in plan:
        row: dict = {"width": width, "variant": variant_name(unpool, compiled), "unpool": unpool}
        row["compile"] = compiled
        elapsed = clock() - start
        if elapsed >= budget_s:
            row["status"] = "skipped"
            row["error"] = f"variant budget of {budget_s:g} s spent ({elapsed:.0f} s elapsed)"
        else:
            log(f"variant {width} {row['variant']}: started {elapsed:.0f} s into the budget")
            try:
                timing, maps = measure(width, unpool, compiled)
            except Exception as exc:  # one GPU run: record it, go on with the next variant
                row["status"] = "failed"
                row["error"] = one_line(exc)
            else:
                row["status"] = "ok"
                row.update(timing)
                if (unpool, compiled) == REFERENCE_FORM:
                    references[width] = maps
                reference = references.get(width)
                for name, ours, theirs in zip(
                    ("boundaries", "occlusions"), maps, reference or (None, None), strict=True
                ):
                    row[f"max_abs_diff_{name}"] = None if theirs is None else max_abs_diff(ours, theirs)
        rows.append(row)
        log(variant_progress(row))
        if on_row is not None:
            on_row(rows)
    return rows


def variant_progress(row: dict) -> str:
    text = f"variant {row['width']} {row['variant']}: {row['status']}"
    if row["status"] == "ok":
        return text + (
            f", replay p50 {row['replay_device']['p50_ms']:.3f} ms (events), build {row['build_s']:.1f} s"
        )
    return text + f" ({row['error']})"


def _ms(value: float | None) -> str:
    return "-" if value is None else f"{value:.3f}"


def _diff(value: float | None) -> str:
    if value is None:
        return "-"
    return "0" if value == 0 else f"{value:.1e}"


def format_variants_table(rows: list[dict], widths: list[str]) -> str:
    """The "inference variants" table: per width, the variants in VARIANT_FORMS order."""
    order = {variant_name(*form): i for i, form in enumerate(VARIANT_FORMS)}
    rank = {w: i for i, w in enumerate(widths)}
    ordered = sorted(rows, key=lambda r: (rank.get(r["width"], len(rank)), order.get(r["variant"], 99)))
    reference_p50 = {
        r["width"]: r["replay_device"]["p50_ms"]
        for r in rows
        if r["status"] == "ok" and (r["unpool"], r["compile"]) == REFERENCE_FORM
    }
    lines = [
        "\ninference variants (graph replay only: CUDA events around each single replay; "
        "max|d| = largest difference of the float32 maps from the same width's mask maps)",
        f"{'net':>5} {'variant':<16} {'p50 ms':>8} {'p95 ms':>8} {'wall p50':>9} {'vs mask':>8} "
        f"{'build s':>8} {'max|dY|':>8} {'max|dZ|':>8}  status",
    ]
    for r in ordered:
        device = r.get("replay_device") or {}
        wall = r.get("replay_wall") or {}
        p50 = device.get("p50_ms")
        reference = reference_p50.get(r["width"])
        speedup = "-" if p50 is None or reference is None else f"{reference / p50:.2f}x"
        build = "-" if r.get("build_s") is None else f"{r['build_s']:.1f}"
        status = r["status"] if r["status"] == "ok" else f"{r['status']}: {r['error']}"
        lines.append(
            f"{r['width']:>5} {r['variant']:<16} {_ms(p50):>8} {_ms(device.get('p95_ms')):>8} "
            f"{_ms(wall.get('p50_ms')):>9} {speedup:>8} {build:>8} "
            f"{_diff(r.get('max_abs_diff_boundaries')):>8} {_diff(r.get('max_abs_diff_occlusions')):>8}  "
            f"{status}"
        )
    return "\n".join(lines)


def time_replays(net: GraphedNetwork, replays: int, warmup: int = VARIANT_WARMUP) -> tuple[list, list]:
    """(device ms by CUDA events, wall ms) of single replays, each waited for before the next,
    as the appliance replays one frame at a time."""
    for _ in range(warmup):
        net.replay()
    torch.cuda.synchronize()
    start, stop = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
    device_ms, wall_ms = [], []
    for _ in range(replays):
        t0 = time.perf_counter()
        start.record()
        net.replay()
        stop.record()
        stop.synchronize()
        wall_ms.append((time.perf_counter() - t0) * 1000)
        device_ms.append(start.elapsed_time(stop))
    return device_ms, wall_ms


def measure_variant(
    width: str, unpool: str, compiled: bool, image: np.ndarray, replays: int
) -> tuple[dict, Maps]:
    """Build, time and read back one variant; its network is freed before the next is built."""
    net = None
    try:
        t0 = time.perf_counter()
        net = graphed_network(width, image.shape[0], image.shape[1], unpool=unpool, compile=compiled)
        build_s = time.perf_counter() - t0
        net.upload(image)
        net.replay()
        torch.cuda.synchronize()
        maps = (net.boundaries.cpu().numpy(), net.occlusions.cpu().numpy())
        device_ms, wall_ms = time_replays(net, replays)
        timing = {
            "build_s": round(build_s, 2),
            "replay_device": percentiles(device_ms),
            "replay_wall": percentiles(wall_ms),
        }
        return timing, maps
    finally:
        del net
        # A failure here would hide the variant's own error; the next variant reports a broken GPU.
        with contextlib.suppress(Exception):
            if compiled:
                torch._dynamo.reset()  # drop the compiled code (and what it holds) with the network
            torch.cuda.empty_cache()


def bench_variants(
    widths: list[str],
    size: int,
    compile: bool,
    budget_s: float,
    replays: int,
    on_row: Callable[[list[dict]], None] | None = None,
) -> list[dict]:
    """Every variant on the same random 8-bit image (the references' maps are what the others
    are compared with, so the input must not change between them)."""
    image = np.random.default_rng(1).integers(0, 256, size=(size, size, 3), dtype=np.uint8)
    return run_variants(
        variant_plan(widths, compile),
        lambda width, unpool, compiled: measure_variant(width, unpool, compiled, image, replays),
        budget_s,
        log=lambda line: print(line, flush=True),
        on_row=on_row,
    )


TARGETS_MS = {"F100": 5.0, "F25": 2.0}


def print_table(info: dict, posts: dict[str, dict], rows: list[dict]) -> None:
    print("\nmachine: " + ", ".join(f"{k}={v}" for k, v in info.items()))
    for mode, post in posts.items():
        print(
            f"\nGPU post-processing alone ({mode} ranking), 512x512 pile ({post['candidates']} candidates of "
            f"{post['components']} components): p50 {post['gpu_wall']['p50_ms']:.3f} ms wall "
            f"(p95 {post['gpu_wall']['p95_ms']:.3f}), {post['gpu_device']['p50_ms']:.3f} ms GPU events, "
            f"{post['gpu_native_call_wall']['p50_ms']:.3f} ms native call alone, "
            f"{post['tiny_device_to_host_round_trip']['p50_ms']:.3f} ms per tiny device->host round trip; "
            f"CPU hot path p50 {post['cpu_hotpath']['p50_ms']:.3f} ms -> {post['cpu_over_gpu']}x; "
            f"target <= 0.5 ms: {'met' if post['meets_0_5_ms'] else 'NOT met'}"
        )
    head = (
        f"\n{'net':>5} {'network':>8} {'ranking':>8} {'e2e p50':>8} {'e2e p95':>8} {'target':>7} "
        f"{'floor':>7} {'GFLOP':>7} "
        f"{'upload':>7} {'infer':>7} {'post':>7} {'own-maps p50':>13} {'CPU-post p50':>13}"
    )
    print(head + "   (ms; e2e ranks the pile maps; stage shares from synchronised cycles)")
    for r in rows:
        e2e = r["end_to_end_pile_maps"]
        share = r["stage_share"]
        target = TARGETS_MS.get(r["width"])
        print(
            f"{r['width']:>5} {r['network']:>8} {r['ranking']:>8} "
            f"{e2e['p50_ms']:>8.3f} {e2e['p95_ms']:>8.3f} "
            f"{target or '-':>7} "
            f"{r['compute_floor_ms']:>7.3f} {r['gflops']:>7.1f} "
            f"{share['upload']:>6.0%} {share['inference']:>7.0%} {share['postprocess']:>7.0%} "
            f"{r['end_to_end_network_maps']['p50_ms']:>13.3f} "
            f"{r['end_to_end_cpu_postprocess']['p50_ms']:>13.3f}"
        )
    print(f"fp16 matmul throughput (8192^3): {rows[0]['matmul_tflops'] if rows else '-'} TFLOP/s")


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--widths", nargs="+", type=str.upper, choices=sorted(WIDTHS), default=["F100", "F25"],
        help="network widths (default F100 F25)",
    )  # fmt: skip
    parser.add_argument(
        "--no-e2e-compile",
        dest="e2e_compile",
        action="store_false",
        help="end to end: time only the eager network in its graph, not also the torch.compile'd one",
    )
    parser.add_argument(
        "--ranking-modes",
        nargs="+",
        choices=["direct", "graph"],
        default=["direct", "graph"],
        help="CUDA ranking modes to time (edge.ranking.cuda.CudaRanker graph=False/True)",
    )
    parser.add_argument("--size", type=positive_int, default=512, help="square image side in pixels")
    parser.add_argument("--repeats", type=positive_int, default=300, help="timed GPU cycles per figure")
    parser.add_argument(
        "--cpu-repeats", type=positive_int, default=30, help="timed cycles with CPU post-processing"
    )
    parser.add_argument("--json", type=output_file, help="also write the results as JSON here")
    parser.add_argument(
        "--no-variants",
        dest="variants",
        action="store_false",
        help="skip the inference variants (unpooling forms, torch.compile) measured after the table",
    )
    parser.add_argument(
        "--variants-only",
        action="store_true",
        help="only the inference variants (device-timed, so a busy CPU barely skews them; "
        "needs no edge._hotpath_cuda)",
    )
    parser.add_argument(
        "--compile",
        action="store_true",
        help="also time the torch.compile variants (off by default: each compiles for a minute or more)",
    )
    parser.add_argument(
        "--variant-budget-s",
        type=non_negative_float,
        default=150.0,
        help="seconds after which the variants not yet started are skipped (default 150)",
    )
    args = parser.parse_args(argv)
    if args.variants_only and not args.variants:
        parser.error("--variants-only and --no-variants leave nothing to measure")
    return args


def write_json(path: Path | None, result: dict) -> None:
    if path is not None:
        write_output(path, json.dumps(result, indent=2) + "\n")


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)

    if not torch.cuda.is_available():
        print("error: torch.cuda.is_available() is False: this benchmark needs a CUDA GPU", file=sys.stderr)
        return 2
    if not args.variants_only:
        ok, why = cuda_available()
        if not ok:
            print(f"error: {why} (build it: scripts/gpu_check.sh)", file=sys.stderr)
            return 2
    torch.backends.cudnn.benchmark = True
    info = machine()
    print("machine: " + ", ".join(f"{k}={v}" for k, v in info.items()), flush=True)
    result: dict = {"machine": info}
    if not args.variants_only:
        pile, pile_source = synthetic_pile(0, args.size, instances=30, noise=0.15)
        info["pile"] = pile_source
        tflops = matmul_tflops()
        posts: dict[str, dict] = {}
        rows = []
        rankers = {mode: CudaRanker(graph=mode == "graph") for mode in args.ranking_modes}
        for mode, ranker in rankers.items():  # side by side: the CUDA ranking's direct and graph modes
            posts[mode] = bench_postprocess(pile, ranker, args.repeats, args.cpu_repeats)
            print(f"post-processing ({mode}): {posts[mode]}", flush=True)
        size = pile.boundaries.shape
        for width in args.widths:
            for compiled in (False, True) if args.e2e_compile else (False,):
                started = time.perf_counter()
                net = graphed_network(width, *size, compile=compiled)
                build_s = round(time.perf_counter() - started, 1)
                for mode, ranker in rankers.items():
                    row = bench_end_to_end(width, net, pile, ranker, tflops, args.repeats, args.cpu_repeats)
                    rows.append({"ranking": mode, "network": "compiled" if compiled else "graph",
                                 "build_s": build_s, **row})  # fmt: skip
                    print(f"{width} ({mode}, {rows[-1]['network']}): {rows[-1]}", flush=True)
                del net
                torch.cuda.empty_cache()  # the benchmarked network is gone; free its memory
        print_table(info, posts, rows)
        result.update(postprocess=posts, end_to_end=rows, targets_ms=TARGETS_MS)
        write_json(args.json, result)  # already on disk should the variants overrun a timeout
    if args.variants:
        result["variant_budget_s"] = args.variant_budget_s
        variants = bench_variants(
            args.widths,
            args.size,
            args.compile,
            args.variant_budget_s,
            replays=max(MIN_VARIANT_REPLAYS, args.repeats),
            on_row=lambda done: write_json(args.json, {**result, "inference_variants": done}),
        )
        print(format_variants_table(variants, args.widths))
        result["inference_variants"] = variants
    if args.json:
        write_json(args.json, result)
        print(f"wrote {args.json}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
