// 4-connected component labelling of a 0/1 mask, with per-component statistics
// gathered in the same pass.
//
// Why run-based: statistics (area, bbox, first and second moments) have closed
// forms over a horizontal run, so they are accumulated once per run instead of
// once per pixel, and no second scan per component is ever needed. This is
// where OpenCV's connectedComponentsWithStats spends most of its time.
#pragma once

#include <cstdint>
#include <vector>

namespace binpick {

// An integer wide enough for the second moments of any image the ranking takes.
#if defined(__SIZEOF_INT128__)
using wide_int = __int128;
#else
using wide_int = long double;  // 64-bit mantissa: exact up to ~2048x2048 components
#endif

// Sizes: an image has at most 2^31 - 1 pixels (kMaxPixels), so a first moment is below 2^62; a
// second moment is not (a 1 x 2,000,000 row's sum of x^2 is 2.7e18, a 3,100,000 x 1 column's
// sum of y^2 9.9e18, past int64, and a run's closed form multiplies three coordinates), so those
// are wide integers.
struct ComponentStats {
    std::int64_t area = 0;
    std::int64_t sum_x = 0, sum_y = 0;        // first moments (x = column, y = row)
    wide_int sum_xx = 0, sum_yy = 0, sum_xy = 0;  // raw second moments
    std::int32_t min_x = 0, max_x = 0, min_y = 0, max_y = 0;  // inclusive bounding box
};

struct Run {
    std::int32_t y, x0, x1;  // pixels [x0, x1) of row y
    std::int32_t label;      // provisional label, then final label (0 = dropped)
};

struct Components {
    std::vector<Run> runs;                  // every foreground run, raster order
    std::vector<ComponentStats> stats;      // per component, index = component id - 1
};

// Labels the foreground (mask == 1) of a contiguous h x w mask. Components are
// numbered 1..N in raster order of their first pixel; `runs[i].label` holds the
// component of each run.
Components label_components(const std::uint8_t* mask, std::int64_t height, std::int64_t width);

// Writes `labels` (h x w int32, contiguous, 0 elsewhere) from the runs, mapping
// each component id c to new_id[c] (0 drops it).
void paint_labels(const Components& comps, const std::vector<std::int32_t>& new_id, std::int64_t height,
                  std::int64_t width, std::int32_t* labels);

}  // namespace binpick
