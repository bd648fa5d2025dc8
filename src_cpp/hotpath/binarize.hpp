// Thresholding of the network's probability maps into 0/1 byte masks.
//
// Why a separate pass: the maps arrive as float32 or uint8 with any strides;
// converting once into contiguous masks lets every later stage (labelling,
// patch scoring) run over plain bytes.
//
// Convention (the same as edge.postprocess.binarise): the value is promoted
// to float64 and compared with the float64 threshold; uint8 maps hold
// probability*255, so their threshold is t*255. NaN compares false, so a NaN
// boundary pixel is a boundary (not "<= alpha") and a NaN occlusion pixel is
// not occluding (not "> beta").
#pragma once

#include <cmath>
#include <cstdint>
#include <limits>

#include "image_view.hpp"

namespace binpick {

// Why not compare in double per pixel: it halves the SIMD width. These
// rewrite the float64 comparison into an exactly equivalent one on the map's
// own type.
//
// For a float32 value v and a float64 threshold t: v <= t  <=>  v <= t_down,
// where t_down is the largest float32 not above t (v is a float32 itself); and
// v > t <=> v > t_down for every non-NaN v (NaN fails both, as in float64).
inline float float_at_or_below(double t) {
    float f = static_cast<float>(t);
    if (static_cast<double>(f) > t) f = std::nextafter(f, -std::numeric_limits<float>::infinity());
    return f;
}

// mask[y*w+x] = 1 where (double)value <= threshold (NaN -> 0), or > threshold when `above`.
inline void threshold_map(const StridedView<float>& img, double threshold, bool above, std::uint8_t* mask) {
    const float t = float_at_or_below(threshold);
    const std::int64_t w = img.width;
    for (std::int64_t y = 0; y < img.height; ++y) {
        std::uint8_t* out = mask + y * w;
        if (img.row_contiguous()) {
            const float* in = img.row(y);
            if (above)
                for (std::int64_t x = 0; x < w; ++x) out[x] = in[x] > t;
            else
                for (std::int64_t x = 0; x < w; ++x) out[x] = in[x] <= t;
        } else {
            for (std::int64_t x = 0; x < w; ++x) {
                const float v = img.at(y, x);
                out[x] = above ? v > t : v <= t;
            }
        }
    }
}

// uint8 maps: a 256-entry table holds the float64 comparison for every value.
inline void threshold_map(const StridedView<std::uint8_t>& img, double threshold, bool above,
                          std::uint8_t* mask) {
    std::uint8_t table[256];
    for (int v = 0; v < 256; ++v) {
        const bool at_most = static_cast<double>(v) <= threshold;
        table[v] = above ? !at_most : at_most;
    }
    const std::int64_t w = img.width;
    for (std::int64_t y = 0; y < img.height; ++y) {
        std::uint8_t* out = mask + y * w;
        if (img.row_contiguous()) {
            const std::uint8_t* in = img.row(y);
            for (std::int64_t x = 0; x < w; ++x) out[x] = table[in[x]];
        } else {
            for (std::int64_t x = 0; x < w; ++x) out[x] = table[img.at(y, x)];
        }
    }
}

}  // namespace binpick
