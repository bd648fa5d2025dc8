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
    double score;
    double min_a;
    double max_a;
    double min_b;
    double max_b;
};

// 32-bit words of the best candidate's box mask (best_box_mask_word) for an image of `pixels`
// pixels: enough for any bounding box, so the copy's size is known before the ranking runs.
inline int64_t box_mask_words(int64_t pixels) { return (pixels + 31) / 32; }

// The best candidate's bounding-box crop of the labels, rebuilt from its box mask: the
// candidate's component number where the bit is set, 0 elsewhere. choose_grasp only asks
// whether a pixel is the candidate's, so this crop gives the grasp the full label crop gives.
std::vector<int32_t> crop_from_box_mask(const CandidateRecord& best, const uint32_t* mask);

// Finishes the ranking on the host exactly as the CPU path does: candidate fields from the
// records (angle from exact integer moments) and the grasp from the best candidate's
// bounding-box crop of the component labels (`best_crop`, row-major, its bbox size).
binpick::RankingResult finish_on_host(const std::vector<CandidateRecord>& ranked,
                                      const std::vector<int32_t>& best_crop, double margin);

}  // namespace binpick_cuda
