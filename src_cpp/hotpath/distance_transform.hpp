// Exact Euclidean distance transform inside one candidate, for the grasp's
// inscribed-circle centre.
//
// Why only the bounding box: the grasp needs the transform of the best
// candidate alone, so it runs on that candidate's bounding box padded by one
// pixel (Felzenszwalb & Huttenlocher's separable algorithm), never the image.
#pragma once

#include <cstdint>
#include <vector>

namespace binpick {

struct CandidateDistance {
    std::int64_t box_x = 0, box_y = 0, box_w = 0, box_h = 0;  // padded box in image pixels
    std::vector<double> sq_dist;  // squared distance to the nearest non-candidate pixel, box_h x box_w

    double at(std::int64_t x, std::int64_t y) const { return sq_dist[(y - box_y) * box_w + (x - box_x)]; }
};

// Pixels outside the image count as outside the candidate: the picture ends
// there, so the instance's extent beyond it is unknown.
CandidateDistance candidate_distance(const std::int32_t* labels, std::int64_t height, std::int64_t width,
                                     std::int32_t label, std::int64_t min_x, std::int64_t min_y,
                                     std::int64_t max_x, std::int64_t max_y);

}  // namespace binpick
