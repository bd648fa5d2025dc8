// The grasp's geometry in functions that compile for the CPU and, under nvcc, for the GPU too,
// so the CUDA ranking finds the grasp on the device by the CPU path's own arithmetic:
// Meijster's lower-envelope pass over one row of the distance transform, the window test
// around the centroid, the choice between that test and the transform, and the centroid's
// pixel. Integer and correctly rounded operations only, so both processors give the same bits.
// Meijster's phase 1 (a run length per column) is written twice on purpose: row by row on the
// CPU (distance_transform.cpp, memory order) and one column per thread on the GPU
// (kernel_bodies.cuh grasp_column); tests/test_cuda_host_check.py holds them equal.
#pragma once

#include <math.h>

#include <cstdint>

#include "host_device.hpp"

namespace binpick {

BINPICK_HD inline std::int64_t floor_div(std::int64_t a, std::int64_t b) {  // b > 0
    std::int64_t q = a / b;
    if ((a % b != 0) && (a < 0)) --q;
    return q;
}

// Phase 2 of Meijster, Roerdink & Hesselink's exact distance transform on one row of `bw`
// pixels: `g2` holds each pixel's squared distance to the nearest non-candidate pixel in its
// column; `emit(u, d2)` receives every pixel's squared Euclidean distance, u from bw - 1 down
// to 0. `s` and `t` are scratch rows of bw entries.
template <typename Emit>
BINPICK_HD inline void lower_envelope_row(const std::int64_t* g2, std::int64_t bw, std::int64_t* s, std::int64_t* t,
                                          Emit emit) {
    auto f = [g2](std::int64_t x, std::int64_t i) { return (x - i) * (x - i) + g2[i]; };
    auto sep = [g2](std::int64_t i, std::int64_t u) { return floor_div(u * u - i * i + g2[u] - g2[i], 2 * (u - i)); };
    std::int64_t q = 0;
    s[0] = 0;
    t[0] = 0;
    for (std::int64_t u = 1; u < bw; ++u) {
        while (q >= 0 && f(t[q], s[q]) > f(t[q], u)) --q;
        if (q < 0) {
            q = 0;
            s[0] = u;
        } else {
            const std::int64_t w = 1 + sep(s[q], u);
            if (w < bw) {
                ++q;
                s[q] = u;
                t[q] = w;
            }
        }
    }
    for (std::int64_t u = bw - 1; u >= 0; --u) {
        emit(u, f(u, s[q]));
        if (u == t[q]) --q;
    }
}

// True when some pixel within Euclidean distance `radius` of (x, y) -- the pixel itself
// included -- is outside the candidate (`labels` != `label`) or outside the image. Equivalent
// to "distance transform at (x, y) <= radius", without computing the transform.
BINPICK_HD inline bool near_candidate_border(const std::int32_t* labels, std::int64_t height, std::int64_t width,
                                             std::int32_t label, std::int64_t x, std::int64_t y, double radius) {
    const auto r = static_cast<std::int64_t>(floor(radius));
    for (std::int64_t dy = -r; dy <= r; ++dy) {
        for (std::int64_t dx = -r; dx <= r; ++dx) {
            if (sqrt(static_cast<double>(dx * dx + dy * dy)) > radius) continue;
            const std::int64_t qx = x + dx, qy = y + dy;
            if (qx < 0 || qy < 0 || qx >= width || qy >= height) return true;
            if (labels[qy * width + qx] != label) return true;
        }
    }
    return false;
}

// The pixel holding a coordinate (the grasp tests the centroid's pixel).
BINPICK_HD inline std::int64_t pixel_of(double coordinate) {
    return static_cast<std::int64_t>(floor(coordinate + 0.5));
}

// The pixel of a centroid coordinate from the integer sums, as set_box_and_centroid computes it.
BINPICK_HD inline std::int64_t centroid_pixel(std::int64_t sum, std::int64_t area) {
    return pixel_of(static_cast<double>(sum) / static_cast<double>(area));
}

// Whether the centroid test searches the margin's window (cheaper) rather than reading the
// distance transform: unless the window exceeds the candidate's padded box. Both give the same
// answer; the choice only saves time, and both paths make it alike.
BINPICK_HD inline bool window_search_pays(double margin, std::int64_t padded_box_w, std::int64_t padded_box_h) {
    const double window = (2.0 * floor(margin) + 1.0) * (2.0 * floor(margin) + 1.0);
    return window <= static_cast<double>(padded_box_w) * static_cast<double>(padded_box_h);
}

// The transform's answer to the centroid test: a non-candidate pixel within `margin`.
BINPICK_HD inline bool within_margin(std::int64_t sq_dist, double margin) {
    return !(sqrt(static_cast<double>(sq_dist)) > margin);
}

}  // namespace binpick
