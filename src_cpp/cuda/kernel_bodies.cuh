// The bodies of the ranking kernels, one function per thread's work.
//
// Why separate from the kernels: the same bodies run in the CUDA kernels (cuda_ranker.cu,
// with hardware atomics) and in host_check.cpp (sequential, plain memory), which replays the
// whole GPU pipeline on a machine without a GPU and is compared with the CPU path by
// tests/test_cuda_host_check.py. Only index computation, the warp ballot and the CUB calls
// live in the .cu file.
#pragma once

#include <climits>
#include <cmath>
#include <cstddef>
#include <cstdint>
#include <type_traits>

#include "hotpath/grasp_geometry.hpp"
#include "pixel_ops.cuh"
#include "ranking_records.hpp"

namespace binpick_cuda {

// Per-component arrays, carved out of one allocation.
struct Components {
    unsigned long long* area;
    unsigned long long* sum_x;
    unsigned long long* sum_y;
    unsigned long long* sum_xx;
    unsigned long long* sum_xy;
    unsigned long long* sum_yy;
    unsigned long long* min_a;  // order-preserving bits of doubles (ordered_bits)
    unsigned long long* max_a;
    unsigned long long* min_b;
    unsigned long long* max_b;
    double* cos_t;
    double* sin_t;
    double* s1;
    double* s2;
    double* occluded_share;
    double* keys_in;
    double* keys_out;
    int* min_x;
    int* min_y;
    int* max_x;
    int* max_y;
    int32_t* keep;
    int32_t* kept_rank;
    int32_t* seg_begin;
    int32_t* seg_end;
    int32_t* ids_in;
    int32_t* ids_out;

    static size_t bytes(int64_t n) { return static_cast<size_t>(n) * (17 * 8 + 10 * 4); }

