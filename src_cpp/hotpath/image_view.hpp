// A read-only view of a 2-D image with arbitrary (possibly negative) byte strides.
//
// Why: NumPy hands us views (crops, transposes, channel slices) without copying;
// reading them through their strides avoids a contiguous copy per frame.
#pragma once

#include <cstddef>
#include <cstdint>

namespace binpick {

template <typename T>
struct StridedView {
    const char* data = nullptr;  // address of element (0, 0)
    std::int64_t height = 0;
    std::int64_t width = 0;
    std::int64_t row_stride = 0;  // bytes between rows
    std::int64_t col_stride = 0;  // bytes between columns

    const T* row(std::int64_t y) const { return reinterpret_cast<const T*>(data + y * row_stride); }
    T at(std::int64_t y, std::int64_t x) const {
        return *reinterpret_cast<const T*>(data + y * row_stride + x * col_stride);
    }
    bool row_contiguous() const { return col_stride == static_cast<std::int64_t>(sizeof(T)); }
};

}  // namespace binpick
