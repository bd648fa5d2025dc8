#include "contour_score.hpp"

#include <algorithm>
#include <array>
#include <limits>
#include <type_traits>

#if defined(__SSE2__)
#include <emmintrin.h>
#endif

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

#if defined(__SSE2__)
// 16 bytes whose first n (0..16) are 0xff, the rest 0.
inline __m128i first_lanes(std::int64_t n) {
    static const auto masks = [] {
        std::array<std::array<std::uint8_t, 16>, 17> m{};
        for (std::size_t k = 0; k <= 16; ++k)
            for (std::size_t i = 0; i < k; ++i) m[k][i] = 0xff;
        return m;
    }();
    return _mm_loadu_si128(reinterpret_cast<const __m128i*>(masks[static_cast<std::size_t>(n)].data()));
}
#endif

// Sum of n column sums (n = the patch's width, 9 by default). The compiler's vector code for a
// handful of narrow integers costs more than the additions; SSE2's byte-sum instruction adds 16
// int8 values at once (biased by 128 to make them unsigned, lanes past n masked to zero). The
// caller leaves 16 readable bytes after `values`.
template <typename Sum>
inline std::int32_t sum_of(const Sum* values, std::int64_t n) {
#if defined(__SSE2__)
    if constexpr (std::is_same<Sum, std::int8_t>::value) {
        if (n <= 16) {
            const __m128i v = _mm_xor_si128(_mm_loadu_si128(reinterpret_cast<const __m128i*>(values)),
                                            _mm_set1_epi8(static_cast<char>(0x80)));
            const __m128i sums = _mm_sad_epu8(_mm_and_si128(v, first_lanes(n)), _mm_setzero_si128());
            return _mm_cvtsi128_si32(sums) + _mm_extract_epi16(sums, 4) - 128 * static_cast<std::int32_t>(n);
        }
    }
#endif
    std::int32_t total = 0;
    for (std::int64_t i = 0; i < n; ++i) total += values[i];
    return total;
}

// cor[x] += Sign * (1 - 2*occ[x]) for x in [x0, x1): a run entering (+1) or leaving (-1) the
// patch rows. Runs are short (tens of pixels), so on SSE2 it goes 16 bytes at a time with the
// last chunk masked (its bytes past x1 get + 0) instead of a vector loop with scalar ends; both
// buffers leave 16 bytes readable after the row or band.
template <int Sign, typename Sum>
inline void slide_run(Sum* cor, const std::uint8_t* occ, std::int64_t x0, std::int64_t x1) {
#if defined(__SSE2__)
    if constexpr (std::is_same<Sum, std::int8_t>::value) {
        const __m128i one = _mm_set1_epi8(1);
        for (std::int64_t x = x0; x < x1; x += 16) {
            const __m128i o = _mm_loadu_si128(reinterpret_cast<const __m128i*>(occ + x));
            const __m128i delta = _mm_sub_epi8(one, _mm_add_epi8(o, o));  // 1 - 2*occ: +1 or -1
            const __m128i masked = _mm_and_si128(delta, first_lanes(std::min<std::int64_t>(16, x1 - x)));
            __m128i* at = reinterpret_cast<__m128i*>(cor + x);
            const __m128i c = _mm_loadu_si128(at);
            _mm_storeu_si128(at, Sign > 0 ? _mm_add_epi8(c, masked) : _mm_sub_epi8(c, masked));
        }
        return;
    }
#endif
    for (std::int64_t x = x0; x < x1; ++x) cor[x] = static_cast<Sum>(cor[x] + Sign * (1 - 2 * occ[x]));
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
    // 16 spare entries each: sum_of reads 16 at a time.
    std::vector<Sum> occ_sum(static_cast<std::size_t>(width) + 16, 0);
    std::vector<Sum> correction(static_cast<std::size_t>(band_total) + 16, 0);

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
                slide_run<+1>(cor, occ, x0, x1);
            else
                slide_run<-1>(cor, occ, x0, x1);
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
        // After at(x) found no candidate at x: the next position where one may start.
        std::int64_t next_after(std::int64_t x) const {
            if (it == end) return std::numeric_limits<std::int64_t>::max();
            return it->x0 > x ? it->x0 : it->x1;
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

    constexpr std::int64_t kMaxTable = 4096;  // patches of up to 4096 pixels (side 63) are tabled
    std::vector<double> xnor_mean;
    std::int64_t table_n = -1;
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
        // A whole-width patch's XNOR mean for each mismatch count, divided once per patch size
        // (it changes only in the first and last r rows) instead of once per contour pixel:
        // the same division, so the same bits.
        const std::int64_t full_n = patch_rows * patch;
        if (full_n != table_n && full_n <= kMaxTable) {
            xnor_mean.resize(static_cast<std::size_t>(full_n) + 1);
            for (std::int64_t mm = 0; mm <= full_n; ++mm)
                xnor_mean[static_cast<std::size_t>(mm)] =
                    (static_cast<double>(full_n) - static_cast<double>(mm)) / static_cast<double>(full_n);
            table_n = full_n;
        }
        const bool use_table = table_n == full_n;
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
                if ((around[0] | around[1] | around[2] | around[3]) == 0) {
                    // Nothing above or below until the next run there: skip to it (but not past
                    // the gap's last pixel, which has a right neighbour).
                    const std::int64_t skip = std::min({up.next_after(bx), down.next_after(bx), g1 - 1});
                    if (skip > bx + 1) bx = skip - 1;
                    continue;
                }
                // Patch clipped to the image: only in-image pixels count.
                const std::int64_t a = std::max<std::int64_t>(0, bx - r), b = std::min(width - 1, bx + r);
                const std::int64_t n_cols = b - a + 1;
                const double n_patch = static_cast<double>(patch_rows * n_cols);
                const bool tabled = use_table && n_cols == patch;
                // int32: a patch holds at most 1001 x 1001 pixels.
                const std::int32_t occ_in_patch = sum_of(os + a, n_cols);
                for (int j = 0; j < 4; ++j) {
                    const std::int32_t k = around[j];
                    if (k == 0 || (j > 0 && around[0] == k) || (j > 1 && around[1] == k) || (j > 2 && around[2] == k))
                        continue;
                    const Band& bk = band[static_cast<std::size_t>(k)];
                    const Sum* cor = correction.data() + bk.offset - bk.col0;
                    const std::int32_t mismatches = occ_in_patch + sum_of(cor + a, n_cols);
                    ContourMeasures& m = out[static_cast<std::size_t>(k)];
                    m.contour_length += 1;
                    const double mean = tabled ? xnor_mean[static_cast<std::size_t>(mismatches)]
                                               : (n_patch - static_cast<double>(mismatches)) / n_patch;
                    m.s1_sum += mean;
                    m.occluded_side += on_occluded_side(mean) ? 1 : 0;
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
