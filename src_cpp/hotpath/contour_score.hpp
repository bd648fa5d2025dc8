// The occlusion-aware contour score s1 (thesis Eq. 4.9, DESIGN.md), in one
// sweep down the image.
//
// Why a sweep with sliding column sums: s1 lives on the candidates' contours,
// and the P x P patches of a contour's pixels overlap. A patch's mismatch count
// (pixels where "in candidate k" differs from "occluding") splits into a part
// that does not depend on k (the occluding pixels) and a correction on k's own
// pixels (+1 - 2*occluding each). Both are kept as per-column sums over the
// patch's rows, slid down one row at a time: the first over the whole row, the
// second over k's runs only (each candidate pixel enters and leaves once). A
// contour pixel then costs a few additions, never a P x P read. No label
// image is read either: a row's boundary pixels are the gaps between its runs,
// and their neighbours above and below are found by walking the adjacent rows'
// runs alongside.
#pragma once

#include <cstdint>
#include <vector>

#include "connected_components.hpp"
#include "ranking.hpp"

namespace binpick {

struct ContourMeasures {
    std::int64_t contour_length = 0;  // boundary pixels 4-adjacent to the candidate
    double s1_sum = 0.0;              // sum over those pixels of the patch's XNOR mean, raster order
    std::int64_t occluded_side = 0;   // those pixels whose XNOR mean is below 1/2 (on_occluded_side)
};

// comps: the labelling of the non-boundary mask (1 where Y <= alpha), whose complement is the
// boundary; new_id maps its component ids to candidate labels 1..count (0 = dropped).
// occluding: 1 where Z > beta, h x w contiguous and followed by kContourPadding readable bytes
// (it is read 16 bytes at a time). Result index = candidate label (entry 0 unused).
inline constexpr std::int64_t kContourPadding = 16;
std::vector<ContourMeasures> measure_contours(const Components& comps, const std::vector<std::int32_t>& new_id,
                                              std::int32_t count,
                                              const std::uint8_t* occluding, std::int64_t height,
                                              std::int64_t width, int patch);

}  // namespace binpick
