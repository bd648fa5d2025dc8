#include "distance_transform.hpp"

#include <algorithm>
#include <vector>

namespace binpick {

CandidateDistance candidate_distance(const std::int32_t* labels, std::int64_t width, std::int32_t label,
                                     std::int64_t min_x, std::int64_t min_y,
                                     std::int64_t max_x, std::int64_t max_y) {
    CandidateDistance out;
    out.box_x = min_x - 1;
    out.box_y = min_y - 1;
    out.box_w = max_x - min_x + 3;
    out.box_h = max_y - min_y + 3;
    const std::int64_t bw = out.box_w, bh = out.box_h;

    // Phase 1: per column, distance to the nearest non-candidate pixel in that
    // column (rows processed in memory order so the inner loops run along rows).
    // The padding ring is outside the candidate, so every distance is finite.
    // int32: squared distances within a padded box stay far below 2^31 for any image up to 32k px.
    std::vector<std::int32_t> g(static_cast<std::size_t>(bw * bh), 0);
    for (std::int64_t y = 1; y < bh - 1; ++y) {
        const std::int32_t* lab = labels + (y + out.box_y) * width + out.box_x;
        std::int32_t* row = g.data() + y * bw;
        const std::int32_t* above = row - bw;
        for (std::int64_t x = 1; x < bw - 1; ++x) row[x] = lab[x] == label ? above[x] + 1 : 0;
    }
    for (std::int64_t y = bh - 2; y >= 1; --y) {
        std::int32_t* row = g.data() + y * bw;
        const std::int32_t* below = row + bw;
        for (std::int64_t x = 1; x < bw - 1; ++x) row[x] = std::min(row[x], below[x] + 1);
    }

    // Phase 2: per row, lower envelope of the parabolas (x - i)^2 + g(i)^2 (grasp_geometry.hpp,
    // shared with the CUDA ranking's device-side grasp).
    out.sq_dist.assign(g.size(), 0);
    std::vector<std::int64_t> s(static_cast<std::size_t>(bw)), t(static_cast<std::size_t>(bw)), g2(s.size());
    for (std::int64_t y = 1; y < bh - 1; ++y) {
        const std::int32_t* gy = g.data() + y * bw;
        for (std::int64_t x = 0; x < bw; ++x) g2[x] = static_cast<std::int64_t>(gy[x]) * gy[x];
        std::int64_t* out_row = out.sq_dist.data() + y * bw;
        lower_envelope_row(g2.data(), bw, s.data(), t.data(), [out_row](std::int64_t u, std::int64_t d2) {
            out_row[u] = d2;
        });
    }
    return out;
}

}  // namespace binpick
