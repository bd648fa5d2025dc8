// The occlusion-aware contour score s1 (thesis Eq. 4.9, DESIGN.md), in one
// pass over the boundary pixels.
//
// Why one pass over boundary pixels: s1 lives on the candidates' contours, so
// each boundary pixel's PxP patch is read once for the candidates it touches;
// no per-candidate full-image mask is built.
#pragma once

#include <cstdint>
#include <vector>

namespace binpick {

struct ContourMeasures {
    std::int64_t contour_length = 0;  // boundary pixels 4-adjacent to the candidate
    double s1_sum = 0.0;              // sum over those pixels of the patch's XNOR mean
};

// labels: h x w contiguous, candidate ids 1..count (0 = boundary or dropped).
// non_boundary: 1 where Y <= alpha. occluding: 1 where Z > beta.
// Result index = label (entry 0 unused).
std::vector<ContourMeasures> measure_contours(const std::int32_t* labels, const std::uint8_t* non_boundary,
                                              const std::uint8_t* occluding, std::int64_t height,
                                              std::int64_t width, int patch, std::int32_t count);

}  // namespace binpick
