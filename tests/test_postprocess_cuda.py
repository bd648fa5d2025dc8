"""The CUDA ranking (edge.ranking.cuda) against the CPU hot path (edge.ranking).

The comparisons run only where `edge._hotpath_cuda` is built and a CUDA device answers
(elsewhere they are skipped with the reason; with BINPICK_REQUIRE_GPU=1 they fail instead);
the input parsing at the end runs everywhere. The GPU result must equal the CPU's: same
candidates in the same order (labels, areas, boxes, centroids, contour lengths exactly;
scores, angles and extents within 1e-9, far inside the 1e-6 the hot path promises), the same
grasp and the same label image.
"""

from __future__ import annotations

import math
import os

import numpy as np
import pytest

from edge.ranking import Ranking, RankingParams, rank
from edge.ranking.cuda import CudaRanker, cuda_available, rank_cuda

CUDA_OK, CUDA_WHY = cuda_available()
# scripts/gpu_check.sh sets BINPICK_REQUIRE_GPU=1: on the GPU machine a missing GPU is a failure.
REQUIRE_GPU = os.environ.get("BINPICK_REQUIRE_GPU") == "1"
gpu = pytest.mark.skipif(not CUDA_OK and not REQUIRE_GPU, reason=CUDA_WHY)

TOL = 1e-9


def torch_cuda():
    """torch when it has a usable CUDA device (for the device-input tests), else skip."""
    if REQUIRE_GPU:
        import torch

        assert torch.cuda.is_available(), "BINPICK_REQUIRE_GPU=1 but torch has no CUDA device"
        return torch
    torch = pytest.importorskip("torch")
    if not torch.cuda.is_available():
        pytest.skip("torch has no CUDA device")
    return torch


def assert_same(cpu: Ranking, gpu: Ranking, context: str = "") -> None:
    assert len(gpu.candidates) == len(cpu.candidates), context
    for i, (c, g) in enumerate(zip(cpu.candidates, gpu.candidates, strict=True)):
        where = f"{context} candidate {i}"
        assert (g.label, g.area, g.bbox, g.contour_length) == (c.label, c.area, c.bbox, c.contour_length), (
            where
        )
        for field in ("s1", "s2", "score", "angle_deg", "major_px", "minor_px"):
            assert math.isclose(getattr(g, field), getattr(c, field), rel_tol=0, abs_tol=TOL), (where, field)
    if cpu.grasp is None:
        assert gpu.grasp is None, context
    else:
        assert gpu.grasp is not None, context
        assert (gpu.grasp.method, gpu.grasp.candidate_index) == (cpu.grasp.method, cpu.grasp.candidate_index)
        for field in ("u", "v", "angle_deg", "major_px", "minor_px", "score"):
            assert math.isclose(
                getattr(gpu.grasp, field), getattr(cpu.grasp, field), rel_tol=0, abs_tol=TOL
            ), (
                context,
                field,
            )
    if cpu.labels is not None:
        assert gpu.labels is not None and gpu.labels.dtype == np.int32, context
        np.testing.assert_array_equal(gpu.labels, cpu.labels, err_msg=context)


def compare(y: np.ndarray, z: np.ndarray, params: RankingParams | None = None, context: str = "") -> Ranking:
    cpu = rank(y, z, params, return_labels=True)
    gpu = rank_cuda(y, z, params, return_labels=True)
    assert_same(cpu, gpu, context)
    return gpu


def box_blur(a: np.ndarray, radius: int) -> np.ndarray:
    """Separable box filter by cumulative sums (NumPy only: the GPU machine may lack OpenCV)."""
    size = 2 * radius + 1
    for axis in (0, 1):
        pad = [(0, 0), (0, 0)]
        pad[axis] = (radius + 1, radius)
        c = np.cumsum(np.pad(a, pad, mode="edge"), axis=axis, dtype=np.float64)
        n = a.shape[axis]
        a = (np.take(c, range(size, n + size), axis) - np.take(c, range(n), axis)) / size
    return a


def blobs(rng: np.random.Generator, h: int, w: int, radius: int) -> np.ndarray:
    """Smooth random field in [0, 1]: thresholds cut it into blob-shaped components."""
    noise = rng.random((h, w))
    if radius > 0 and h > 0 and w > 0:
        noise = box_blur(box_blur(noise, radius), radius)
        lo, hi = float(noise.min()), float(noise.max())
        noise = (noise - lo) / (hi - lo + 1e-12)
    return noise.astype(np.float32)


