// Per-pixel arithmetic shared by the CUDA kernels and their host-side check.
//
// Everything here is __host__ __device__ and free of CUDA runtime calls, so the
// same code that runs in the kernels is compiled by a plain C++ compiler in the
// host check (tests/cuda_host_check.cpp): the union-find, the run sums and the
// XNOR patch count are then verified on a machine without a GPU.
#pragma once

#include <cstdint>

#if defined(__CUDACC__)
#define BP_HD __host__ __device__ __forceinline__
#else
#define BP_HD inline
#endif

namespace binpick_cuda {

// Which input element type a map has (the wrapper maps numpy/DLPack dtypes onto these).
enum class MapDtype : int { Float32 = 0, UInt8 = 1 };

// A strided 2-D view of one probability map; strides are in elements, so any
// numpy/torch view (transposed, sliced) is read in place without a copy.
struct MapView {
    const void* data;
    MapDtype dtype;
    int64_t row_stride;
    int64_t col_stride;
};

// The two binarisation thresholds in both element types: floats compare as
// `value > alpha`, 8-bit maps as `value > floor(alpha * 255)`, which is the same
// test on the exact real value v/255 and avoids a per-pixel division.
struct Thresholds {
    float alpha;
    float beta;
    int alpha_u8;
    int beta_u8;
};

// True where the map value is above the threshold. NaN compares false, so a NaN
// boundary value is a candidate pixel and a NaN occlusion value is "not occluding",
// exactly like the CPU path's `Y > alpha` test.
BP_HD bool above(const MapView& m, int64_t x, int64_t y, float t, int t_u8) {
    const int64_t offset = y * m.row_stride + x * m.col_stride;
    if (m.dtype == MapDtype::UInt8) {
        return static_cast<int>(static_cast<const uint8_t*>(m.data)[offset]) > t_u8;
    }
    return static_cast<const float*>(m.data)[offset] > t;
}

// Closed-form sums of x and x^2 over the run a..b (inclusive), so a whole
// horizontal run of one component costs one set of atomics instead of one per pixel.
BP_HD uint64_t sum_range(uint64_t a, uint64_t b) { return (a + b) * (b - a + 1) / 2; }

BP_HD uint64_t sum_squares_to(uint64_t n) {  // 0^2 + ... + n^2
    return n * (n + 1) * (2 * n + 1) / 6;
}

BP_HD uint64_t sum_range_squares(uint64_t a, uint64_t b) {
    return sum_squares_to(b) - (a == 0 ? 0 : sum_squares_to(a - 1));
}

// Union-find over the label array L (L[i] <= i always, every chain ends at the
// component's smallest pixel index). Values only ever decrease, so a stale read
// still points into the right component; the retry loop in `unite` makes the
// link atomic (Playne & Hawick 2018, "A new algorithm for parallel connected-
// component labelling on GPUs").
template <typename Load>
BP_HD int32_t find_root(Load load, int32_t i) {
    int32_t parent = load(i);
    while (parent != i) {
        i = parent;
        parent = load(i);
    }
    return i;
}

// `atomic_min(i, v)` must store min(L[i], v) and return the previous L[i].
template <typename Load, typename AtomicMin>
BP_HD void unite(Load load, AtomicMin atomic_min, int32_t a, int32_t b) {
    bool done = false;
    while (!done) {
        a = find_root(load, a);
        b = find_root(load, b);
        if (a < b) {
            const int32_t old = atomic_min(b, a);
            done = (old == b);
            b = old;
        } else if (b < a) {
            const int32_t old = atomic_min(a, b);
            done = (old == a);
            a = old;
        } else {
            done = true;
        }
    }
}

// The XNOR contour count of one boundary pixel (px, py) for component `label`:
// over the patch x patch window centred on it, the number of pixels where
// "belongs to the component" equals "occlusion map above beta". Pixels outside
// the image are neither in the component nor occluding, so they agree (count 1);
// the normalisation therefore always divides by the full patch area.
template <typename LabelAt, typename OccludedAt>
BP_HD uint32_t xnor_patch_count(LabelAt label_at, OccludedAt occluded_at, int32_t label, int px, int py,
                                int half, int width, int height) {
    uint32_t agree = 0;
    for (int dy = -half; dy <= half; ++dy) {
        const int y = py + dy;
        for (int dx = -half; dx <= half; ++dx) {
            const int x = px + dx;
            if (x < 0 || y < 0 || x >= width || y >= height) {
                ++agree;
                continue;
            }
            const bool in_component = label_at(x, y) == label;
            agree += (in_component == occluded_at(x, y)) ? 1u : 0u;
        }
    }
    return agree;
}

}  // namespace binpick_cuda
