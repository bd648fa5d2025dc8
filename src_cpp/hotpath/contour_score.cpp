#include "contour_score.hpp"

#include <algorithm>
#include <cmath>
#include <cstring>

namespace binpick {
namespace {

// Number of patch pixels where "in candidate k" differs from "occluding".
inline std::int64_t patch_mismatches(const std::int32_t* labels, const std::uint8_t* occluding,
                                     std::int64_t width, std::int64_t y0, std::int64_t y1, std::int64_t x0,
                                     std::int64_t x1, std::int32_t k) {
    std::int64_t mismatches = 0;
    for (std::int64_t y = y0; y <= y1; ++y) {
        const std::int32_t* lr = labels + y * width;
        const std::uint8_t* orow = occluding + y * width;
        int row_count = 0;
        for (std::int64_t x = x0; x <= x1; ++x) row_count += static_cast<int>(lr[x] == k) ^ orow[x];
        mismatches += row_count;
    }
    return mismatches;
}

// The default 9x9 patch away from the image border, with the size known at
// compile time so the loops unroll (about twice as fast as the generic loop).
template <int P>
inline std::int64_t patch_mismatches_fixed(const std::int32_t* labels, const std::uint8_t* occluding,
                                           std::int64_t width, std::int64_t y0, std::int64_t x0,
                                           std::int32_t k) {
    int mismatches = 0;
    for (int dy = 0; dy < P; ++dy) {
        const std::int32_t* lr = labels + (y0 + dy) * width + x0;
        const std::uint8_t* orow = occluding + (y0 + dy) * width + x0;
        for (int dx = 0; dx < P; ++dx) mismatches += static_cast<int>(lr[dx] == k) ^ orow[dx];
    }
    return mismatches;
}

}  // namespace

std::vector<ContourMeasures> measure_contours(const std::int32_t* labels, const std::uint8_t* non_boundary,
                                              const std::uint8_t* occluding, std::int64_t height,
                                              std::int64_t width, int patch, std::int32_t count) {
    std::vector<ContourMeasures> out(static_cast<std::size_t>(count) + 1);  // index = label
    if (count == 0) return out;
    const std::int64_t r = patch / 2;

    for (std::int64_t y = 0; y < height; ++y) {
        const std::uint8_t* nb_row = non_boundary + y * width;
        for (std::int64_t x = 0; x < width; ++x) {
            // Only boundary pixels carry contour terms; jump to the next one.
            const void* next = std::memchr(nb_row + x, 0, static_cast<std::size_t>(width - x));
            if (!next) break;
            x = static_cast<const std::uint8_t*>(next) - nb_row;
            // Up to four distinct candidates touch this boundary pixel (0 = none / outside the image).
            const std::int32_t* at = labels + y * width + x;
            const std::int32_t around[4] = {x > 0 ? at[-1] : 0, x + 1 < width ? at[1] : 0,
                                            y > 0 ? at[-width] : 0, y + 1 < height ? at[width] : 0};
            std::int32_t touching[4];
            int n_touching = 0;
            for (const std::int32_t k : around) {
                if (k == 0) continue;
                bool seen = false;
                for (int j = 0; j < n_touching; ++j) seen |= touching[j] == k;
                if (!seen) touching[n_touching++] = k;
            }
            if (n_touching == 0) continue;
            // Patch clipped to the image: only in-image pixels count.
            const std::int64_t y0 = std::max<std::int64_t>(0, y - r), y1 = std::min(height - 1, y + r);
            const std::int64_t x0 = std::max<std::int64_t>(0, x - r), x1 = std::min(width - 1, x + r);
            const double n_patch = static_cast<double>((y1 - y0 + 1) * (x1 - x0 + 1));
            for (int j = 0; j < n_touching; ++j) {
                const std::int32_t k = touching[j];
                const bool interior = patch == 9 && y1 - y0 == 8 && x1 - x0 == 8;
                const std::int64_t mism = interior
                                              ? patch_mismatches_fixed<9>(labels, occluding, width, y0, x0, k)
                                              : patch_mismatches(labels, occluding, width, y0, y1, x0, x1, k);
                ContourMeasures& m = out[k];
                m.contour_length += 1;
                m.s1_sum += (n_patch - static_cast<double>(mism)) / n_patch;
            }
        }
    }

    return out;
}

}  // namespace binpick
