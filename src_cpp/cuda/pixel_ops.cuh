// Per-pixel arithmetic shared by the CUDA kernels and their host-side check.
//
// Everything here is __host__ __device__ and free of CUDA runtime calls, so the
// code that runs in the kernels is also compiled by a plain C++ compiler in
// src_cpp/cuda/host_check.cpp, which replays the kernels sequentially on a machine
// without a GPU: the union-find, the run sums and the contour terms are verified
// there against the CPU path.
//
// Conventions are the CPU hot path's (src_cpp/hotpath/binarize.hpp,
// contour_score.cpp): values are promoted to double and compared with the
// double threshold (uint8 maps hold probability*255), NaN is a boundary pixel
// and not occluding, and the XNOR patch is clipped to the image.
#pragma once

#include <cstdint>

#include "hotpath/host_device.hpp"

// The kernel bodies: host-and-device (BINPICK_HD) and inlined into their kernels.
#if defined(__CUDACC__)
#define BP_HD BINPICK_HD __forceinline__
#else
#define BP_HD inline
#endif

namespace binpick_cuda {

// Which element type a map has (the wrapper maps numpy/DLPack dtypes onto these).
enum class MapDtype : int { Float32 = 0, UInt8 = 1 };

// A strided 2-D view of one probability map; strides are in elements, so any
// numpy/torch view (transposed, sliced) is read in place without a copy.
struct MapView {
    const void* data;
    MapDtype dtype;
    int64_t row_stride;
    int64_t col_stride;
};

BP_HD double value_at(const MapView& m, int64_t x, int64_t y) {
    const int64_t offset = y * m.row_stride + x * m.col_stride;
    if (m.dtype == MapDtype::UInt8) return static_cast<double>(static_cast<const uint8_t*>(m.data)[offset]);
    return static_cast<double>(static_cast<const float*>(m.data)[offset]);
}

// Y <= alpha (false for NaN): the pixel belongs to an instance candidate.
BP_HD bool is_candidate_pixel(const MapView& y_map, int64_t x, int64_t y, double alpha_scaled) {
    return value_at(y_map, x, y) <= alpha_scaled;
}

// Z > beta (false for NaN): the pixel is on the occluding side.
BP_HD bool is_occluding_pixel(const MapView& z_map, int64_t x, int64_t y, double beta_scaled) {
    return value_at(z_map, x, y) > beta_scaled;
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

// Index in its warp-wide row segment of the first pixel of the candidate run that
// contains `lane`, from the ballot of candidate pixels (bit i = lane i is a candidate).
BP_HD int run_start_lane(uint32_t candidate_mask, int lane) {
    const uint32_t gaps_below = ~candidate_mask & ((lane == 0) ? 0u : ((1u << lane) - 1u));
    if (gaps_below == 0) return 0;
#if defined(__CUDA_ARCH__)
    return 32 - __clz(gaps_below);
#else
    int highest = 31;
    while (!(gaps_below & (1u << highest))) --highest;
    return highest + 1;
#endif
}

// Union-find over the parent array (parent[i] <= i always, every chain ends at the
// component's smallest pixel index). Values only ever decrease, so a stale read
// still points into the right component; the retry loop in `unite` makes the link
// atomic (Playne & Hawick 2018, "A new algorithm for parallel connected-component
// labelling on GPUs").
template <typename Load>
BP_HD int32_t find_root(Load load, int32_t i) {
    int32_t parent = load(i);
    while (parent != i) {
        i = parent;
        parent = load(i);
    }
    return i;
}

// `atomic_min(i, v)` must store min(parent[i], v) and return the previous parent[i].
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

// Contour term of one boundary pixel (px, py) for candidate `label`: the fraction of
// the patch (clipped to the image) where "in the candidate" equals "occluding".
// Same operations as the CPU's contour_score.cpp, so the double is the same.
template <typename LabelAt, typename OccludingAt>
BP_HD double contour_term(LabelAt label_at, OccludingAt occluding_at, int32_t label, int64_t px, int64_t py,
                          int64_t half, int64_t width, int64_t height) {
    const int64_t y0 = py - half < 0 ? 0 : py - half;
    const int64_t y1 = py + half > height - 1 ? height - 1 : py + half;
    const int64_t x0 = px - half < 0 ? 0 : px - half;
    const int64_t x1 = px + half > width - 1 ? width - 1 : px + half;
    int64_t mismatches = 0;
    for (int64_t y = y0; y <= y1; ++y) {
        for (int64_t x = x0; x <= x1; ++x) {
            mismatches += static_cast<int64_t>((label_at(x, y) == label) != occluding_at(x, y));
        }
    }
    const double n_patch = static_cast<double>((y1 - y0 + 1) * (x1 - x0 + 1));
    return (n_patch - static_cast<double>(mismatches)) / n_patch;
}

// Doubles as unsigned integers with the same order, so per-candidate extents are
// kept with integer atomicMin/atomicMax (there is no double atomicMin).
BP_HD uint64_t ordered_bits(double d) {
    union {
        double d;
        uint64_t u;
    } v{d};
    return (v.u & 0x8000000000000000ull) ? ~v.u : (v.u | 0x8000000000000000ull);
}

BP_HD double from_ordered_bits(uint64_t u) {
    union {
        uint64_t u;
        double d;
    } v{(u & 0x8000000000000000ull) ? (u & 0x7fffffffffffffffull) : ~u};
    return v.d;
}

}  // namespace binpick_cuda
