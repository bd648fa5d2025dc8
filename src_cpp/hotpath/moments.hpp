// Principal orientation of a component from its exact integer moments.
//
// Why integers: central moments scaled by the area, n*sum_xx - sum_x^2, are
// exact integers; computing them exactly (128-bit) and rounding once makes the
// angle of symmetric shapes (discs, squares: M11 = 0 and M20 = M02 exactly)
// reproducible across implementations instead of atan2 of rounding noise.
#pragma once

#include <cmath>
#include <cstdint>
#include <vector>

#include "connected_components.hpp"  // ComponentStats, wide_int

namespace binpick {

// One pi for every angle of the hot path (the CPU ranking and the CUDA path's host end).
inline constexpr double kPi = 3.14159265358979323846;

// Angle in radians of the major axis from the image +x (column) axis towards
// +y (row, downwards), in (-pi/2, pi/2]; 0 for isotropic shapes.
inline double principal_angle(const ComponentStats& s) {
    const wide_int n = s.area;
    const wide_int m20 = n * s.sum_xx - static_cast<wide_int>(s.sum_x) * s.sum_x;
    const wide_int m02 = n * s.sum_yy - static_cast<wide_int>(s.sum_y) * s.sum_y;
    const wide_int m11 = n * s.sum_xy - static_cast<wide_int>(s.sum_x) * s.sum_y;
    const double num = static_cast<double>(2 * m11);
    const double den = static_cast<double>(m20 - m02);
    return 0.5 * std::atan2(num, den);
}

struct AxisExtents {
    double min_a = 0, max_a = 0, min_b = 0, max_b = 0;  // projections on major (a) and minor (b) axes
    bool empty = true;
};

// Extents of each kept component along its principal axes, from the runs alone:
// a projection is linear along a run, so its extremes over a component are at
// run end points. `new_id` maps component ids to kept labels 1..count (0 = dropped);
// `angle_rad[i]` is the angle of label i+1. Result index = label.
inline std::vector<AxisExtents> axis_extents(const Components& comps, const std::vector<std::int32_t>& new_id,
                                             const std::vector<double>& angle_rad) {
    std::vector<AxisExtents> out(angle_rad.size() + 1);
    std::vector<double> c(angle_rad.size() + 1), s(angle_rad.size() + 1);
    for (std::size_t i = 0; i < angle_rad.size(); ++i) {
        c[i + 1] = std::cos(angle_rad[i]);
        s[i + 1] = std::sin(angle_rad[i]);
    }
    for (const Run& r : comps.runs) {
        const std::int32_t k = new_id[r.label];
        if (k == 0) continue;
        AxisExtents& e = out[k];
        const double y = r.y;
        for (const double x : {static_cast<double>(r.x0), static_cast<double>(r.x1 - 1)}) {
            const double a = x * c[k] + y * s[k];
            const double b = -x * s[k] + y * c[k];
            if (e.empty) {
                e = {a, a, b, b, false};
                continue;
            }
            e.min_a = a < e.min_a ? a : e.min_a;
            e.max_a = a > e.max_a ? a : e.max_a;
            e.min_b = b < e.min_b ? b : e.min_b;
            e.max_b = b > e.max_b ? b : e.max_b;
        }
    }
    return out;
}

}  // namespace binpick