def identical_squares() -> tuple[np.ndarray, np.ndarray]:
    tile = (np.random.default_rng(0).random((26, 26)) < 0.5).astype(np.float32)
    y = np.ones((100, 100), np.float32)
    z = np.zeros((100, 100), np.float32)
    for top, left in [(10, 10), (10, 60), (60, 10), (60, 60)]:
        y[top : top + 16, left : left + 16] = 0.0
        z[top - 5 : top + 21, left - 5 : left + 21] = tile  # the same surroundings for each square
    return y, z


def as_u8(a: np.ndarray) -> np.ndarray:
    return np.clip(np.round(a * 255), 0, 255).astype(np.uint8)


SHAPES = [(1, 1), (1, 17), (23, 1), (2, 2), (8, 8), (37, 53), (64, 64), (128, 96), (200, 317)]
PARAMS = [
    RankingParams(),
    RankingParams(alpha=0.5, beta=0.5, min_area=0.0, max_area=math.inf, patch=1),
    RankingParams(alpha=0.3, beta=0.2, min_area=5, max_area=2000, patch=3, w1=2.0, w2=0.5, margin=0.0),
    RankingParams(alpha=0.45, beta=0.6, min_area=1.0, max_area=0.9, patch=15, w1=0.0, w2=1.0, margin=10.0),
    RankingParams(alpha=0.0, beta=1.0, min_area=0, max_area=math.inf, patch=31),
    RankingParams(alpha=1.0, beta=0.0, min_area=0.0005, max_area=0.5, patch=9, w1=1.0, w2=0.0),
]


@pytest.mark.gpu
@gpu
@pytest.mark.parametrize("seed", range(48))
def test_random_maps_match_cpu(seed: int) -> None:
    rng = np.random.default_rng(seed)
    h, w = SHAPES[seed % len(SHAPES)]
    params = PARAMS[seed % len(PARAMS)]
    y = blobs(rng, h, w, radius=int(rng.choice([0, 1, 3])))
    if 0 < params.alpha < 1 and y.size:  # about half the pixels below alpha: many candidates
        y = np.clip(y * np.float32(params.alpha / max(float(np.median(y)), 1e-6)), 0, 1)
    z = blobs(rng, h, w, radius=1)
    if seed % 3 == 1:
        y = as_u8(y)
    if seed % 4 == 2:
        z = as_u8(z)
    compare(y, z, params, f"seed {seed} shape {(h, w)}")


@pytest.mark.gpu
@gpu
@pytest.mark.parametrize("noise", [0.0, 0.15])
@pytest.mark.parametrize("seed", range(4))
def test_synthetic_piles_match_cpu(seed: int, noise: float) -> None:
    pytest.importorskip("cv2", reason="mikado.flat_piles draws with OpenCV, not installed here")
    from mikado.flat_piles import make_pile

    pile = make_pile(seed, 512, 512, instances=30, noise=noise)
    gpu = compare(pile.boundaries, pile.occlusions, context=f"pile {seed} noise {noise}")
    assert gpu.candidates, "a 30-instance pile has candidates"
    compare(as_u8(pile.boundaries), as_u8(pile.occlusions), context=f"uint8 pile {seed}")


@pytest.mark.gpu
@gpu
def test_equal_scores_keep_raster_order() -> None:
    """Four identical squares in identical occlusion surroundings score bit-identically on the CPU
    (same contour terms summed in the same order, non-trivial fractions): the GPU must give the
    same doubles and keep label order."""
    y, z = identical_squares()
    gpu = compare(y, z, RankingParams(min_area=10), "identical squares")
    assert [c.label for c in gpu.candidates] == [1, 2, 3, 4]
    assert len({c.score for c in gpu.candidates}) == 1
    assert 0 < gpu.candidates[0].s1 < 1


