#include "connected_components.hpp"

#include <algorithm>
#include <cstring>

namespace binpick {
namespace {

std::int32_t find_root(std::vector<std::int32_t>& parent, std::int32_t a) {
    std::int32_t root = a;
    while (parent[root] != root) root = parent[root];
    while (parent[a] != root) {  // path compression
        const std::int32_t next = parent[a];
        parent[a] = root;
        a = next;
    }
    return root;
}

// The smaller label becomes the root, so a root is always the provisional
// label created first, i.e. the component's first run in raster order.
void unite(std::vector<std::int32_t>& parent, std::int32_t a, std::int32_t b) {
    a = find_root(parent, a);
    b = find_root(parent, b);
    if (a == b) return;
    if (a < b)
        parent[b] = a;
    else
        parent[a] = b;
}

// The product of two int64 values, exactly (one widening multiplication).
inline wide_int wide_mul(std::int64_t a, std::int64_t b) { return static_cast<wide_int>(a) * b; }

// Sum of the integers 0..m (m >= -1) and of their squares, as closed forms. m < 2^31: the first
// fits an int64, the second, m(m+1)(2m+1)/6, does not; it is divided by 3 in int64 before the
// one wide multiplication (m(m+1)/2 or 2m+1 is a multiple of 3), not as a wide division.
inline std::int64_t sum_to(std::int64_t m) { return m * (m + 1) / 2; }
inline wide_int sum_sq_to(std::int64_t m) {
    const std::int64_t half = sum_to(m), odd = 2 * m + 1;
    return half % 3 == 0 ? wide_mul(half / 3, odd) : wide_mul(half, odd / 3);
}

void add_run(ComponentStats& s, const Run& r) {
    const std::int64_t n = r.x1 - r.x0;
    const std::int64_t sx = sum_to(r.x1 - 1) - sum_to(r.x0 - 1);
    const wide_int sxx = sum_sq_to(r.x1 - 1) - sum_sq_to(r.x0 - 1);
    const std::int64_t y = r.y;
    if (s.area == 0) {
        s.min_x = r.x0;
        s.max_x = r.x1 - 1;
        s.min_y = s.max_y = r.y;
    } else {
        s.min_x = std::min(s.min_x, r.x0);
        s.max_x = std::max(s.max_x, r.x1 - 1);
        s.min_y = std::min(s.min_y, r.y);
        s.max_y = std::max(s.max_y, r.y);
    }
    s.area += n;
    s.sum_x += sx;
    s.sum_y += n * y;
    s.sum_xx += sxx;
    s.sum_yy += wide_mul(n * y, y);  // n * y < 2^62
    s.sum_xy += wide_mul(y, sx);
}

void merge_into(ComponentStats& dst, const ComponentStats& src) {
    dst.area += src.area;
    dst.sum_x += src.sum_x;
    dst.sum_y += src.sum_y;
    dst.sum_xx += src.sum_xx;
    dst.sum_yy += src.sum_yy;
    dst.sum_xy += src.sum_xy;
    dst.min_x = std::min(dst.min_x, src.min_x);
    dst.max_x = std::max(dst.max_x, src.max_x);
    dst.min_y = std::min(dst.min_y, src.min_y);
    dst.max_y = std::max(dst.max_y, src.max_y);
}

}  // namespace

Components label_components(const std::uint8_t* mask, std::int64_t height, std::int64_t width) {
    Components out;
    // Provisional label 0 is reserved for "none yet".
    std::vector<std::int32_t> parent{0};
    std::vector<ComponentStats> prov_stats(1);
    out.runs.reserve(static_cast<std::size_t>(height) * 8);

    std::size_t prev_begin = 0, prev_end = 0;  // runs of the previous row
    for (std::int64_t y = 0; y < height; ++y) {
        const std::uint8_t* row = mask + y * width;
        const std::size_t row_begin = out.runs.size();
        std::size_t p = prev_begin;  // first previous-row run that may still overlap
        std::int64_t x = 0;
        while (x < width) {
            // Skip background bytes, then measure the foreground run.
            const void* hit = std::memchr(row + x, 1, static_cast<std::size_t>(width - x));
            if (!hit) break;
            const std::int64_t x0 = static_cast<const std::uint8_t*>(hit) - row;
            const void* miss = std::memchr(row + x0, 0, static_cast<std::size_t>(width - x0));
            const std::int64_t x1 = miss ? static_cast<const std::uint8_t*>(miss) - row : width;
            x = x1;

            std::int32_t label = 0;
            // 4-connectivity: a previous run [a, b) touches [x0, x1) iff a < x1 and b > x0.
            while (p < prev_end && out.runs[p].x1 <= x0) ++p;
            for (std::size_t q = p; q < prev_end && out.runs[q].x0 < x1; ++q) {
                if (label == 0)
                    label = out.runs[q].label;
                else
                    unite(parent, label, out.runs[q].label);
            }
            if (label == 0) {
                label = static_cast<std::int32_t>(parent.size());
                parent.push_back(label);
                prov_stats.emplace_back();
            }
            // Runs ending before x1 cannot touch the next run of this row (it starts after x1).
            while (p < prev_end && out.runs[p].x1 <= x1) ++p;
            Run r{static_cast<std::int32_t>(y), static_cast<std::int32_t>(x0), static_cast<std::int32_t>(x1),
                  label};
            add_run(prov_stats[label], r);
            out.runs.push_back(r);
        }
        prev_begin = row_begin;
        prev_end = out.runs.size();
    }

    // Resolve provisional labels to components numbered in raster order of the
    // first pixel (roots are the smallest provisional label of their set).
    std::vector<std::int32_t> final_id(parent.size(), 0);
    for (std::size_t i = 1; i < parent.size(); ++i) {
        const std::int32_t root = find_root(parent, static_cast<std::int32_t>(i));
        if (root == static_cast<std::int32_t>(i)) {
            out.stats.push_back(prov_stats[i]);
            final_id[i] = static_cast<std::int32_t>(out.stats.size());
        } else {
            merge_into(out.stats[final_id[root] - 1], prov_stats[i]);
            final_id[i] = final_id[root];
        }
    }
    for (Run& r : out.runs) r.label = final_id[r.label];
    return out;
}

void paint_labels(const Components& comps, const std::vector<std::int32_t>& new_id, std::int64_t height,
                  std::int64_t width, std::int32_t* labels) {
    // Every pixel written once: gaps between runs get 0 as the runs are painted (raster order).
    std::int64_t cursor = 0;  // next unwritten pixel, flat index
    for (const Run& r : comps.runs) {
        const std::int64_t start = static_cast<std::int64_t>(r.y) * width + r.x0;
        const std::int64_t stop = static_cast<std::int64_t>(r.y) * width + r.x1;
        std::fill(labels + cursor, labels + start, 0);
        std::fill(labels + start, labels + stop, new_id[r.label]);
        cursor = stop;
    }
    std::fill(labels + cursor, labels + height * width, 0);
}

}  // namespace binpick
