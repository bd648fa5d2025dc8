// GPU twin of the CPU hot path: maps on the device in, compact ranked candidates out.
//
// The labelling, statistics, XNOR contour score, area filter, scores and sort all run on
// the GPU; the host receives one small block of per-candidate records (raw integer sums,
// so the host derives centroids and moments with the CPU path's own arithmetic) and the
// best candidate's bounding-box crop of the label image for the grasp refinement.
#pragma once

#include <cuda_runtime_api.h>

#include <cstddef>
#include <cstdint>
#include <vector>

#include "pixel_ops.cuh"

namespace binpick_cuda {

// One ranked candidate, as copied back to the host. Plain old data with a fixed layout:
// the Python wrapper views the bytes through a numpy dtype with the same offsets.
struct CandidateRecord {
    int32_t label;         // 1-based, raster order of the component's first pixel
    int32_t min_x;
    int32_t min_y;
    int32_t max_x;
    int32_t max_y;
    uint32_t contour;      // boundary pixels touching the component (4-neighbourhood)
    uint64_t area;
    uint64_t sum_x;
    uint64_t sum_y;
    uint64_t sum_xx;
    uint64_t sum_xy;
    uint64_t sum_yy;
    uint64_t xnor_agree;   // sum over those boundary pixels of the XNOR patch counts
    double s1;
    double s2;
    double score;
};
static_assert(sizeof(CandidateRecord) == 104, "record layout is mirrored in edge/postprocess_cuda.py");

struct RankParams {
    float alpha = 0.1f;
    float beta = 0.1f;
    uint64_t min_area_px = 0;    // inclusive, already converted from a fraction by the caller
    uint64_t max_area_px = 0;    // inclusive
    int patch = 9;               // odd
    double w1 = 1.0;
    double w2 = 1.0;
};

struct RankOutput {
    int64_t n_components = 0;             // before the area filter
    std::vector<CandidateRecord> ranked;  // kept candidates, best first
    std::vector<int32_t> best_crop;       // labels inside the best candidate's bbox (row-major)
    int32_t crop_width = 0;
    int32_t crop_height = 0;
    std::vector<int32_t> labels;          // H*W, only when requested
    float device_ms = 0.0f;               // GPU time of the whole call (events)
};

// Owns the device workspace for one GPU and reuses it between calls (no cudaMalloc on
// the hot path once the largest image size has been seen).
class CudaRanker {
public:
    explicit CudaRanker(int device);
    ~CudaRanker();
    CudaRanker(const CudaRanker&) = delete;
    CudaRanker& operator=(const CudaRanker&) = delete;

    // Maps already on this device (any strides). Runs on `stream` (0 = legacy default).
    RankOutput rank(const MapView& y, const MapView& z, int height, int width, const RankParams& params,
                    cudaStream_t stream, bool want_labels);

    // Host maps (contiguous, row-major): copied into a device staging buffer first.
    RankOutput rank_host(const void* y, const void* z, MapDtype y_dtype, MapDtype z_dtype, int height,
                         int width, const RankParams& params, cudaStream_t stream, bool want_labels);

    int device() const { return device_; }

private:
    void reserve(int64_t pixels);
    void release();

    int device_;
    int64_t capacity_ = 0;   // pixels
    int64_t comp_capacity_ = 0;
    // Per pixel.
    int32_t* parent_ = nullptr;   // union-find forest, -1 on boundary pixels
    int32_t* labels_ = nullptr;   // 0 = boundary, 1..n
    int32_t* is_root_ = nullptr;  // scan input, then reused
    int32_t* dense_ = nullptr;    // exclusive scan of is_root_
    uint8_t* flags_ = nullptr;    // bit 0: boundary (Y > alpha), bit 1: occluded (Z > beta)
    void* staging_ = nullptr;     // host maps land here: 2 * capacity floats
    // Per component.
    unsigned long long* area_ = nullptr;
    unsigned long long* sum_x_ = nullptr;
    unsigned long long* sum_y_ = nullptr;
    unsigned long long* sum_xx_ = nullptr;
    unsigned long long* sum_xy_ = nullptr;
    unsigned long long* sum_yy_ = nullptr;
    unsigned long long* xnor_ = nullptr;
    unsigned int* contour_ = nullptr;
    int* min_x_ = nullptr;
    int* min_y_ = nullptr;
    int* max_x_ = nullptr;
    int* max_y_ = nullptr;
    double* s1_ = nullptr;
    double* s2_ = nullptr;
    double* keys_in_ = nullptr;
    double* keys_out_ = nullptr;
    int32_t* ids_in_ = nullptr;
    int32_t* ids_out_ = nullptr;
    CandidateRecord* records_ = nullptr;
    // Scalars: [0] components, [1] kept, [2..3] max kept area (u64).
    unsigned long long* scalars_ = nullptr;
    void* cub_temp_ = nullptr;
    size_t cub_temp_bytes_ = 0;
    // Pinned host mirror of the scalars and the first records.
    unsigned long long* host_scalars_ = nullptr;
    CandidateRecord* host_records_ = nullptr;
    cudaEvent_t start_ = nullptr;
    cudaEvent_t stop_ = nullptr;
};

// Number of records copied back together with the header in the first transfer.
constexpr int kRecordsInFirstCopy = 256;

}  // namespace binpick_cuda