@pytest.mark.gpu
@gpu
@pytest.mark.parametrize(
    ("name", "y", "z"),
    [
        ("empty", np.zeros((0, 0), np.float32), np.zeros((0, 0), np.float32)),
        ("empty rows", np.zeros((0, 7), np.float32), np.zeros((0, 7), np.float32)),
        ("all boundary", np.ones((33, 47), np.float32), np.ones((33, 47), np.float32)),
        ("no boundary", np.zeros((33, 47), np.float32), np.zeros((33, 47), np.float32)),
        ("1x1 candidate", np.zeros((1, 1), np.float32), np.zeros((1, 1), np.float32)),
        ("1x1 boundary", np.ones((1, 1), np.float32), np.ones((1, 1), np.float32)),
        (
            "uint8 at alpha*255",
            np.array([[25, 26, 25], [26, 25, 26]], np.uint8),
            np.full((2, 3), 26, np.uint8),
        ),
    ],
)
def test_edge_cases_match_cpu(name: str, y: np.ndarray, z: np.ndarray) -> None:
    compare(y, z, RankingParams(min_area=0, max_area=math.inf), name)
    compare(y, z, RankingParams(), name)


@pytest.mark.gpu
@gpu
def test_nan_maps_match_cpu() -> None:
    rng = np.random.default_rng(7)
    y = blobs(rng, 96, 80, 2)
    z = blobs(rng, 96, 80, 1)
    y[rng.random(y.shape) < 0.05] = np.nan
    z[rng.random(z.shape) < 0.05] = np.nan
    y[10:20, 10:20] = np.nan
    compare(y, z, RankingParams(min_area=0), "NaN")


