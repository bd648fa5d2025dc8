#include "distance_transform.hpp"

#include <algorithm>
#include <limits>

namespace binpick {
namespace {

// 1-D squared distance transform of f (Felzenszwalb & Huttenlocher 2012), in place via scratch buffers.
void edt_1d(const double* f, std::int64_t n, double* d, std::vector<std::int64_t>& v, std::vector<double>& z) {
    const double inf = std::numeric_limits<double>::infinity();
    v.assign(static_cast<std::size_t>(n), 0);
    z.assign(static_cast<std::size_t>(n) + 1, 0.0);
    std::int64_t k = 0;
    // Skip leading infinite samples: parabolas rooted at infinity never win.
    std::int64_t first = 0;
    while (first < n && f[first] == inf) ++first;
    if (first == n) {
        for (std::int64_t q = 0; q < n; ++q) d[q] = inf;
        return;
    }
    v[0] = first;
    z[0] = -inf;
    z[1] = inf;
    for (std::int64_t q = first + 1; q < n; ++q) {
        if (f[q] == inf) continue;
        double s;
        for (;;) {
            const std::int64_t p = v[k];
            s = ((f[q] + static_cast<double>(q * q)) - (f[p] + static_cast<double>(p * p))) /
                (2.0 * static_cast<double>(q - p));
            if (s <= z[k] && k > 0)
                --k;
            else
                break;
        }
        ++k;
        v[k] = q;
        z[k] = s;
        z[k + 1] = inf;
    }
    k = 0;
    for (std::int64_t q = 0; q < n; ++q) {
        while (z[k + 1] < static_cast<double>(q)) ++k;
        const double dq = static_cast<double>(q - v[k]);
        d[q] = dq * dq + f[v[k]];
    }
}

}  // namespace

CandidateDistance candidate_distance(const std::int32_t* labels, std::int64_t height, std::int64_t width,
                                     std::int32_t label, std::int64_t min_x, std::int64_t min_y,
                                     std::int64_t max_x, std::int64_t max_y) {
    CandidateDistance out;
    out.box_x = min_x - 1;
    out.box_y = min_y - 1;
    out.box_w = max_x - min_x + 3;
    out.box_h = max_y - min_y + 3;
    const std::int64_t bw = out.box_w, bh = out.box_h;
    const double inf = std::numeric_limits<double>::infinity();
    out.sq_dist.assign(static_cast<std::size_t>(bw * bh), 0.0);
    for (std::int64_t y = 0; y < bh; ++y) {
        const std::int64_t iy = y + out.box_y;
        if (iy < 0 || iy >= height) continue;
        for (std::int64_t x = 0; x < bw; ++x) {
            const std::int64_t ix = x + out.box_x;
            if (ix >= 0 && ix < width && labels[iy * width + ix] == label) out.sq_dist[y * bw + x] = inf;
        }
    }
    std::vector<std::int64_t> v;
    std::vector<double> z, f(static_cast<std::size_t>(std::max(bw, bh))), d(f.size());
    for (std::int64_t x = 0; x < bw; ++x) {  // columns
        for (std::int64_t y = 0; y < bh; ++y) f[y] = out.sq_dist[y * bw + x];
        edt_1d(f.data(), bh, d.data(), v, z);
        for (std::int64_t y = 0; y < bh; ++y) out.sq_dist[y * bw + x] = d[y];
    }
    for (std::int64_t y = 0; y < bh; ++y) {  // rows
        double* row = out.sq_dist.data() + y * bw;
        std::copy(row, row + bw, f.begin());
        edt_1d(f.data(), bw, row, v, z);
    }
    return out;
}

}  // namespace binpick
