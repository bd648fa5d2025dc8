#include "contour_score.hpp"

#include <algorithm>
#include <cmath>

namespace binpick {
namespace {

struct Axes {
    double c, s;
};

inline void extend(ContourMeasures& m, const Axes& ax, std::int64_t x, std::int64_t y) {
    const double a = static_cast<double>(x) * ax.c + static_cast<double>(y) * ax.s;
    const double b = -static_cast<double>(x) * ax.s + static_cast<double>(y) * ax.c;
    if (!m.has_extent) {
        m.min_a = m.max_a = a;
        m.min_b = m.max_b = b;
        m.has_extent = true;
        return;
    }
    m.min_a = std::min(m.min_a, a);
    m.max_a = std::max(m.max_a, a);
    m.min_b = std::min(m.min_b, b);
    m.max_b = std::max(m.max_b, b);
}

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

}  // namespace

std::vector<ContourMeasures> measure_contours(const std::int32_t* labels, const std::uint8_t* non_boundary,
                                              const std::uint8_t* occluding, std::int64_t height,
                                              std::int64_t width, int patch, std::int32_t count,
                                              const std::vector<double>& angle_rad) {
    std::vector<ContourMeasures> out(static_cast<std::size_t>(count) + 1);  // index = label
    if (count == 0) return out;
    std::vector<Axes> axes(static_cast<std::size_t>(count) + 1);
    for (std::int32_t k = 1; k <= count; ++k) axes[k] = {std::cos(angle_rad[k - 1]), std::sin(angle_rad[k - 1])};
    const std::int64_t r = patch / 2;

    for (std::int64_t y = 0; y < height; ++y) {
        const std::uint8_t* nb_row = non_boundary + y * width;
        const std::int32_t* lab = labels + y * width;
        for (std::int64_t x = 0; x < width; ++x) {
            if (nb_row[x]) continue;  // only boundary pixels carry contour terms
            // Up to four distinct candidates touch this boundary pixel.
            std::int32_t touching[4];
            int n_touching = 0;
            std::int64_t nx[4], ny[4];
            int n_nb = 0;
            if (x > 0) { nx[n_nb] = x - 1; ny[n_nb++] = y; }
            if (x + 1 < width) { nx[n_nb] = x + 1; ny[n_nb++] = y; }
            if (y > 0) { nx[n_nb] = x; ny[n_nb++] = y - 1; }
            if (y + 1 < height) { nx[n_nb] = x; ny[n_nb++] = y + 1; }
            for (int i = 0; i < n_nb; ++i) {
                const std::int32_t k = labels[ny[i] * width + nx[i]];
                if (k == 0) continue;
                extend(out[k], axes[k], nx[i], ny[i]);
                bool seen = false;
                for (int j = 0; j < n_touching; ++j) seen |= touching[j] == k;
                if (!seen) touching[n_touching++] = k;
            }
            if (n_touching == 0) continue;
            (void)lab;
            // Patch clipped to the image: only in-image pixels count.
            const std::int64_t y0 = std::max<std::int64_t>(0, y - r), y1 = std::min(height - 1, y + r);
            const std::int64_t x0 = std::max<std::int64_t>(0, x - r), x1 = std::min(width - 1, x + r);
            const double n_patch = static_cast<double>((y1 - y0 + 1) * (x1 - x0 + 1));
            for (int j = 0; j < n_touching; ++j) {
                const std::int32_t k = touching[j];
                const std::int64_t mism = patch_mismatches(labels, occluding, width, y0, y1, x0, x1, k);
                ContourMeasures& m = out[k];
                m.contour_length += 1;
                m.s1_sum += (n_patch - static_cast<double>(mism)) / n_patch;
            }
        }
    }

    // Candidate pixels on the image edge are contour pixels too (for extents).
    auto edge_pixel = [&](std::int64_t x, std::int64_t y) {
        const std::int32_t k = labels[y * width + x];
        if (k != 0) extend(out[k], axes[k], x, y);
    };
    for (std::int64_t x = 0; x < width; ++x) {
        edge_pixel(x, 0);
        edge_pixel(x, height - 1);
    }
    for (std::int64_t y = 0; y < height; ++y) {
        edge_pixel(0, y);
        edge_pixel(width - 1, y);
    }
    return out;
}

}  // namespace binpick
