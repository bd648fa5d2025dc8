#include "contour_score.hpp"

#include <algorithm>

namespace binpick {
namespace {

// Columns of a candidate's correction sums: its box widened by the patch radius and one pixel
// (a contour pixel lies at most one pixel outside the box), clipped to the image.
struct Band {
    std::int64_t col0 = 0;    // first image column
    std::int64_t offset = 0;  // start in the flat buffer
};

// Index of each row's first run (runs are in raster order); entry `height` = runs.size().
std::vector<std::size_t> row_starts(const std::vector<Run>& runs, std::int64_t height) {
    std::vector<std::size_t> begin(static_cast<std::size_t>(height) + 1);
    std::size_t i = 0;
    for (std::int64_t y = 0; y <= height; ++y) {
        begin[static_cast<std::size_t>(y)] = i;
        while (i < runs.size() && runs[i].y == y) ++i;
    }
    return begin;
}

// Sum of n (a patch side, usually 9) small column sums. Kept scalar: the vectoriser's set-up for
// a handful of narrow integers costs more than the additions.
template <typename Sum>
#if defined(__GNUC__) && !defined(__clang__)
__attribute__((optimize("no-tree-vectorize")))
#endif
inline std::int32_t sum_of(const Sum* values, std::int64_t n) {
    std::int32_t total = 0;
    for (std::int64_t i = 0; i < n; ++i) total += values[i];
    return total;
}

// The sweep, with the column sums held in `Sum`: both sums are bounded by the patch side, so
// int8 holds them for patches up to 127 (every practical one; 16 lanes per 128-bit vector and
// no widening of the 0/1 bytes) and int16 up to the largest allowed (1001).
template <typename Sum>
void sweep(const Components& comps, const std::vector<std::int32_t>& new_id, std::int32_t count,
           const std::uint8_t* occluding, std::int64_t height, std::int64_t width, int patch,
           std::vector<ContourMeasures>& out) {
    const std::int64_t r = patch / 2;
    const std::vector<Run>& runs = comps.runs;
    const std::vector<std::size_t> row_begin = row_starts(runs, height);

    std::vector<Band> band(static_cast<std::size_t>(count) + 1);
    std::int64_t band_total = 0;
    for (std::size_t c = 0; c < comps.stats.size(); ++c) {
        const std::int32_t k = new_id[c + 1];
        if (k == 0) continue;
        const ComponentStats& s = comps.stats[c];
        const std::int64_t col0 = std::max<std::int64_t>(0, s.min_x - r - 1);
        const std::int64_t col1 = std::min<std::int64_t>(width - 1, s.max_x + r + 1);
        band[static_cast<std::size_t>(k)] = {col0, band_total};
        band_total += col1 - col0 + 1;
    }
    // occ_sum[x]: occluding pixels of column x in the current row's patch rows.
    // correction[band k + x - col0]: the sum of (1 - 2*occluding) over candidate k's pixels there.
    // Summed over a patch's columns they give its mismatch count for k.
    std::vector<Sum> occ_sum(static_cast<std::size_t>(width), 0);
    std::vector<Sum> correction(static_cast<std::size_t>(band_total), 0);

    // The correction of row yy's candidate runs, added (sign +1) or removed (-1).
    auto slide_runs = [&](std::int64_t yy, int sign) {
        const std::uint8_t* occ = occluding + yy * width;
        for (std::size_t i = row_begin[static_cast<std::size_t>(yy)]; i < row_begin[static_cast<std::size_t>(yy) + 1];
             ++i) {
            const std::int32_t k = new_id[static_cast<std::size_t>(runs[i].label)];
            if (k == 0) continue;
            const Band& b = band[static_cast<std::size_t>(k)];
            // Locals, not the run's fields: the stores below could alias them and stop vectorisation.
            const std::int64_t x0 = runs[i].x0, x1 = runs[i].x1;
            Sum* cor = correction.data() + b.offset - b.col0;
            if (sign > 0)
                for (std::int64_t x = x0; x < x1; ++x) cor[x] = static_cast<Sum>(cor[x] + 1 - 2 * occ[x]);
            else
                for (std::int64_t x = x0; x < x1; ++x) cor[x] = static_cast<Sum>(cor[x] - 1 + 2 * occ[x]);
        }
    };

    for (std::int64_t yy = 0; yy < std::min(r, height); ++yy) {
        const std::uint8_t* occ = occluding + yy * width;
        for (std::int64_t x = 0; x < width; ++x) occ_sum[x] = static_cast<Sum>(occ_sum[x] + occ[x]);
        slide_runs(yy, +1);
    }

    // The candidate label of each pixel of row yy, read by walking its runs left to right:
    // `at(x)` for increasing x (0 = boundary, dropped, or outside the image).
    struct RowCursor {
        const Run* it = nullptr;
        const Run* end = nullptr;
        std::int32_t at(std::int64_t x, const std::vector<std::int32_t>& ids) {
            while (it != end && it->x1 <= x) ++it;
            return it != end && it->x0 <= x ? ids[static_cast<std::size_t>(it->label)] : 0;
        }
    };
    auto cursor = [&](std::int64_t yy) {
        RowCursor c;
        if (yy >= 0 && yy < height) {
            c.it = runs.data() + row_begin[static_cast<std::size_t>(yy)];
            c.end = runs.data() + row_begin[static_cast<std::size_t>(yy) + 1];
        }
        return c;
    };

    for (std::int64_t y = 0; y < height; ++y) {
        // Slide the sums to the patch rows of row y: [y - r, y + r], clipped to the image.
        const bool enter = y + r < height, leave = y - r - 1 >= 0;
        const std::uint8_t* occ_in = occluding + (y + r) * width;
        const std::uint8_t* occ_out = occluding + (y - r - 1) * width;
        Sum* os = occ_sum.data();
        if (enter && leave)
            for (std::int64_t x = 0; x < width; ++x) os[x] = static_cast<Sum>(os[x] + occ_in[x] - occ_out[x]);
        else if (enter)
            for (std::int64_t x = 0; x < width; ++x) os[x] = static_cast<Sum>(os[x] + occ_in[x]);
        else if (leave)
            for (std::int64_t x = 0; x < width; ++x) os[x] = static_cast<Sum>(os[x] - occ_out[x]);
        if (enter) slide_runs(y + r, +1);
        if (leave) slide_runs(y - r - 1, -1);

        const std::int64_t y0 = std::max<std::int64_t>(0, y - r), y1 = std::min(height - 1, y + r);
        const std::int64_t patch_rows = y1 - y0 + 1;
        RowCursor up = cursor(y - 1), down = cursor(y + 1);
        // The boundary pixels of row y are the gaps between its runs; a gap's left neighbour is
        // the run before it, its right neighbour the run after it.
        const Run* row_run = runs.data() + row_begin[static_cast<std::size_t>(y)];
        const Run* row_end = runs.data() + row_begin[static_cast<std::size_t>(y) + 1];
        std::int64_t g0 = 0;
        std::int32_t left = 0;
        for (;; ++row_run) {
            const bool last = row_run == row_end;
            const std::int64_t g1 = last ? width : row_run->x0;
            const std::int32_t right = last ? 0 : new_id[static_cast<std::size_t>(row_run->label)];
            for (std::int64_t bx = g0; bx < g1; ++bx) {
                // The candidates 4-adjacent to this boundary pixel, each once.
                const std::int32_t around[4] = {bx == g0 ? left : 0, bx + 1 == g1 ? right : 0, up.at(bx, new_id),
                                                down.at(bx, new_id)};
                if ((around[0] | around[1] | around[2] | around[3]) == 0) continue;
                // Patch clipped to the image: only in-image pixels count.
                const std::int64_t a = std::max<std::int64_t>(0, bx - r), b = std::min(width - 1, bx + r);
                const double n_patch = static_cast<double>(patch_rows * (b - a + 1));
                // int32: a patch holds at most 1001 x 1001 pixels.
                const std::int32_t occ_in_patch = sum_of(os + a, b - a + 1);
                for (int j = 0; j < 4; ++j) {
                    const std::int32_t k = around[j];
                    if (k == 0 || (j > 0 && around[0] == k) || (j > 1 && around[1] == k) || (j > 2 && around[2] == k))
                        continue;
                    const Band& bk = band[static_cast<std::size_t>(k)];
                    const Sum* cor = correction.data() + bk.offset - bk.col0;
                    const std::int32_t mismatches = occ_in_patch + sum_of(cor + a, b - a + 1);
                    ContourMeasures& m = out[static_cast<std::size_t>(k)];
                    m.contour_length += 1;
                    m.s1_sum += (n_patch - static_cast<double>(mismatches)) / n_patch;
                }
            }
            if (last) break;
            g0 = row_run->x1;
            left = right;
        }
    }
}

}  // namespace

std::vector<ContourMeasures> measure_contours(const Components& comps, const std::vector<std::int32_t>& new_id,
                                              std::int32_t count, const std::uint8_t* occluding, std::int64_t height,
                                              std::int64_t width, int patch) {
    std::vector<ContourMeasures> out(static_cast<std::size_t>(count) + 1);  // index = label
    if (count == 0 || height == 0 || width == 0) return out;
    if (patch <= 127)
        sweep<std::int8_t>(comps, new_id, count, occluding, height, width, patch, out);
    else
        sweep<std::int16_t>(comps, new_id, count, occluding, height, width, patch, out);
    return out;
}

}  // namespace binpick
