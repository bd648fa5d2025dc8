// Host end of the CUDA ranking: turns the GPU's compact records into the CPU path's
// RankingResult with the CPU path's own functions, so both paths agree to the bit.
#include <cmath>
#include <cstdint>
#include <vector>

#include "ranking_records.hpp"
#include "hotpath/connected_components.hpp"
#include "hotpath/distance_transform.hpp"
#include "hotpath/moments.hpp"

namespace binpick_cuda {
namespace {

constexpr double kPi = 3.14159265358979323846;

binpick::ComponentStats stats_of(const CandidateRecord& r) {
    binpick::ComponentStats s;
    s.area = r.area;
    s.sum_x = r.sum_x;
    s.sum_y = r.sum_y;
    s.sum_xx = r.sum_xx;
    s.sum_yy = r.sum_yy;
    s.sum_xy = r.sum_xy;
    s.min_x = r.min_x;
    s.max_x = r.max_x;
    s.min_y = r.min_y;
    s.max_y = r.max_y;
    return s;
}

}  // namespace

binpick::RankingResult finish_on_host(const std::vector<CandidateRecord>& ranked,
                                      const std::vector<int32_t>& best_crop, double margin) {
    binpick::RankingResult res;
    res.candidates.resize(ranked.size());
    for (std::size_t i = 0; i < ranked.size(); ++i) {
        const CandidateRecord& r = ranked[i];
        binpick::CandidateResult& c = res.candidates[i];
        c.label = r.label;
        c.area = r.area;
        c.bbox_x = r.min_x;
        c.bbox_y = r.min_y;
        c.bbox_w = r.max_x - r.min_x + 1;
        c.bbox_h = r.max_y - r.min_y + 1;
        c.centroid_u = static_cast<double>(r.sum_x) / static_cast<double>(r.area);
        c.centroid_v = static_cast<double>(r.sum_y) / static_cast<double>(r.area);
        c.contour_length = r.contour_length;
        c.s1 = r.s1;
        c.s2 = r.s2;
        c.score = r.score;
        c.angle_deg = binpick::principal_angle(stats_of(r)) * (180.0 / kPi);
        c.major_px = r.max_a - r.min_a + 1.0;
        c.minor_px = r.max_b - r.min_b + 1.0;
    }
    if (ranked.empty()) return res;

    // The CPU's choose_grasp (src_cpp/hotpath/ranking.cpp, in an anonymous namespace there)
    // on the best candidate's crop of the component labels.
    const CandidateRecord& best_record = ranked.front();
    const binpick::CandidateResult& best = res.candidates.front();
    const int64_t crop_w = best_record.max_x - best_record.min_x + 1;
    const int64_t crop_h = best_record.max_y - best_record.min_y + 1;
    binpick::GraspResult& g = res.grasp;
    g.valid = true;
    g.angle_deg = best.angle_deg;
    g.major_px = best.major_px;
    g.minor_px = best.minor_px;
    g.score = best.score;
    g.candidate_index = 0;
    // In crop coordinates: outside the crop is outside the candidate, as outside its bbox.
    const int32_t* crop = best_crop.data();
    const int32_t component = best_record.component;
    const auto cx = static_cast<int64_t>(std::floor(best.centroid_u + 0.5)) - best_record.min_x;
    const auto cy = static_cast<int64_t>(std::floor(best.centroid_v + 0.5)) - best_record.min_y;
    const double window = (2.0 * std::floor(margin) + 1.0) * (2.0 * std::floor(margin) + 1.0);
    const double box = static_cast<double>(best.bbox_w + 2) * static_cast<double>(best.bbox_h + 2);
    binpick::CandidateDistance dist;
    bool near_border;
    if (window <= box) {
        near_border = binpick::near_candidate_border(crop, crop_h, crop_w, component, cx, cy, margin);
    } else {
        dist = binpick::candidate_distance(crop, crop_h, crop_w, component, 0, 0, crop_w - 1, crop_h - 1);
        const int64_t d2 = dist.sq_dist[(cy - dist.box_y) * dist.box_w + (cx - dist.box_x)];
        near_border = !(std::sqrt(static_cast<double>(d2)) > margin);
    }
    if (!near_border) {
        g.u = best.centroid_u;
        g.v = best.centroid_v;
        g.method = binpick::GraspMethod::centroid;
        return res;
    }
    // Inscribed-circle centre: the first (raster order) maximum of the distance transform.
    if (dist.sq_dist.empty()) {
        dist = binpick::candidate_distance(crop, crop_h, crop_w, component, 0, 0, crop_w - 1, crop_h - 1);
    }
    int64_t best_d = -1;
    int64_t bx = cx, by = cy;
    for (int64_t y = 0; y < dist.box_h; ++y) {
        for (int64_t x = 0; x < dist.box_w; ++x) {
            const int64_t d = dist.sq_dist[y * dist.box_w + x];
            if (d > best_d) {
                best_d = d;
                bx = x + dist.box_x;
                by = y + dist.box_y;
            }
        }
    }
    bx += best_record.min_x;
    by += best_record.min_y;
    g.u = static_cast<double>(bx);
    g.v = static_cast<double>(by);
    g.method = binpick::GraspMethod::inscribed;
    return res;
}

}  // namespace binpick_cuda
