// What the GPU hands back per candidate, and the host end that turns it into the CPU
// path's RankingResult. Free of CUDA headers, so the host check (host_check.cpp) builds
// with a plain C++ compiler.
#pragma once

#include <cstdint>
#include <vector>

#include "hotpath/ranking.hpp"

namespace binpick_cuda {

// One kept candidate as copied back to the host (ranked order).
struct CandidateRecord {
    int32_t label;      // 1..N among kept candidates, raster order of the first pixel (the CPU's label)
    int32_t component;  // 1..n among all components (the value in the device label image)
    int32_t min_x;
    int32_t min_y;
    int32_t max_x;
    int32_t max_y;
    int64_t area;
    int64_t contour_length;
    int64_t sum_x;
    int64_t sum_y;
    int64_t sum_xx;
    int64_t sum_xy;
    int64_t sum_yy;
    double s1;
    double s2;
    double occluded_share;
    double score;
    double min_a;
    double max_a;
    double min_b;
    double max_b;
};

// The device scalars, copied back together after the ranking: the counts, then the grasp's
// two facts (kernel_bodies.cuh grasp_*) for binpick::grasp_result.
enum ScalarIndex : int {
    kScalarComponents = 0,      // before the area filter
    kScalarPairs = 1,           // (boundary pixel, touching component) pairs
    kScalarLargest = 2,         // largest kept area
    kScalarKept = 3,            // kept candidates
    kScalarNearBorder = 4,      // 1: the best candidate's centroid pixel is within the margin of its border
    kScalarInscribedX = 5,      // its inscribed-circle centre, image pixels
    kScalarInscribedY = 6,
    kScalarCentroidSqDist = 7,  // squared distance transform at the centroid pixel
    kScalarCount = 8
};

// Finishes the ranking on the host exactly as the CPU path does: candidate fields from the
// records (angle from exact integer moments) and the grasp by the CPU's rule
// (binpick::grasp_result) from the facts the device found (`scalars`, ScalarIndex).
binpick::RankingResult finish_on_host(const std::vector<CandidateRecord>& ranked, const unsigned long long* scalars);

}  // namespace binpick_cuda
