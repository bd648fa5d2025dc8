// Host end of the CUDA ranking: turns the GPU's compact records into the CPU path's
// RankingResult with the CPU path's own functions, so both paths agree to the bit.
#include <cstdint>
#include <vector>

#include "ranking_records.hpp"
#include "hotpath/connected_components.hpp"
#include "hotpath/grasp.hpp"
#include "hotpath/moments.hpp"

namespace binpick_cuda {
namespace {

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

binpick::RankingResult finish_on_host(const std::vector<CandidateRecord>& ranked, const unsigned long long* scalars) {
    binpick::RankingResult res;
    res.candidates.resize(ranked.size());
    for (std::size_t i = 0; i < ranked.size(); ++i) {
        const CandidateRecord& r = ranked[i];
        binpick::CandidateResult& c = res.candidates[i];
        c.label = r.label;
        binpick::set_box_and_centroid(c, r);
        c.contour_length = r.contour_length;
        c.s1 = r.s1;
        c.s2 = r.s2;
        c.occluded_share = r.occluded_share;
        c.score = r.score;
        c.angle_deg = binpick::principal_angle(stats_of(r)) * (180.0 / binpick::kPi);
        c.major_px = r.max_a - r.min_a + 1.0;
        c.minor_px = r.max_b - r.min_b + 1.0;
    }
    if (ranked.empty()) return res;
    res.grasp = binpick::grasp_result(res.candidates.front(), scalars[kScalarNearBorder] != 0,
                                      static_cast<int64_t>(scalars[kScalarInscribedX]),
                                      static_cast<int64_t>(scalars[kScalarInscribedY]));
    return res;
}

}  // namespace binpick_cuda
