// Principal orientation of a component from its exact integer moments.
//
// Why integers: central moments scaled by the area, n*sum_xx - sum_x^2, are
// exact integers; computing them exactly (128-bit) and rounding once makes the
// angle of symmetric shapes (discs, squares: M11 = 0 and M20 = M02 exactly)
// reproducible across implementations instead of atan2 of rounding noise.
#pragma once

#include <cmath>
#include <cstdint>

#include "connected_components.hpp"

namespace binpick {

#if defined(__SIZEOF_INT128__)
using wide_int = __int128;
#else
using wide_int = long double;  // 64-bit mantissa: exact up to ~2048x2048 components
#endif

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

}  // namespace binpick
