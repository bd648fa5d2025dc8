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

std::vector<int32_t> crop_from_box_mask(const CandidateRecord& best, const uint32_t* mask) {
    const int64_t box_pixels = (int64_t{best.max_x} - best.min_x + 1) * (int64_t{best.max_y} - best.min_y + 1);
    std::vector<int32_t> crop(static_cast<size_t>(box_pixels), 0);
    for (int64_t r = 0; r < box_pixels; ++r) {
        if ((mask[r / 32] >> (r % 32)) & 1u) crop[static_cast<size_t>(r)] = best.component;
    }
    return crop;
}

binpick::RankingResult finish_on_host(const std::vector<CandidateRecord>& ranked,
                                      const std::vector<int32_t>& best_crop, double margin) {
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
        c.score = r.score;
        c.angle_deg = binpick::principal_angle(stats_of(r)) * (180.0 / kPi);
        c.major_px = r.max_a - r.min_a + 1.0;
        c.minor_px = r.max_b - r.min_b + 1.0;
    }
    if (ranked.empty()) return res;

    // The CPU's choose_grasp on the best candidate's crop of the component labels.
    const CandidateRecord& best_record = ranked.front();
    const int64_t crop_w = best_record.max_x - best_record.min_x + 1;
    const int64_t crop_h = best_record.max_y - best_record.min_y + 1;
    res.grasp = binpick::choose_grasp(res.candidates.front(), best_crop.data(), crop_h, crop_w,
                                      best_record.component, best_record.min_x, best_record.min_y, margin);
    return res;
}

}  // namespace binpick_cuda
