// The grasp point on the best candidate (DESIGN.md "Candidates and ranking"), shared by the
// CPU hot path (ranking.cpp) and the CUDA path's host end (src_cpp/cuda/host_finish.cpp),
// so both choose the same point to the bit.
#pragma once

#include <cstdint>

#include "ranking.hpp"

namespace binpick {

// The grasp on `best`: its centroid where no non-candidate pixel lies within `margin` of the
// centroid's pixel, else the inscribed-circle centre (the first maximum, in raster order, of
// the candidate's distance transform). `labels` is a height x width label image whose pixel
// (0, 0) is image pixel (origin_x, origin_y): the whole image (origin 0, 0) or a crop holding
// the candidate's bounding box (outside the crop counts as outside the candidate);
// `component` is the candidate's value in it. Coordinates in the result are the image's.
GraspResult choose_grasp(const CandidateResult& best, const std::int32_t* labels, std::int64_t height,
                         std::int64_t width, std::int32_t component, std::int64_t origin_x,
                         std::int64_t origin_y, double margin);

// What choose_grasp assumes of a candidate it did not find itself (edge._hotpath.grasp_point's
// arguments): `c.bbox_*` is the bounding box of `c.label` in the height x width `labels` (inside
// the image, every edge row and column of it holding the label), the centroid lies in that box
// (the distance transform is read at the centroid's pixel) and `margin` is a finite number >= 0.
// Raises InvalidArgument naming the first argument that fails.
void check_grasp_request(const CandidateResult& c, const std::int32_t* labels, std::int64_t height,
                         std::int64_t width, double margin);

// The grasp rule itself, from the two facts it turns on: whether the centroid's pixel lies
// within `margin` of a non-candidate pixel, and (used only then) the inscribed-circle centre
// in image pixels. choose_grasp finds both on a label image; the CUDA ranking finds them on
// the device (kernel_bodies.cuh) and hands them to this same rule.
GraspResult grasp_result(const CandidateResult& best, bool centroid_near_border, std::int64_t inscribed_u,
                         std::int64_t inscribed_v);

}  // namespace binpick