@pytest.mark.gpu
@gpu
@pytest.mark.parametrize("size", [64, 512])
def test_checkerboard_many_components(size: int) -> None:
    """The most components 4-connectivity allows (size^2/2): large sorts, more records than one copy."""
    y = (np.indices((size, size)).sum(axis=0) % 2).astype(np.float32)
    z = np.zeros_like(y)
    z[:, : size // 2] = 1.0
    gpu = compare(y, z, RankingParams(min_area=0, max_area=math.inf), f"checkerboard {size}")
    assert len(gpu.candidates) == size * size // 2


@pytest.mark.gpu
@gpu
def test_non_contiguous_host_maps() -> None:
    rng = np.random.default_rng(3)
    y = blobs(rng, 130, 170, 2)
    z = blobs(rng, 130, 170, 1)
    compare(y[::2, ::3], z[::2, ::3], context="strided")
    compare(y.T, z.T, context="transposed")


@pytest.mark.gpu
@gpu
def test_repeated_calls_are_deterministic() -> None:
    rng = np.random.default_rng(11)
    y = blobs(rng, 256, 256, 2)
    z = blobs(rng, 256, 256, 1)
    ranker = CudaRanker()
    first = ranker.rank(y, z, return_labels=True)
    for _ in range(5):
        again = ranker.rank(y, z, return_labels=True)
        assert again.to_dict() == first.to_dict()
        np.testing.assert_array_equal(again.labels, first.labels)
    assert ranker.last_device_ms > 0


@pytest.mark.gpu
@gpu
def test_workspace_grows_and_shrinks_between_sizes() -> None:
    rng = np.random.default_rng(5)
    ranker = CudaRanker()
    for h, w in [(32, 32), (300, 200), (16, 48), (512, 512), (7, 9)]:
        y, z = blobs(rng, h, w, 2), blobs(rng, h, w, 1)
        assert_same(rank(y, z, return_labels=True), ranker.rank(y, z, return_labels=True), f"{(h, w)}")


@pytest.mark.gpu
@gpu
def test_graph_mode_replays_follow_the_map_contents() -> None:
    """A captured graph reads the maps' addresses: new contents in the same tensors, buffers that
    alternate (graphs kept per address), and new parameters (a re-capture, the grasp's margin
    too) must each give the CPU's ranking of what is there now."""
    torch = torch_cuda()
    rng = np.random.default_rng(23)
    ranker = CudaRanker(graph=True)
    assert ranker.graph
    buffers = [torch.empty((2, 180, 220), dtype=torch.float32, device="cuda") for _ in range(2)]
    found = RankingParams(alpha=0.3, patch=5)  # candidates on these maps (the defaults find none)
    # The last change is the grasp's margin alone: 0 grasps most of these at the centroid, 3 inside.
    changes = [RankingParams(), found, found, RankingParams(alpha=0.3, patch=5, margin=0.0)]
    for frame, params in enumerate(changes * 3):
        y, z = blobs(rng, 180, 220, 2), blobs(rng, 180, 220, 1)
        yt, zt = buffers[frame % 2]
        yt.copy_(torch.from_numpy(y))
        zt.copy_(torch.from_numpy(z))
        assert_same(rank(y, z, params, return_labels=True), ranker.rank(yt, zt, params, return_labels=True),
                    f"frame {frame}")  # fmt: skip
        without_labels = ranker.rank(yt, zt, params)  # another graph: no label copy
        assert without_labels.labels is None
        assert_same(rank(y, z, params), without_labels, f"frame {frame}, no labels")


@pytest.mark.gpu
@gpu
@pytest.mark.parametrize("noise", [0.0, 0.15])
def test_graph_and_direct_modes_agree(noise: float) -> None:
    pytest.importorskip("cv2", reason="mikado.flat_piles draws with OpenCV, not installed here")
    from mikado.flat_piles import make_pile

    pile = make_pile(4, 512, 512, instances=30, noise=noise)
    direct, graphed = CudaRanker(graph=False), CudaRanker(graph=True)
    for _ in range(2):  # the second graph call is a replay
        a = direct.rank(pile.boundaries, pile.occlusions, return_labels=True)
        b = graphed.rank(pile.boundaries, pile.occlusions, return_labels=True)
        assert_same(a, b, f"noise {noise}")
        assert direct.last_component_count == graphed.last_component_count


@pytest.mark.gpu
@gpu
def test_torch_device_tensors_stay_on_the_gpu() -> None:
    torch = torch_cuda()
    rng = np.random.default_rng(2)
    y = blobs(rng, 200, 240, 2)
    z = blobs(rng, 200, 240, 1)
    cpu = rank(y, z, return_labels=True)
    yt, zt = torch.from_numpy(y).cuda(), torch.from_numpy(z).cuda()
    assert_same(cpu, rank_cuda(yt, zt, return_labels=True), "torch float32")
    # uint8 on the device
    y8, z8 = as_u8(y), as_u8(z)
    gpu8 = rank_cuda(torch.from_numpy(y8).cuda(), torch.from_numpy(z8).cuda(), return_labels=True)
    assert_same(rank(y8, z8, return_labels=True), gpu8, "torch uint8")
    # strided views: a transposed tensor and a crop of a bigger one (non-zero offset)
    yt_t = torch.from_numpy(np.ascontiguousarray(y.T)).cuda().t()
    zt_t = torch.from_numpy(np.ascontiguousarray(z.T)).cuda().t()
    assert_same(cpu, rank_cuda(yt_t, zt_t, return_labels=True), "torch transposed")
    big_y = torch.zeros(260, 300, device="cuda")
    big_z = torch.zeros(260, 300, device="cuda")
    big_y[7:207, 11:251] = yt
    big_z[7:207, 11:251] = zt
    assert_same(cpu, rank_cuda(big_y[7:207, 11:251], big_z[7:207, 11:251], return_labels=True), "torch crop")
    # a network-shaped output [1, 1, H, W] indexed down to H x W
    assert_same(cpu, rank_cuda(yt[None, None][0, 0], zt[None, None][0, 0], return_labels=True), "NCHW view")


@pytest.mark.gpu
@gpu
def test_dlpack_only_tensors() -> None:
    torch = torch_cuda()

    class DLPackOnly:
        """Exposes a tensor through DLPack alone (like JAX arrays), not __cuda_array_interface__."""

        def __init__(self, tensor):
            self._tensor = tensor

        def __dlpack__(self, stream=None):
            return self._tensor.__dlpack__(stream=stream)

        def __dlpack_device__(self):
            return self._tensor.__dlpack_device__()

    rng = np.random.default_rng(4)
    y = blobs(rng, 150, 120, 2)
    z = blobs(rng, 150, 120, 1)
    yt = torch.from_numpy(np.ascontiguousarray(y.T)).cuda().t()  # strided through DLPack too
    zt = torch.from_numpy(z).cuda()
    assert_same(
        rank(y, z, return_labels=True),
        rank_cuda(DLPackOnly(yt), DLPackOnly(zt), return_labels=True),
        "DLPack",
    )


@pytest.mark.gpu
@gpu
def test_runs_on_a_given_stream() -> None:
    torch = torch_cuda()
    rng = np.random.default_rng(9)
    y = blobs(rng, 256, 256, 2)
    z = blobs(rng, 256, 256, 1)
    stream = torch.cuda.Stream()
    with torch.cuda.stream(stream):
        yt = torch.from_numpy(y).cuda(non_blocking=False) * 1.0  # produced on `stream`
        zt = torch.from_numpy(z).cuda(non_blocking=False) * 1.0
        gpu = rank_cuda(yt, zt, return_labels=True, stream=stream.cuda_stream)
    assert_same(rank(y, z, return_labels=True), gpu, "side stream")


@pytest.mark.gpu
@gpu
def test_bad_inputs_name_the_argument() -> None:
    y = np.zeros((8, 8), np.float32)
    with pytest.raises(ValueError, match="boundaries"):
        rank_cuda(y.astype(np.float64), y)
    with pytest.raises(ValueError, match="occlusions"):
        rank_cuda(y, np.zeros((8, 8, 1), np.float32))
    with pytest.raises(ValueError, match="occlusions"):
        rank_cuda(y, np.zeros((8, 9), np.float32))
    with pytest.raises(ValueError, match="boundaries"):
        rank_cuda([[0.0]], y)
    with pytest.raises(ValueError, match="params"):
        rank_cuda(y, y, params={"alpha": 0.1})

    class HostMemoryPretendingToBeDevice:
        def __init__(self, array: np.ndarray) -> None:
            self.array = array
            self.__cuda_array_interface__ = {
                "shape": array.shape,
                "typestr": "<f4",
                "data": (array.ctypes.data, False),
                "strides": None,
                "version": 3,
            }

    fake = HostMemoryPretendingToBeDevice(y)
    with pytest.raises(ValueError, match="boundaries"):
        rank_cuda(fake, fake)


# Input parsing, checked without a GPU (the pointers are never dereferenced here).


class FakeCudaArray:
    def __init__(self, shape, typestr="<f4", pointer=0x10000, strides=None, stream=None):
        self.__cuda_array_interface__ = {
            "shape": shape, "typestr": typestr, "data": (pointer, False), "strides": strides, "version": 3,
        }  # fmt: skip
        if stream is not None:
            self.__cuda_array_interface__["stream"] = stream


def test_cuda_array_interface_is_read_in_elements() -> None:
    from edge.ranking.cuda import _device_map

    view = _device_map(FakeCudaArray((5, 7)), "boundaries", None)
    assert (view.pointer, view.dtype_code, view.row_stride, view.col_stride) == (0x10000, 0, 7, 1)
    assert (view.height, view.width, view.stream) == (5, 7, None)
    transposed = _device_map(FakeCudaArray((7, 5), "|u1", strides=(1, 7), stream=2), "occlusions", None)
    assert (transposed.dtype_code, transposed.row_stride, transposed.col_stride, transposed.stream) == (
        1,
        1,
        7,
        2,
    )


@pytest.mark.parametrize(
    ("fake", "message"),
    [
        (FakeCudaArray((5, 7), "<f8"), "float32 or uint8"),
        (FakeCudaArray((1, 5, 7)), "HxW"),
        (FakeCudaArray((5, 7), pointer=0x10002), "misaligned"),
        (FakeCudaArray((5, 7), strides=(30, 6)), "strides"),
        (object(), "numpy array"),
    ],
)
def test_bad_device_inputs_name_the_argument(fake, message: str) -> None:
    from edge.ranking.cuda import _device_map

    with pytest.raises(ValueError, match=f"boundaries: .*{message}"):
        _device_map(fake, "boundaries", None)


def test_dlpack_tensor_is_parsed_through_its_capsule() -> None:
    """NumPy's (host) DLPack capsule, presented as a CUDA tensor, checks the DLTensor layout."""
    from edge.ranking.cuda import _device_map

    base = np.zeros((9, 12), np.float32)
    view_of = base[1:8:2, 2:11:3]

    class AsIfOnCuda:
        def __dlpack__(self, stream=None):
            return view_of.__dlpack__()

        def __dlpack_device__(self):
            return (2, 0)

    view = _device_map(AsIfOnCuda(), "boundaries", None)
    assert view.pointer == view_of.__array_interface__["data"][0]
    assert (view.height, view.width, view.row_stride, view.col_stride) == (4, 3, 24, 3)
    assert view.dtype_code == 0
    with pytest.raises(ValueError, match="boundaries: DLPack tensor is not on a CUDA device"):
        _device_map(view_of, "boundaries", None)
