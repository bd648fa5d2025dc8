// Exact Euclidean distance transform inside one candidate, for the grasp's
// inscribed-circle centre.
//
// Why only the bounding box, and why Meijster's algorithm: the grasp needs the
// transform of the best candidate alone, so it runs on that candidate's
// bounding box padded by one pixel, never on the image; Meijster, Roerdink &
// Hesselink's two-phase algorithm is exact, linear, and works in integers (so
// ties between equally distant pixels are exact, as in SciPy's EDT).
#pragma once

#include <cstdint>
#include <vector>

#include "grasp_geometry.hpp"  // near_candidate_border, lower_envelope_row

namespace binpick {

struct CandidateDistance {
    std::int64_t box_x = 0, box_y = 0, box_w = 0, box_h = 0;  // padded box in image pixels
    std::vector<std::int64_t> sq_dist;  // squared distance to the nearest non-candidate pixel, box_h x box_w
};

// Pixels outside the image count as outside the candidate: the picture ends
// there, so the instance's extent beyond it is unknown.
CandidateDistance candidate_distance(const std::int32_t* labels, std::int64_t width, std::int32_t label,
                                     std::int64_t min_x, std::int64_t min_y,
                                     std::int64_t max_x, std::int64_t max_y);

}  // namespace binpick