    static Components carve(void* block, int64_t n) {
        Components c{};
        auto* p = static_cast<char*>(block);
        auto take = [&](auto*& field) {
            using T = std::remove_reference_t<decltype(*field)>;
            field = reinterpret_cast<T*>(p);
            p += static_cast<size_t>(n) * sizeof(T);
        };
        take(c.area);
        take(c.sum_x);
        take(c.sum_y);
        take(c.sum_xx);
        take(c.sum_xy);
        take(c.sum_yy);
        take(c.min_a);
        take(c.max_a);
        take(c.min_b);
        take(c.max_b);
        take(c.cos_t);
        take(c.sin_t);
        take(c.s1);
        take(c.s2);
        take(c.occluded_share);
        take(c.keys_in);
        take(c.keys_out);
        take(c.min_x);
        take(c.min_y);
        take(c.max_x);
        take(c.max_y);
        take(c.keep);
        take(c.kept_rank);
        take(c.seg_begin);
        take(c.seg_end);
        take(c.ids_in);
        take(c.ids_out);
        return c;
    }
};

// Round-to-nearest double operations, never contracted into a fused multiply-add.
BP_HD double add_rn(double a, double b) {
#if defined(__CUDA_ARCH__)
    return __dadd_rn(a, b);
#else
    return a + b;
#endif
}
BP_HD double mul_rn(double a, double b) {
#if defined(__CUDA_ARCH__)
    return __dmul_rn(a, b);
#else
    return a * b;
#endif
}
BP_HD double div_rn(double a, double b) {
#if defined(__CUDA_ARCH__)
    return __ddiv_rn(a, b);
#else
    return a / b;
#endif
}

// Sequential stand-ins for the hardware atomics (host check only).
struct HostAtomics {
    static void add(unsigned long long* a, unsigned long long v) { *a += v; }
    static int32_t min(int32_t* a, int32_t v) {
        const int32_t old = *a;
        if (v < old) *a = v;
        return old;
    }
    static int32_t max(int32_t* a, int32_t v) {
        const int32_t old = *a;
        if (v > old) *a = v;
        return old;
    }
    static void min(unsigned long long* a, unsigned long long v) {
        if (v < *a) *a = v;
    }
    static void max(unsigned long long* a, unsigned long long v) {
        if (v > *a) *a = v;
    }
};

#if defined(__CUDACC__)
struct DeviceAtomics {
    static __device__ __forceinline__ void add(unsigned long long* a, unsigned long long v) { atomicAdd(a, v); }
    static __device__ __forceinline__ int32_t min(int32_t* a, int32_t v) { return atomicMin(a, v); }
    static __device__ __forceinline__ int32_t max(int32_t* a, int32_t v) { return atomicMax(a, v); }
    static __device__ __forceinline__ void min(unsigned long long* a, unsigned long long v) { atomicMin(a, v); }
    static __device__ __forceinline__ void max(unsigned long long* a, unsigned long long v) { atomicMax(a, v); }
};
#endif

// init: one pixel of a 32-pixel row segment starting at x0 (x = x0 + lane < width), given
// the segment's ballot of candidate pixels.
BP_HD void init_pixel(const MapView& y_map, double alpha, int64_t width, int64_t x0, int lane, int64_t row,
                      bool candidate, bool occluding, uint32_t candidate_mask, int32_t* parent, uint8_t* flags) {
    const int64_t x = x0 + lane;
    const int64_t p = row * width + x;
    flags[p] = static_cast<uint8_t>((candidate ? 0u : 1u) | (occluding ? 2u : 0u));
    if (!candidate) {
        parent[p] = -1;
        return;
    }
    int64_t target = row * width + x0 + run_start_lane(candidate_mask, lane);
    if (lane == 0 && x0 > 0 && is_candidate_pixel(y_map, x0 - 1, row, alpha)) {
        target = p - 1;  // continue the run of the previous segment
    }
    parent[p] = static_cast<int32_t>(target);
}

// merge: join the pixel with the one above unless the left and up-left pixels already do.
template <typename Load, typename AtomicMin>
BP_HD void merge_pixel(int64_t x, int64_t row, int64_t width, const uint8_t* flags, Load load, AtomicMin atomic_min) {
    if (row == 0) return;
    const int64_t p = row * width + x;
    const int64_t up = p - width;
    if ((flags[p] & 1u) || (flags[up] & 1u)) return;
    if (x > 0 && !(flags[p - 1] & 1u) && !(flags[up - 1] & 1u)) return;
    unite(load, atomic_min, static_cast<int32_t>(p), static_cast<int32_t>(up));
}

template <typename Load>
BP_HD void compress_pixel(int64_t p, int32_t* parent, int32_t* is_root, Load load) {
    if (parent[p] < 0) {
        is_root[p] = 0;
        return;
    }
    const int32_t root = find_root(load, static_cast<int32_t>(p));
    parent[p] = root;
    is_root[p] = (root == p) ? 1 : 0;
}

// The 4-neighbours of (x, row) in the CPU's order: left, right, up, down; -1 outside.
BP_HD void neighbour_indices(int64_t x, int64_t row, int64_t width, int64_t height, int64_t out[4]) {
    const int64_t p = row * width + x;
    out[0] = x > 0 ? p - 1 : -1;
    out[1] = x + 1 < width ? p + 1 : -1;
    out[2] = row > 0 ? p - width : -1;
    out[3] = row + 1 < height ? p + width : -1;
}

// pairs: how many distinct components touch the boundary pixel (by root, before numbering).
BP_HD void pair_count_pixel(int64_t x, int64_t row, int64_t width, int64_t height, const int32_t* parent,
                            const uint8_t* flags, int32_t* pair_count) {
    const int64_t p = row * width + x;
    int count = 0;
    if (flags[p] & 1u) {
        int64_t nb[4];
        neighbour_indices(x, row, width, height, nb);
        int32_t seen[4];
        for (int k = 0; k < 4; ++k) {
            if (nb[k] < 0) continue;
            const int32_t root = parent[nb[k]];
            if (root < 0) continue;
            bool dup = false;
            for (int j = 0; j < count; ++j) dup = dup || seen[j] == root;
            if (!dup) seen[count++] = root;
        }
    }
    pair_count[p] = count;
}

BP_HD void count_scalars(int64_t pixels, const int32_t* dense, const int32_t* is_root, const int32_t* pair_offset,
                         const int32_t* pair_count, unsigned long long* scalars) {
    scalars[0] = static_cast<unsigned long long>(dense[pixels - 1] + is_root[pixels - 1]);
    scalars[1] = static_cast<unsigned long long>(pair_offset[pixels - 1] + pair_count[pixels - 1]);
    scalars[2] = 0;
    scalars[3] = 0;
}

BP_HD void relabel_pixel(int64_t p, const int32_t* parent, const int32_t* dense, int32_t* labels) {
    const int32_t root = parent[p];
    labels[p] = root < 0 ? 0 : dense[root] + 1;
}

BP_HD void reset_component(int64_t i, const Components& c) {
    c.area[i] = c.sum_x[i] = c.sum_y[i] = c.sum_xx[i] = c.sum_xy[i] = c.sum_yy[i] = 0;
    c.min_a[i] = c.min_b[i] = ordered_bits(HUGE_VAL);
    c.max_a[i] = c.max_b[i] = ordered_bits(-HUGE_VAL);
    c.min_x[i] = INT_MAX;
    c.min_y[i] = INT_MAX;
    c.max_x[i] = -1;
    c.max_y[i] = -1;
    c.seg_begin[i] = 0;
    c.seg_end[i] = 0;
}

template <typename A>
BP_HD void flush_run(const Components& c, int32_t label, int64_t a, int64_t b, int64_t row) {
    const int i = label - 1;
    const auto n = static_cast<unsigned long long>(b - a + 1);
    const auto y = static_cast<unsigned long long>(row);
    const unsigned long long sx = sum_range(a, b);
    A::add(c.area + i, n);
    A::add(c.sum_x + i, sx);
    A::add(c.sum_y + i, y * n);
    A::add(c.sum_xx + i, sum_range_squares(a, b));
    A::add(c.sum_xy + i, y * sx);
    A::add(c.sum_yy + i, y * y * n);
    // Plain reads first: bounds only move outwards, so a stale value only costs an atomic.
    if (a < c.min_x[i]) A::min(c.min_x + i, static_cast<int32_t>(a));
    if (b > c.max_x[i]) A::max(c.max_x + i, static_cast<int32_t>(b));
    if (row < c.min_y[i]) A::min(c.min_y + i, static_cast<int32_t>(row));
    if (row > c.max_y[i]) A::max(c.max_y + i, static_cast<int32_t>(row));
}

// stats: the pixels xs..xe-1 of one row, one atomic set per run of a component.
template <typename A>
BP_HD void stats_chunk(int64_t xs, int64_t xe, int64_t row, int64_t width, const int32_t* labels,
                       const Components& c) {
    const int32_t* line = labels + row * width;
    int32_t current = 0;
    int64_t run_start = xs;
    for (int64_t x = xs; x < xe; ++x) {
        const int32_t label = line[x];
        if (label != current) {
            if (current > 0) flush_run<A>(c, current, run_start, x - 1, row);
            current = label;
            run_start = x;
        }
    }
    if (current > 0) flush_run<A>(c, current, run_start, xe - 1, row);
}

// filter: the CPU's area test (double comparison), the largest kept area and the kept count.
template <typename A>
BP_HD void filter_component(int64_t i, double min_px, double max_px, const Components& c,
                            unsigned long long* scalars) {
    const unsigned long long area = c.area[i];
    const double a = static_cast<double>(area);
    const bool keep = a >= min_px && a <= max_px;
    c.keep[i] = keep ? 1 : 0;
    if (keep) {
        A::max(scalars + 2, area);
        A::add(scalars + 3, 1ull);
    }
}

// axes: principal axes from the exact integer central moments (n * mu, 128-bit), as moments.hpp.
BP_HD void axes_component(int64_t i, const Components& c) {
    if (!c.keep[i]) return;
    const auto area = static_cast<__int128>(c.area[i]);
    const auto sx = static_cast<__int128>(c.sum_x[i]);
    const auto sy = static_cast<__int128>(c.sum_y[i]);
    const __int128 m20 = area * static_cast<__int128>(c.sum_xx[i]) - sx * sx;
    const __int128 m02 = area * static_cast<__int128>(c.sum_yy[i]) - sy * sy;
    const __int128 m11 = area * static_cast<__int128>(c.sum_xy[i]) - sx * sy;
    const double angle = 0.5 * atan2(static_cast<double>(2 * m11), static_cast<double>(m20 - m02));
    c.cos_t[i] = cos(angle);
    c.sin_t[i] = sin(angle);
}

template <typename A>
BP_HD void extend(const Components& c, int32_t label, int64_t x, int64_t y) {
    const int i = label - 1;
    const double ct = c.cos_t[i];
    const double st = c.sin_t[i];
    const unsigned long long a = ordered_bits(add_rn(mul_rn(static_cast<double>(x), ct), mul_rn(static_cast<double>(y), st)));
    const unsigned long long b =
        ordered_bits(add_rn(mul_rn(-static_cast<double>(x), st), mul_rn(static_cast<double>(y), ct)));
    if (a < c.min_a[i]) A::min(c.min_a + i, a);
    if (a > c.max_a[i]) A::max(c.max_a + i, a);
    if (b < c.min_b[i]) A::min(c.min_b + i, b);
    if (b > c.max_b[i]) A::max(c.max_b + i, b);
}

// contour: for a boundary pixel, one (component, term) pair per touching component at the
// pixel's scanned offset, and the extents of kept candidates at the touching pixels.
template <typename A>
BP_HD void contour_pixel(int64_t x, int64_t row, int64_t width, int64_t height, int64_t half, const int32_t* labels,
                         const uint8_t* flags, const int32_t* pair_offset, const Components& c, int32_t* pair_keys,
                         double* pair_terms) {
    const int64_t p = row * width + x;
    if (!(flags[p] & 1u)) return;
    int64_t nb[4];
    neighbour_indices(x, row, width, height, nb);
    int32_t touching[4];
    int count = 0;
    for (int k = 0; k < 4; ++k) {
        if (nb[k] < 0) continue;
        const int32_t label = labels[nb[k]];
        if (label == 0) continue;
        if (c.keep[label - 1]) extend<A>(c, label, nb[k] % width, nb[k] / width);
        bool dup = false;
        for (int j = 0; j < count; ++j) dup = dup || touching[j] == label;
        if (!dup) touching[count++] = label;
    }
    auto label_at = [labels, width](int64_t xx, int64_t yy) { return labels[yy * width + xx]; };
    auto occluding_at = [flags, width](int64_t xx, int64_t yy) { return (flags[yy * width + xx] & 2u) != 0; };
    int64_t out = pair_offset[p];
    for (int j = 0; j < count; ++j, ++out) {
        const int32_t label = touching[j];
        pair_keys[out] = label;
        pair_terms[out] =
            c.keep[label - 1] ? contour_term(label_at, occluding_at, label, x, row, half, width, height) : 0.0;
    }
}

// Candidate pixels on the image edge are contour pixels too (for the extents); i walks the
// top row, bottom row, left column, right column.
template <typename A>
BP_HD void edge_extent(int64_t i, int64_t width, int64_t height, const int32_t* labels, const Components& c) {
    int64_t x, y;
    if (i < width) {
        x = i, y = 0;
    } else if (i < 2 * width) {
        x = i - width, y = height - 1;
    } else if (i < 2 * width + height) {
        x = 0, y = i - 2 * width;
    } else if (i < 2 * (width + height)) {
        x = width - 1, y = i - 2 * width - height;
    } else {
        return;
    }
    const int32_t label = labels[y * width + x];
    if (label != 0 && c.keep[label - 1]) extend<A>(c, label, x, y);
}

// segments: where each component's pairs begin and end in the pairs sorted by component.
BP_HD void segment_pair(int64_t i, int64_t pairs, const int32_t* keys, const Components& c) {
    const int32_t k = keys[i];
    if (i == 0 || keys[i - 1] != k) c.seg_begin[k - 1] = static_cast<int32_t>(i);
    if (i == pairs - 1 || keys[i + 1] != k) c.seg_end[k - 1] = static_cast<int32_t>(i + 1);
}

// Key bits of the pair sort for component numbers up to n: the sort reads only these bits.
BP_HD int pair_key_bits(int64_t n) {
    int bits = 1;
    while (bits < 31 && (int64_t{1} << bits) <= n) ++bits;
    return bits;
}

// The largest key those bits hold: graph mode's padded pairs carry it, so they sort last.
BP_HD int32_t pair_key_sentinel(int bits) { return static_cast<int32_t>((int64_t{1} << bits) - 1); }

// Worst cases, which graph mode sizes everything for: with 4-connectivity at most
// ceil(pixels / 2) components (+1 spare), and a boundary pixel touches at most 4 components.
BP_HD int64_t component_capacity(int64_t pixels) { return pixels / 2 + 2; }
BP_HD int64_t pair_capacity(int64_t pixels) { return 4 * pixels; }

// Graph mode's padding (cuda_ranker.cu, rank_graphed): the sorts and the kept-numbering scan run
// over capacities, so the items past the true counts are made to sort after every real one:
// components get no keep flag and a score key below every real key (filtered ones have -1),
// pairs the largest key the pair sort's bits hold (above every component number).
BP_HD void pad_sort_inputs(int64_t i, int64_t components, int64_t pairs, int32_t pair_sentinel,
                           const unsigned long long* scalars, const Components& c, int32_t* pair_keys) {
    if (i >= static_cast<int64_t>(scalars[0]) && i < components) {
        c.keep[i] = 0;
        c.keys_in[i] = -2.0;
        c.ids_in[i] = static_cast<int32_t>(i);
    }
    if (i >= static_cast<int64_t>(scalars[1]) && i < pairs) pair_keys[i] = pair_sentinel;
}

// score: the contour terms summed sequentially in raster order (the CPU's order), s1, s2, and the
// score by the rule's area term (binpick::area_term, the CPU's own).
BP_HD void score_component(int64_t i, double w1, double w2, binpick::ScoreRule rule, const double* terms,
                           const Components& c, const unsigned long long* scalars) {
    c.ids_in[i] = static_cast<int32_t>(i);
    if (!c.keep[i]) {
        c.keys_in[i] = -1.0;  // scores are >= 0: filtered components sort after every candidate
        return;
    }
    const int32_t begin = c.seg_begin[i];
    const int32_t end = c.seg_end[i];
    double sum = 0.0;
    int32_t occluded_side = 0;
    for (int32_t j = begin; j < end; ++j) {
        sum = add_rn(sum, terms[j]);
        occluded_side += binpick::on_occluded_side(terms[j]) ? 1 : 0;
    }
    const int32_t length = end - begin;
    const double s1 = length > 0 ? div_rn(sum, static_cast<double>(length)) : 0.0;
    const double b = length > 0 ? div_rn(static_cast<double>(occluded_side), static_cast<double>(length)) : 0.0;
    const double s2 = div_rn(static_cast<double>(c.area[i]), static_cast<double>(scalars[2]));
    c.s1[i] = s1;
    c.s2[i] = s2;
    c.occluded_share[i] = b;
    c.keys_in[i] = add_rn(mul_rn(w1, binpick::contour_term(rule, s1, b)), mul_rn(w2, binpick::area_term(rule, s2)));
}

BP_HD void gather_record(int64_t r, const Components& c, CandidateRecord* records) {
    const int32_t i = c.ids_out[r];
    CandidateRecord rec;
    rec.label = c.kept_rank[i] + 1;
    rec.component = i + 1;
    rec.min_x = c.min_x[i];
    rec.min_y = c.min_y[i];
    rec.max_x = c.max_x[i];
    rec.max_y = c.max_y[i];
    rec.area = static_cast<int64_t>(c.area[i]);
    rec.contour_length = c.seg_end[i] - c.seg_begin[i];
    rec.sum_x = static_cast<int64_t>(c.sum_x[i]);
    rec.sum_y = static_cast<int64_t>(c.sum_y[i]);
    rec.sum_xx = static_cast<int64_t>(c.sum_xx[i]);
    rec.sum_xy = static_cast<int64_t>(c.sum_xy[i]);
    rec.sum_yy = static_cast<int64_t>(c.sum_yy[i]);
    rec.s1 = c.s1[i];
    rec.s2 = c.s2[i];
    rec.occluded_share = c.occluded_share[i];
    rec.score = c.keys_out[r];
    rec.min_a = from_ordered_bits(c.min_a[i]);
    rec.max_a = from_ordered_bits(c.max_a[i]);
    rec.min_b = from_ordered_bits(c.min_b[i]);
    rec.max_b = from_ordered_bits(c.max_b[i]);
    records[r] = rec;
}

// The grasp on the device: the two facts binpick::grasp_result turns on (grasp.hpp), found by
// the CPU path's own geometry (hotpath/grasp_geometry.hpp) so that only they come back, in
// scalars[kScalarNearBorder..kScalarInscribedY], with the counts.
//   grasp_column  per column of the best candidate's padded box: Meijster phase 1, squared
//   grasp_row     per row: phase 2 (lower_envelope_row), the row's first maximum, and the
//                 squared distance at the centroid's pixel
//   grasp_pick    one thread: the centroid test (window search or transform, as choose_grasp
//                 decides) and the first maximum in raster order (the inscribed-circle centre)
struct GraspBox {
    int64_t x, y, w, h;  // the bounding box padded by one pixel, as binpick::candidate_distance
};

BP_HD GraspBox grasp_box(const CandidateRecord& best) {
    return {int64_t{best.min_x} - 1, int64_t{best.min_y} - 1, int64_t{best.max_x} - best.min_x + 3,
            int64_t{best.max_y} - best.min_y + 3};
}

BP_HD void grasp_column(int64_t x, int64_t width, const int32_t* labels, const unsigned long long* scalars,
                        const CandidateRecord* records, int64_t* g2) {
    if (scalars[kScalarKept] == 0) return;
    const CandidateRecord& best = records[0];
    const GraspBox b = grasp_box(best);
    if (x >= b.w) return;
    // Down: run length of candidate pixels ending here; the padding ring is outside.
    int64_t g = 0;
    g2[x] = 0;
    for (int64_t y = 1; y < b.h - 1; ++y) {
        const bool member = x >= 1 && x < b.w - 1 && labels[(y + b.y) * width + (x + b.x)] == best.component;
        g = member ? g + 1 : 0;
        g2[y * b.w + x] = g;
    }
    g2[(b.h - 1) * b.w + x] = 0;
    // Up: the nearer of the two ends, squared for phase 2.
    int64_t below = 0;
    for (int64_t y = b.h - 2; y >= 1; --y) {
        const int64_t down = g2[y * b.w + x];
        const int64_t v = down < below + 1 ? down : below + 1;
        g2[y * b.w + x] = v * v;
        below = v;
    }
}

BP_HD void grasp_row(int64_t y, unsigned long long* scalars, const CandidateRecord* records, const int64_t* g2,
                     int64_t* s, int64_t* t, int64_t* row_best) {
    if (scalars[kScalarKept] == 0) return;
    const CandidateRecord& best = records[0];
    const GraspBox b = grasp_box(best);
    if (y >= b.h) return;
    const int64_t cx = binpick::centroid_pixel(best.sum_x, best.area) - b.x;
    const int64_t cy = binpick::centroid_pixel(best.sum_y, best.area) - b.y;
    int64_t best_d = 0, best_u = 0;  // the padding rows: all 0, first maximum at u = 0
    if (y >= 1 && y < b.h - 1) {
        best_d = -1;
        int64_t at_centroid = -1;
        // u arrives from b.w - 1 down to 0: ">=" keeps the leftmost of equal maxima.
        binpick::lower_envelope_row(g2 + y * b.w, b.w, s + y * b.w, t + y * b.w, [&](int64_t u, int64_t d2) {
            if (d2 >= best_d) {
                best_d = d2;
                best_u = u;
            }
            if (u == cx) at_centroid = d2;
        });
        if (y == cy) scalars[kScalarCentroidSqDist] = static_cast<unsigned long long>(at_centroid);
    }
    row_best[2 * y] = best_d;
    row_best[2 * y + 1] = best_u;
}

BP_HD void grasp_pick(int64_t width, int64_t height, double margin, const int32_t* labels,
                      unsigned long long* scalars, const CandidateRecord* records, const int64_t* row_best) {
    if (scalars[kScalarKept] == 0) return;
    const CandidateRecord& best = records[0];
    const GraspBox b = grasp_box(best);
    const int64_t cx = binpick::centroid_pixel(best.sum_x, best.area);
    const int64_t cy = binpick::centroid_pixel(best.sum_y, best.area);
    // choose_grasp's test, by its own rule: a window search unless the window exceeds the box.
    const bool near_border =
        binpick::window_search_pays(margin, b.w, b.h)
            ? binpick::near_candidate_border(labels, height, width, best.component, cx, cy, margin)
            : binpick::within_margin(static_cast<int64_t>(scalars[kScalarCentroidSqDist]), margin);
    int64_t best_d = -1, bx = 0, by = 0;
    for (int64_t y = 0; y < b.h; ++y) {
        if (row_best[2 * y] > best_d) {
            best_d = row_best[2 * y];
            bx = row_best[2 * y + 1];
            by = y;
        }
    }
    scalars[kScalarNearBorder] = near_border ? 1 : 0;
    scalars[kScalarInscribedX] = static_cast<unsigned long long>(bx + b.x);
    scalars[kScalarInscribedY] = static_cast<unsigned long long>(by + b.y);
}

// The CPU path's label image: kept candidates 1..N in raster order, 0 elsewhere.
BP_HD void cpu_label_pixel(int64_t p, const int32_t* labels, const Components& c, int32_t* out) {
    const int32_t label = labels[p];
    out[p] = (label != 0 && c.keep[label - 1]) ? c.kept_rank[label - 1] + 1 : 0;
}

}  // namespace binpick_cuda
