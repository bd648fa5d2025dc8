// The occlusion-aware contour score s1 (thesis Eq. 4.9, DESIGN.md) and the
// candidates' extents along their principal axes, in one pass over the
// boundary pixels.
//
// Why one pass over boundary pixels: every quantity here lives on a
// candidate's contour, so each boundary pixel's PxP patch is read once for all
// the candidates it touches; no per-candidate full-image mask is built.
#pragma once

#include <cstdint>
#include <vector>

namespace binpick {

struct ContourMeasures {
    std::int64_t contour_length = 0;  // boundary pixels 4-adjacent to the candidate
    double s1_sum = 0.0;              // sum over those pixels of the patch's XNOR mean
    // Projections of the candidate's contour pixels on its major axis (a) and
    // minor axis (b); extremes of a linear function over a pixel set are reached
    // on its contour, so these are the extents of the whole candidate.
    double min_a = 0, max_a = 0, min_b = 0, max_b = 0;
    bool has_extent = false;
};

// labels: h x w contiguous, candidate ids 1..count (0 = boundary or dropped).
// non_boundary: 1 where Y <= alpha. occluding: 1 where Z > beta.
// angle_rad[i]: principal angle of candidate i+1.
std::vector<ContourMeasures> measure_contours(const std::int32_t* labels, const std::uint8_t* non_boundary,
                                              const std::uint8_t* occluding, std::int64_t height,
                                              std::int64_t width, int patch, std::int32_t count,
                                              const std::vector<double>& angle_rad);

}  // namespace binpick
