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

#if defined(__SSE2__)
#include <emmintrin.h>
#endif

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

// One contiguous row: out[x] = in[x] > t (Above) or in[x] <= t, NaN -> 0 either way.
//
// Why by hand on x86: compilers vectorise this with a shuffle chain per 16 floats, or not at all
// when the byte output may alias the input; SSE2 (every x86-64 CPU) compares 4 floats and packs
// 16 results into bytes in 13 instructions. The ordered comparisons are false for NaN, as the
// scalar ones are, so both give the same bytes. Elsewhere (the aarch64 appliance) the
// restrict-qualified loop lets the compiler vectorise.
template <bool Above>
inline void threshold_row(const float* __restrict in, std::uint8_t* __restrict out, std::int64_t w, float t) {
    std::int64_t x = 0;
#if defined(__SSE2__)
    const __m128 tv = _mm_set1_ps(t);
    const __m128i one = _mm_set1_epi8(1);
    auto cmp = [&tv](const float* p) {
        const __m128 v = _mm_loadu_ps(p);
        return _mm_castps_si128(Above ? _mm_cmpgt_ps(v, tv) : _mm_cmple_ps(v, tv));
    };
    for (; x + 16 <= w; x += 16) {
        // All-ones / zero 32-bit lanes stay -1 / 0 through the signed saturating packs.
        const __m128i lo = _mm_packs_epi32(cmp(in + x), cmp(in + x + 4));
        const __m128i hi = _mm_packs_epi32(cmp(in + x + 8), cmp(in + x + 12));
        _mm_storeu_si128(reinterpret_cast<__m128i*>(out + x), _mm_and_si128(_mm_packs_epi16(lo, hi), one));
    }
#endif
    for (; x < w; ++x) out[x] = Above ? in[x] > t : in[x] <= t;
}

// mask[y*w+x] = 1 where (double)value <= threshold (NaN -> 0), or > threshold when `above`.
inline void threshold_map(const StridedView<float>& img, double threshold, bool above, std::uint8_t* mask) {
    const float t = float_at_or_below(threshold);
    const std::int64_t w = img.width;
    for (std::int64_t y = 0; y < img.height; ++y) {
        std::uint8_t* out = mask + y * w;
        if (img.row_contiguous()) {
            if (above)
                threshold_row<true>(img.row(y), out, w, t);
            else
                threshold_row<false>(img.row(y), out, w, t);
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
