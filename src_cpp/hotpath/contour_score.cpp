#include "contour_score.hpp"

#include <algorithm>
#include <cstring>

namespace binpick {
namespace {

struct Touch {
    std::int64_t x;
    std::int32_t label;
};

// Candidates 4-adjacent to boundary pixel (x, y), each once, appended to `touches`.
inline void collect_touches(const std::int32_t* labels, std::int64_t height, std::int64_t width, std::int64_t x,
                            std::int64_t y, std::vector<Touch>& touches) {
    const std::int32_t* at = labels + y * width + x;
    const std::int32_t around[4] = {x > 0 ? at[-1] : 0, x + 1 < width ? at[1] : 0, y > 0 ? at[-width] : 0,
                                    y + 1 < height ? at[width] : 0};
    const std::size_t first = touches.size();
    for (const std::int32_t k : around) {
        if (k == 0) continue;
        bool seen = false;
        for (std::size_t j = first; j < touches.size(); ++j) seen |= touches[j].label == k;
        if (!seen) touches.push_back({x, k});
    }
}

}  // namespace

// Why per boundary run and per column: the patches of neighbouring boundary
// pixels of a row overlap in all but one column, so for each run of boundary
// pixels and each candidate it touches, the per-column mismatch counts
// (in candidate XOR occluding) over the patch's rows are computed once and
// every pixel's patch sum is a difference of their prefix sums. Along a
// horizontal contour this reads each pixel P times instead of P*P times; a
// single touching pixel costs the same P*P as the direct sum.
std::vector<ContourMeasures> measure_contours(const std::int32_t* labels, const std::uint8_t* non_boundary,
                                              const std::uint8_t* occluding, std::int64_t height,
                                              std::int64_t width, int patch, std::int32_t count) {
    std::vector<ContourMeasures> out(static_cast<std::size_t>(count) + 1);  // index = label
    if (count == 0) return out;
    const std::int64_t r = patch / 2;
    std::vector<Touch> touches;
    std::vector<std::int32_t> run_labels;
    std::vector<std::int32_t> column, prefix;

    for (std::int64_t y = 0; y < height; ++y) {
        const std::uint8_t* nb_row = non_boundary + y * width;
        const std::int64_t y0 = std::max<std::int64_t>(0, y - r), y1 = std::min(height - 1, y + r);
        std::int64_t x = 0;
        while (x < width) {
            // The next run [bx0, bx1) of boundary pixels in this row.
            const void* start = std::memchr(nb_row + x, 0, static_cast<std::size_t>(width - x));
            if (!start) break;
            const std::int64_t bx0 = static_cast<const std::uint8_t*>(start) - nb_row;
            const void* stop = std::memchr(nb_row + bx0, 1, static_cast<std::size_t>(width - bx0));
            const std::int64_t bx1 = stop ? static_cast<const std::uint8_t*>(stop) - nb_row : width;
            x = bx1;

            touches.clear();
            for (std::int64_t bx = bx0; bx < bx1; ++bx) collect_touches(labels, height, width, bx, y, touches);
            if (touches.empty()) continue;
            run_labels.clear();
            for (const Touch& t : touches)
                if (std::find(run_labels.begin(), run_labels.end(), t.label) == run_labels.end())
                    run_labels.push_back(t.label);

            for (const std::int32_t k : run_labels) {
                // Columns any patch of a pixel touching k reaches, clipped to the image.
                std::int64_t first = width, last = -1;
                for (const Touch& t : touches)
                    if (t.label == k) {
                        first = std::min(first, t.x);
                        last = std::max(last, t.x);
                    }
                const std::int64_t c0 = std::max<std::int64_t>(0, first - r);
                const std::int64_t c1 = std::min(width - 1, last + r);
                const std::int64_t n_cols = c1 - c0 + 1;
                column.assign(static_cast<std::size_t>(n_cols), 0);
                for (std::int64_t yy = y0; yy <= y1; ++yy) {
                    const std::int32_t* lr = labels + yy * width + c0;
                    const std::uint8_t* orow = occluding + yy * width + c0;
                    std::int32_t* col = column.data();
                    for (std::int64_t c = 0; c < n_cols; ++c) col[c] += static_cast<std::int32_t>(lr[c] == k) ^ orow[c];
                }
                prefix.assign(static_cast<std::size_t>(n_cols) + 1, 0);
                for (std::int64_t c = 0; c < n_cols; ++c) prefix[c + 1] = prefix[c] + column[c];

                ContourMeasures& m = out[k];
                for (const Touch& t : touches) {
                    if (t.label != k) continue;
                    // Patch clipped to the image: only in-image pixels count.
                    const std::int64_t a = std::max<std::int64_t>(0, t.x - r), b = std::min(width - 1, t.x + r);
                    const std::int64_t mismatches = prefix[b - c0 + 1] - prefix[a - c0];
                    const double n_patch = static_cast<double>((y1 - y0 + 1) * (b - a + 1));
                    m.contour_length += 1;
                    m.s1_sum += (n_patch - static_cast<double>(mismatches)) / n_patch;
                }
            }
        }
    }
    return out;
}

}  // namespace binpick
