// Thresholding of the network's probability maps into 0/1 byte masks.
//
// Why a separate pass: the maps arrive as float32 or uint8 with any strides;
// converting once into contiguous masks lets every later stage (labelling,
// patch scoring) run over plain bytes.
//
// Convention (shared with edge/postprocess_reference.py): the value is promoted
// to float64 and compared with the float64 threshold; uint8 maps hold
// probability*255, so their threshold is t*255. NaN compares false, so a NaN
// boundary pixel is a boundary (not "<= alpha") and a NaN occlusion pixel is
// not occluding (not "> beta").
#pragma once

#include <cstdint>
#include <vector>

#include "image_view.hpp"

namespace binpick {

// mask[y*w+x] = 1 where value <= threshold (NaN -> 0).
template <typename T>
void threshold_at_most(const StridedView<T>& img, double threshold, std::uint8_t* mask) {
    const std::int64_t w = img.width;
    for (std::int64_t y = 0; y < img.height; ++y) {
        std::uint8_t* out = mask + y * w;
        if (img.row_contiguous()) {
            const T* in = img.row(y);
            for (std::int64_t x = 0; x < w; ++x) out[x] = static_cast<double>(in[x]) <= threshold;
        } else {
            for (std::int64_t x = 0; x < w; ++x) out[x] = static_cast<double>(img.at(y, x)) <= threshold;
        }
    }
}

// mask[y*w+x] = 1 where value > threshold (NaN -> 0).
template <typename T>
void threshold_above(const StridedView<T>& img, double threshold, std::uint8_t* mask) {
    const std::int64_t w = img.width;
    for (std::int64_t y = 0; y < img.height; ++y) {
        std::uint8_t* out = mask + y * w;
        if (img.row_contiguous()) {
            const T* in = img.row(y);
            for (std::int64_t x = 0; x < w; ++x) out[x] = static_cast<double>(in[x]) > threshold;
        } else {
            for (std::int64_t x = 0; x < w; ++x) out[x] = static_cast<double>(img.at(y, x)) > threshold;
        }
    }
}

}  // namespace binpick
