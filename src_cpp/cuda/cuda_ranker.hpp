// GPU twin of the CPU hot path: maps on the device in, the CPU path's RankingResult out.
//
// Labelling, statistics, contour terms, extents, area filter, scores and both sorts run
// on the GPU, and so does the grasp's distance transform (by the CPU path's own geometry,
// hotpath/grasp_geometry.hpp); after reading the counts, the host receives in one copy the
// counts, the grasp's two facts and the per-candidate records, and finishes with the CPU path's own code (principal
// angle from exact integer moments, binpick::grasp_result), so the result equals
// `binpick::rank_candidates`'.
#pragma once

#include <cuda_runtime_api.h>

#include <cstddef>
#include <cstdint>
#include <vector>

#include "hotpath/ranking.hpp"
#include "pixel_ops.cuh"
#include "ranking_records.hpp"

namespace binpick_cuda {

struct CudaRankOutput {
    binpick::RankingResult result;
    int64_t n_components = 0;  // before the area filter
    float device_ms = 0.0f;    // GPU time from the first kernel to the last copy (events)
};

// Owns the device workspace for one GPU and reuses it between calls (no cudaMalloc on
// the hot path once the largest image size has been seen). Not thread-safe: one call
// at a time per instance (the Python wrapper holds a lock).
class CudaRanker {
public:
    // graph_mode: capture the whole ranking in one CUDA graph per input (pointers, size, params)
    // and replay it: no synchronisation between labelling and ranking, one launch per frame.
    // It sizes every step for the worst case (component capacity, 4 pairs per pixel) instead of
    // reading the counts first; the result is the same.
    explicit CudaRanker(int device, bool graph_mode = false);
    ~CudaRanker();
    CudaRanker(const CudaRanker&) = delete;
    CudaRanker& operator=(const CudaRanker&) = delete;

    // Maps already on this device (any strides, in elements). Runs on `stream`.
    // `y_scale`/`z_scale`: 255 for uint8 maps (probability*255), 1 for float32.
    // `labels_out`: host buffer of height*width int32 for the CPU path's labels, or null.
    CudaRankOutput rank(const MapView& y, const MapView& z, int64_t height, int64_t width,
                        const binpick::RankingParams& params, cudaStream_t stream, int32_t* labels_out);

    // Host maps (contiguous, row-major): copied into a device staging buffer first.
    CudaRankOutput rank_host(const void* y, const void* z, MapDtype y_dtype, MapDtype z_dtype, int64_t height,
                             int64_t width, const binpick::RankingParams& params, cudaStream_t stream,
                             int32_t* labels_out);

    int device() const { return device_; }
    bool graph_mode() const { return graph_mode_; }

private:
    // Item counts of the component- and pair-sized steps: the true counts (direct mode) or the
    // capacities with padding (graph mode).
    struct RankingSizes {
        int64_t components;
        int64_t pairs;
        int pair_bits;          // key bits of the pair sort
        int64_t first_records;  // records copied back with the counts
        bool padded;
    };
    // What a captured graph depends on; a new key re-captures.
    struct GraphKey {
        MapView y{}, z{};
        int64_t height = 0, width = 0;
        binpick::RankingParams params{};
        bool labels = false;
        uint64_t workspace = 0;
        bool operator==(const GraphKey& o) const;
    };

    void enqueue_labelling(const MapView& y, const MapView& z, int64_t height, int64_t width,
                           const binpick::RankingParams& params, cudaStream_t stream);
    void enqueue_ranking(const RankingSizes& sizes, int64_t height, int64_t width,
                         const binpick::RankingParams& params, cudaStream_t stream, int32_t* labels_dst);
    size_t ranking_temp_bytes(const RankingSizes& sizes);
    binpick::RankingResult collect(int64_t first_records, cudaStream_t stream);
    void reserve_grasp(int64_t height, int64_t width);
    void release_grasp();
    CudaRankOutput rank_graphed(const MapView& y, const MapView& z, int64_t height, int64_t width,
                                const binpick::RankingParams& params, cudaStream_t stream, int32_t* labels_out);
    cudaGraphExec_t graph_for(const GraphKey& key, const RankingSizes& sizes, const MapView& y, const MapView& z,
                              int64_t height, int64_t width, const binpick::RankingParams& params,
                              bool labels);
    void drop_graphs();

    void reserve_pixels(int64_t pixels);
    void reserve_pairs(int64_t pairs);
    void reserve_temp(size_t bytes);
    void release();

    int device_;
    int64_t pixel_capacity_ = 0;
    int64_t comp_capacity_ = 0;
    int64_t pair_capacity_ = 0;
    // Per pixel.
    int32_t* parent_ = nullptr;      // union-find forest, -1 on boundary pixels
    int32_t* labels_ = nullptr;      // component 1..n, 0 on boundary pixels
    int32_t* is_root_ = nullptr;     // root flags, later the CPU-numbered labels
    int32_t* dense_ = nullptr;       // exclusive scan of is_root_
    int32_t* pair_count_ = nullptr;  // distinct components 4-adjacent to a boundary pixel
    int32_t* pair_offset_ = nullptr; // exclusive scan of pair_count_
    uint8_t* flags_ = nullptr;       // bit 0: boundary (not Y <= alpha), bit 1: occluding (Z > beta)
    void* staging_ = nullptr;        // host maps land here: 2 * 4 bytes per pixel
    // Per component (device arrays, one struct of pointers in the .cu).
    void* comp_block_ = nullptr;
    // Per (boundary pixel, touching component) pair.
    int32_t* pair_keys_in_ = nullptr;
    int32_t* pair_keys_out_ = nullptr;
    double* pair_terms_in_ = nullptr;
    double* pair_terms_out_ = nullptr;
    CandidateRecord* records_ = nullptr;
    // The grasp's distance transform (kernel_bodies.cuh grasp_*): squared column distances and
    // the row pass's scratch over the padded box, and each row's first maximum.
    int64_t* grasp_g2_ = nullptr;
    int64_t* grasp_s_ = nullptr;
    int64_t* grasp_t_ = nullptr;
    int64_t* grasp_row_best_ = nullptr;
    int64_t grasp_box_capacity_ = 0;
    int64_t grasp_row_capacity_ = 0;
    // Scalars: ScalarIndex (ranking_records.hpp).
    unsigned long long* scalars_ = nullptr;
    void* cub_temp_ = nullptr;
    size_t cub_temp_bytes_ = 0;
    // Pinned host mirror of the scalars (ScalarIndex) and the first records: copied back together
    // after the ranking, with one synchronisation.
    unsigned long long* host_scalars_ = nullptr;
    CandidateRecord* host_records_ = nullptr;
    int32_t* host_labels_ = nullptr;  // graph mode: pinned landing place of the labels
    bool graph_mode_ = false;
    cudaStream_t capture_stream_ = nullptr;
    // The last few captured graphs, most recent last: a caller whose map buffers alternate
    // between a few addresses (PyTorch's caching allocator handing back the previous frame's
    // block) replays rather than re-captures.
    struct CachedGraph {
        GraphKey key;
        cudaGraphExec_t exec;
    };
    std::vector<CachedGraph> graphs_;
    uint64_t workspace_generation_ = 0;  // bumped whenever a buffer moves
    cudaEvent_t start_ = nullptr;
    cudaEvent_t stop_ = nullptr;
};

// Number of records copied back together with the counts in the first transfer.
constexpr int kRecordsInFirstCopy = 256;

// Captured graphs a ranker keeps (graph mode), least recently used dropped first.
constexpr size_t kCachedGraphs = 4;

}  // namespace binpick_cuda
