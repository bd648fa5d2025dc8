// CUDA kernels of the ranking hot path and their orchestration on one stream.
//
//   init       binarise Y and Z (double comparisons, as the CPU); link each candidate pixel
//              to the start of its run inside its warp's row segment (ballot), the segment's
//              first pixel to the previous segment's last pixel when both are candidates
//   merge      union-find across rows, only where the left neighbours do not already join
//   compress   every pixel points at its root (the component's first pixel in raster order)
//   pairs      per boundary pixel: how many distinct components touch it (4-neighbourhood)
//   scans      root flags -> component numbers 1..n in raster order; pair counts -> offsets
//   -- host reads n and the pair total (first sync) --
//   relabel    labels[p] = component number, 0 on boundary pixels
//   stats      area, bbox and raw moments per component, one atomic set per horizontal run
//   filter     area filter (the CPU's double comparison), largest kept area, kept numbering
//   axes       principal axes of kept candidates from their exact integer moments
//   contour    per boundary pixel: one (component, term) pair per touching component, at the
//              pixel's scanned offset (raster order); extents along the axes
//   sort       stable radix sort of the pairs by component: raster order within a component
//   score      per candidate, the contour terms summed sequentially in raster order (the
//              CPU's order, so s1 is the same double); s2, score; stable descending sort
//   gather     ranked records
//   grasp      the best candidate's distance transform (Meijster: columns, then rows), its
//              first maximum and the centroid test: the two facts of the grasp rule
//   -- host copies the counts with the grasp's facts and the first records (second and last sync) --
// Graph mode (CudaRanker(device, true)): the same launches, captured once per input (map
// addresses, size, parameters) into one CUDA graph and replayed, with no synchronisation
// between labelling and ranking: the component- and pair-sized steps run over their capacities
// and read the true counts on the device, and pad_sort_inputs makes the extra sort items sort
// after the real ones, so the result is the direct mode's.
// Races: union-find links only ever lower parent values (atomicMin with retry); all other
// cross-thread writes are atomics on per-component counters or min/max; each kernel reads
// what earlier kernels wrote, so kernel boundaries are the only barriers needed.
#include "cuda_ranker.hpp"
#include "kernel_bodies.cuh"

#include <cub/device/device_radix_sort.cuh>
#include <cub/device/device_scan.cuh>

#include <algorithm>
#include <climits>
#include <cmath>
#include <stdexcept>
#include <string>

namespace binpick_cuda {
namespace {

constexpr int kWarp = 32;
constexpr int kRowsPerBlock = 8;
constexpr int kStatsChunk = 16;  // pixels of one row per thread in the statistics pass
constexpr int kThreads = 256;

void check(cudaError_t status, const char* what) {
    if (status != cudaSuccess) {
        throw std::runtime_error(std::string("CUDA error in ") + what + ": " + cudaGetErrorString(status));
    }
}

struct ParentLoad {
    const volatile int32_t* parent;
    __device__ int32_t operator()(int32_t i) const { return parent[i]; }
};

struct ParentAtomicMin {
    int32_t* parent;
    __device__ int32_t operator()(int32_t i, int32_t v) const { return atomicMin(parent + i, v); }
};

__device__ __forceinline__ int64_t thread_x() { return static_cast<int64_t>(blockIdx.x) * blockDim.x + threadIdx.x; }
__device__ __forceinline__ int64_t thread_y() { return static_cast<int64_t>(blockIdx.y) * blockDim.y + threadIdx.y; }

// One warp = one 32-pixel row segment: blockDim.x == 32, so the ballot covers the segment.
__global__ void init_kernel(MapView y_map, MapView z_map, double alpha, double beta, int64_t width,
                            int64_t height, int32_t* parent, uint8_t* flags) {
    const int lane = threadIdx.x;
    const int64_t x0 = static_cast<int64_t>(blockIdx.x) * kWarp;
    const int64_t x = x0 + lane;
    const int64_t row = thread_y();
    if (row >= height) return;  // uniform for the warp
    const bool inside = x < width;
    const bool candidate = inside && is_candidate_pixel(y_map, x, row, alpha);
    const bool occluding = inside && is_occluding_pixel(z_map, x, row, beta);
    const unsigned candidate_mask = __ballot_sync(0xffffffffu, candidate);
    if (!inside) return;
    init_pixel(y_map, alpha, width, x0, lane, row, candidate, occluding, candidate_mask, parent, flags);
}

__global__ void merge_kernel(int64_t width, int64_t height, int32_t* parent, const uint8_t* flags) {
    const int64_t x = thread_x();
    const int64_t row = thread_y();
    if (x >= width || row >= height) return;
    merge_pixel(x, row, width, flags, ParentLoad{parent}, ParentAtomicMin{parent});
}

__global__ void compress_kernel(int64_t pixels, int32_t* parent, int32_t* is_root) {
    const int64_t p = thread_x();
    if (p < pixels) compress_pixel(p, parent, is_root, ParentLoad{parent});
}

__global__ void pair_count_kernel(int64_t width, int64_t height, const int32_t* parent, const uint8_t* flags,
                                  int32_t* pair_count) {
    const int64_t x = thread_x();
    const int64_t row = thread_y();
    if (x < width && row < height) pair_count_pixel(x, row, width, height, parent, flags, pair_count);
}

__global__ void count_kernel(int64_t pixels, const int32_t* dense, const int32_t* is_root, const int32_t* pair_offset,
                             const int32_t* pair_count, unsigned long long* scalars) {
    count_scalars(pixels, dense, is_root, pair_offset, pair_count, scalars);
}

__global__ void relabel_kernel(int64_t pixels, const int32_t* parent, const int32_t* dense, int32_t* labels) {
    const int64_t p = thread_x();
    if (p < pixels) relabel_pixel(p, parent, dense, labels);
}

// Component- and pair-sized kernels take `items` (the grid's extent: the true count, or the
// capacity when the ranking is captured in a graph) and the true counts from `scalars` on the
// device ([0] components, [1] pairs, [3] kept), so one launch serves both.
__device__ __forceinline__ int64_t component_count(const unsigned long long* scalars) {
    return static_cast<int64_t>(scalars[0]);
}

__global__ void reset_components_kernel(int64_t items, Components c, const unsigned long long* scalars) {
    const int64_t i = thread_x();
    if (i < items && i < component_count(scalars)) reset_component(i, c);
}

__global__ void pad_sort_inputs_kernel(int64_t components, int64_t pairs, int32_t pair_sentinel,
                                       const unsigned long long* scalars, Components c, int32_t* pair_keys) {
    pad_sort_inputs(thread_x(), components, pairs, pair_sentinel, scalars, c, pair_keys);
}

__global__ void stats_kernel(int64_t width, int64_t height, const int32_t* labels, Components c) {
    const int64_t xs = thread_x() * kStatsChunk;
    const int64_t row = blockIdx.y;
    if (xs >= width || row >= height) return;
    stats_chunk<DeviceAtomics>(xs, min(width, xs + kStatsChunk), row, width, labels, c);
}

__global__ void filter_kernel(int64_t items, double min_px, double max_px, Components c,
                              unsigned long long* scalars) {
    const int64_t i = thread_x();
    if (i < items && i < component_count(scalars)) filter_component<DeviceAtomics>(i, min_px, max_px, c, scalars);
}

__global__ void axes_kernel(int64_t items, Components c, const unsigned long long* scalars) {
    const int64_t i = thread_x();
    if (i < items && i < component_count(scalars)) axes_component(i, c);
}

__global__ void contour_kernel(int64_t width, int64_t height, int64_t half, const int32_t* labels,
                               const uint8_t* flags, const int32_t* pair_offset, Components c, int32_t* pair_keys,
                               double* pair_terms) {
    const int64_t x = thread_x();
    const int64_t row = thread_y();
    if (x >= width || row >= height) return;
    contour_pixel<DeviceAtomics>(x, row, width, height, half, labels, flags, pair_offset, c, pair_keys, pair_terms);
}

__global__ void edge_extents_kernel(int64_t width, int64_t height, const int32_t* labels, Components c) {
    edge_extent<DeviceAtomics>(thread_x(), width, height, labels, c);
}

__global__ void segments_kernel(int64_t items, const int32_t* keys, Components c, const unsigned long long* scalars) {
    const int64_t i = thread_x();
    const auto pairs = static_cast<int64_t>(scalars[1]);
    if (i < items && i < pairs) segment_pair(i, pairs, keys, c);
}

__global__ void score_kernel(int64_t items, double w1, double w2, binpick::ScoreRule rule, const double* terms,
                             Components c, const unsigned long long* scalars) {
    const int64_t i = thread_x();
    if (i < items && i < component_count(scalars)) score_component(i, w1, w2, rule, terms, c, scalars);
}

__global__ void gather_kernel(int64_t items, Components c, const unsigned long long* scalars,
                              CandidateRecord* records) {
    const int64_t r = thread_x();
    if (r < items && r < static_cast<int64_t>(scalars[3])) gather_record(r, c, records);
}

__global__ void grasp_columns_kernel(int64_t columns, int64_t width, const int32_t* labels,
                                     const unsigned long long* scalars, const CandidateRecord* records, int64_t* g2) {
    const int64_t x = thread_x();
    if (x < columns) grasp_column(x, width, labels, scalars, records, g2);
}

__global__ void grasp_rows_kernel(int64_t rows, unsigned long long* scalars, const CandidateRecord* records,
                                  const int64_t* g2, int64_t* s, int64_t* t, int64_t* row_best) {
    const int64_t y = thread_x();
    if (y < rows) grasp_row(y, scalars, records, g2, s, t, row_best);
}

__global__ void grasp_pick_kernel(int64_t width, int64_t height, double margin, const int32_t* labels,
                                  unsigned long long* scalars, const CandidateRecord* records,
                                  const int64_t* row_best) {
    grasp_pick(width, height, margin, labels, scalars, records, row_best);
}

__global__ void cpu_labels_kernel(int64_t pixels, const int32_t* labels, Components c, int32_t* out) {
    const int64_t p = thread_x();
    if (p < pixels) cpu_label_pixel(p, labels, c, out);
}

unsigned blocks_for(int64_t items, int threads) {
    return static_cast<unsigned>(std::max<int64_t>(1, (items + threads - 1) / threads));
}

class DeviceGuard {
public:
    explicit DeviceGuard(int device) {
        check(cudaGetDevice(&previous_), "cudaGetDevice");
        if (previous_ != device) check(cudaSetDevice(device), "cudaSetDevice");
    }
    ~DeviceGuard() { cudaSetDevice(previous_); }
    DeviceGuard(const DeviceGuard&) = delete;
    DeviceGuard& operator=(const DeviceGuard&) = delete;

private:
    int previous_ = 0;
};

template <typename T>
void device_alloc(T** ptr, int64_t count, const char* what) {
    const size_t bytes = sizeof(T) * static_cast<size_t>(std::max<int64_t>(1, count));
    check(cudaMalloc(reinterpret_cast<void**>(ptr), bytes), what);
}

}  // namespace

CudaRanker::CudaRanker(int device, bool graph_mode) : device_(device), graph_mode_(graph_mode) {
    int count = 0;
    check(cudaGetDeviceCount(&count), "cudaGetDeviceCount");
    if (device < 0 || device >= count) {
        throw std::invalid_argument("device: expected 0.." + std::to_string(count - 1) + ", got " +
                                    std::to_string(device));
    }
    DeviceGuard guard(device_);
    check(cudaMallocHost(reinterpret_cast<void**>(&host_scalars_), kScalarCount * sizeof(unsigned long long)),
          "cudaMallocHost(scalars)");
    check(cudaMallocHost(reinterpret_cast<void**>(&host_records_), kRecordsInFirstCopy * sizeof(CandidateRecord)),
          "cudaMallocHost(records)");
    check(cudaMalloc(reinterpret_cast<void**>(&scalars_), kScalarCount * sizeof(unsigned long long)),
          "cudaMalloc(scalars)");
    check(cudaEventCreate(&start_), "cudaEventCreate");
    check(cudaEventCreate(&stop_), "cudaEventCreate");
}

CudaRanker::~CudaRanker() {
    try {
        DeviceGuard guard(device_);
        release();
        cudaFree(scalars_);
        cudaFree(cub_temp_);
        cudaFreeHost(host_scalars_);
        cudaFreeHost(host_records_);
        release_grasp();
        drop_graphs();
        if (capture_stream_) cudaStreamDestroy(capture_stream_);
        cudaEventDestroy(start_);
        cudaEventDestroy(stop_);
    } catch (...) {  // never throw from a destructor (e.g. the driver is already shutting down)
    }
}

void CudaRanker::release() {
    void* buffers[] = {parent_,        labels_,        is_root_,        dense_,          pair_count_,
                       pair_offset_,   flags_,         staging_,        comp_block_,     records_,
                       pair_keys_in_,  pair_keys_out_, pair_terms_in_,  pair_terms_out_};
    for (void* b : buffers) cudaFree(b);
    cudaFreeHost(host_labels_);
    host_labels_ = nullptr;
    ++workspace_generation_;  // a captured graph points into the old buffers
    drop_graphs();
    parent_ = labels_ = is_root_ = dense_ = pair_count_ = pair_offset_ = nullptr;
    flags_ = nullptr;
    staging_ = comp_block_ = nullptr;
    records_ = nullptr;
    pair_keys_in_ = pair_keys_out_ = nullptr;
    pair_terms_in_ = pair_terms_out_ = nullptr;
    pixel_capacity_ = comp_capacity_ = pair_capacity_ = 0;
}

void CudaRanker::reserve_pixels(int64_t pixels) {
    if (pixels <= pixel_capacity_) return;
    release();
    const int64_t comps = component_capacity(pixels);
    device_alloc(&parent_, pixels, "cudaMalloc(parent)");
    device_alloc(&labels_, pixels, "cudaMalloc(labels)");
    device_alloc(&is_root_, pixels, "cudaMalloc(is_root)");
    device_alloc(&dense_, pixels, "cudaMalloc(dense)");
    device_alloc(&pair_count_, pixels, "cudaMalloc(pair_count)");
    device_alloc(&pair_offset_, pixels, "cudaMalloc(pair_offset)");
    device_alloc(&flags_, pixels, "cudaMalloc(flags)");
    device_alloc(reinterpret_cast<float**>(&staging_), 2 * pixels, "cudaMalloc(staging)");
    check(cudaMalloc(&comp_block_, Components::bytes(comps)), "cudaMalloc(components)");
    device_alloc(&records_, comps, "cudaMalloc(records)");
    pixel_capacity_ = pixels;
    comp_capacity_ = comps;
}

void CudaRanker::reserve_pairs(int64_t pairs) {
    if (pairs <= pair_capacity_) return;
    for (void* b : {static_cast<void*>(pair_keys_in_), static_cast<void*>(pair_keys_out_),
                    static_cast<void*>(pair_terms_in_), static_cast<void*>(pair_terms_out_)}) {
        cudaFree(b);
    }
    const int64_t capacity = std::max<int64_t>(pairs, 1024);
    ++workspace_generation_;
    device_alloc(&pair_keys_in_, capacity, "cudaMalloc(pair keys)");
    device_alloc(&pair_keys_out_, capacity, "cudaMalloc(pair keys)");
    device_alloc(&pair_terms_in_, capacity, "cudaMalloc(pair terms)");
    device_alloc(&pair_terms_out_, capacity, "cudaMalloc(pair terms)");
    pair_capacity_ = capacity;
}

void CudaRanker::reserve_temp(size_t bytes) {
    if (bytes <= cub_temp_bytes_) return;
    cudaFree(cub_temp_);
    cub_temp_ = nullptr;
    cub_temp_bytes_ = 0;
    ++workspace_generation_;
    check(cudaMalloc(&cub_temp_, bytes), "cudaMalloc(cub temp)");
    cub_temp_bytes_ = bytes;
}

void CudaRanker::release_grasp() {
    for (void* b : {static_cast<void*>(grasp_g2_), static_cast<void*>(grasp_s_), static_cast<void*>(grasp_t_),
                    static_cast<void*>(grasp_row_best_)}) {
        cudaFree(b);
    }
    grasp_g2_ = grasp_s_ = grasp_t_ = grasp_row_best_ = nullptr;
    grasp_box_capacity_ = grasp_row_capacity_ = 0;
}

void CudaRanker::reserve_grasp(int64_t height, int64_t width) {
    // Any bounding box fits the image; padded by one pixel on each side.
    const int64_t box = (height + 2) * (width + 2);
    const int64_t rows = height + 2;
    if (box <= grasp_box_capacity_ && rows <= grasp_row_capacity_) return;
    const int64_t box_capacity = std::max(box, grasp_box_capacity_);
    const int64_t row_capacity = std::max(rows, grasp_row_capacity_);
    release_grasp();
    ++workspace_generation_;
    device_alloc(&grasp_g2_, box_capacity, "cudaMalloc(grasp transform)");
    device_alloc(&grasp_s_, box_capacity, "cudaMalloc(grasp scratch)");
    device_alloc(&grasp_t_, box_capacity, "cudaMalloc(grasp scratch)");
    device_alloc(&grasp_row_best_, 2 * row_capacity, "cudaMalloc(grasp rows)");
    grasp_box_capacity_ = box_capacity;
    grasp_row_capacity_ = row_capacity;
}

CudaRankOutput CudaRanker::rank_host(const void* y, const void* z, MapDtype y_dtype, MapDtype z_dtype,
                                     int64_t height, int64_t width, const binpick::RankingParams& params,
                                     cudaStream_t stream, int32_t* labels_out) {
    DeviceGuard guard(device_);
    const int64_t pixels = height * width;
    if (pixels <= 0) {
        return rank(MapView{nullptr, y_dtype, width, 1}, MapView{nullptr, z_dtype, width, 1}, height, width,
                    params, stream, labels_out);
    }
    if (pixels >= INT_MAX) throw std::invalid_argument("image too large: at most 2^31 - 1 pixels");
    reserve_pixels(pixels);
    auto* y_dev = static_cast<uint8_t*>(staging_);
    auto* z_dev = y_dev + static_cast<size_t>(pixels) * 4;
    const size_t y_bytes = static_cast<size_t>(pixels) * (y_dtype == MapDtype::UInt8 ? 1 : 4);
    const size_t z_bytes = static_cast<size_t>(pixels) * (z_dtype == MapDtype::UInt8 ? 1 : 4);
    check(cudaMemcpyAsync(y_dev, y, y_bytes, cudaMemcpyHostToDevice, stream), "cudaMemcpy(boundaries)");
    check(cudaMemcpyAsync(z_dev, z, z_bytes, cudaMemcpyHostToDevice, stream), "cudaMemcpy(occlusions)");
    return rank(MapView{y_dev, y_dtype, width, 1}, MapView{z_dev, z_dtype, width, 1}, height, width, params, stream,
                labels_out);
}

void CudaRanker::enqueue_labelling(const MapView& y, const MapView& z, int64_t height, int64_t width,
                                   const binpick::RankingParams& params, cudaStream_t stream) {
    const int64_t pixels = height * width;
    const double y_scale = y.dtype == MapDtype::UInt8 ? 255.0 : 1.0;
    const double z_scale = z.dtype == MapDtype::UInt8 ? 255.0 : 1.0;
    const dim3 warp_block(kWarp, kRowsPerBlock);
    const dim3 pixel_grid(blocks_for(width, kWarp), blocks_for(height, kRowsPerBlock));
    const unsigned flat_blocks = blocks_for(pixels, kThreads);
    init_kernel<<<pixel_grid, warp_block, 0, stream>>>(y, z, params.alpha * y_scale, params.beta * z_scale, width,
                                                       height, parent_, flags_);
    merge_kernel<<<pixel_grid, warp_block, 0, stream>>>(width, height, parent_, flags_);
    compress_kernel<<<flat_blocks, kThreads, 0, stream>>>(pixels, parent_, is_root_);
    pair_count_kernel<<<pixel_grid, warp_block, 0, stream>>>(width, height, parent_, flags_, pair_count_);
    size_t scan_bytes = 0;
    check(cub::DeviceScan::ExclusiveSum(nullptr, scan_bytes, is_root_, dense_, static_cast<int>(pixels)),
          "cub scan size");
    reserve_temp(scan_bytes);
    check(cub::DeviceScan::ExclusiveSum(cub_temp_, scan_bytes, is_root_, dense_, static_cast<int>(pixels), stream),
          "cub scan (components)");
    check(cub::DeviceScan::ExclusiveSum(cub_temp_, scan_bytes, pair_count_, pair_offset_, static_cast<int>(pixels),
                                        stream),
          "cub scan (pairs)");
    count_kernel<<<1, 1, 0, stream>>>(pixels, dense_, is_root_, pair_offset_, pair_count_, scalars_);
    relabel_kernel<<<flat_blocks, kThreads, 0, stream>>>(pixels, parent_, dense_, labels_);
    check(cudaGetLastError(), "labelling kernels");
}

size_t CudaRanker::ranking_temp_bytes(const RankingSizes& sizes) {
    size_t keep_scan_bytes = 0;
    check(cub::DeviceScan::ExclusiveSum(nullptr, keep_scan_bytes, static_cast<int32_t*>(nullptr),
                                        static_cast<int32_t*>(nullptr), static_cast<int>(sizes.components)),
          "cub scan size");
    size_t pair_sort_bytes = 0;
    check(cub::DeviceRadixSort::SortPairs(nullptr, pair_sort_bytes, static_cast<int32_t*>(nullptr),
                                          static_cast<int32_t*>(nullptr), static_cast<double*>(nullptr),
                                          static_cast<double*>(nullptr),
                                          static_cast<int>(std::max<int64_t>(sizes.pairs, 1)), 0, sizes.pair_bits),
          "cub sort size");
    size_t rank_sort_bytes = 0;
    check(cub::DeviceRadixSort::SortPairsDescending(nullptr, rank_sort_bytes, static_cast<double*>(nullptr),
                                                     static_cast<double*>(nullptr), static_cast<int32_t*>(nullptr),
                                                     static_cast<int32_t*>(nullptr),
                                                     static_cast<int>(sizes.components)),
          "cub sort size");
    return std::max({keep_scan_bytes, pair_sort_bytes, rank_sort_bytes});
}

void CudaRanker::enqueue_ranking(const RankingSizes& sizes, int64_t height, int64_t width,
                                 const binpick::RankingParams& params, cudaStream_t stream, int32_t* labels_dst) {
    const int64_t pixels = height * width;
    const Components comps = Components::carve(comp_block_, comp_capacity_);
    const dim3 warp_block(kWarp, kRowsPerBlock);
    const dim3 pixel_grid(blocks_for(width, kWarp), blocks_for(height, kRowsPerBlock));
    const unsigned flat_blocks = blocks_for(pixels, kThreads);
    const unsigned comp_blocks = blocks_for(sizes.components, kThreads);
    reset_components_kernel<<<comp_blocks, kThreads, 0, stream>>>(sizes.components, comps, scalars_);
    if (sizes.padded) {
        pad_sort_inputs_kernel<<<blocks_for(std::max(sizes.components, sizes.pairs), kThreads), kThreads, 0,
                                 stream>>>(sizes.components, sizes.pairs, pair_key_sentinel(sizes.pair_bits), scalars_,
                                           comps, pair_keys_in_);
    }
    const dim3 stats_grid(blocks_for(blocks_for(width, kStatsChunk), kWarp), static_cast<unsigned>(height));
    stats_kernel<<<stats_grid, kWarp, 0, stream>>>(width, height, labels_, comps);
    const double min_px = binpick::area_bound_px(params.min_area, pixels);
    const double max_px = binpick::area_bound_px(params.max_area, pixels);
    filter_kernel<<<comp_blocks, kThreads, 0, stream>>>(sizes.components, min_px, max_px, comps, scalars_);
    size_t temp_bytes = cub_temp_bytes_;
    check(cub::DeviceScan::ExclusiveSum(cub_temp_, temp_bytes, comps.keep, comps.kept_rank,
                                        static_cast<int>(sizes.components), stream),
          "cub scan (kept)");
    axes_kernel<<<comp_blocks, kThreads, 0, stream>>>(sizes.components, comps, scalars_);
    contour_kernel<<<pixel_grid, warp_block, 0, stream>>>(width, height, params.patch / 2, labels_, flags_,
                                                          pair_offset_, comps, pair_keys_in_, pair_terms_in_);
    edge_extents_kernel<<<blocks_for(2 * (width + height), kThreads), kThreads, 0, stream>>>(width, height, labels_,
                                                                                             comps);
    if (sizes.pairs > 0) {
        temp_bytes = cub_temp_bytes_;
        check(cub::DeviceRadixSort::SortPairs(cub_temp_, temp_bytes, pair_keys_in_, pair_keys_out_, pair_terms_in_,
                                              pair_terms_out_, static_cast<int>(sizes.pairs), 0, sizes.pair_bits,
                                              stream),
              "cub sort (pairs)");
        segments_kernel<<<blocks_for(sizes.pairs, kThreads), kThreads, 0, stream>>>(sizes.pairs, pair_keys_out_,
                                                                                   comps, scalars_);
    }
    score_kernel<<<comp_blocks, kThreads, 0, stream>>>(sizes.components, params.w1, params.w2, params.score,
                                                       pair_terms_out_, comps, scalars_);
    temp_bytes = cub_temp_bytes_;
    check(cub::DeviceRadixSort::SortPairsDescending(cub_temp_, temp_bytes, comps.keys_in, comps.keys_out, comps.ids_in,
                                                     comps.ids_out, static_cast<int>(sizes.components), 0, 64, stream),
          "cub sort (ranking)");
    gather_kernel<<<comp_blocks, kThreads, 0, stream>>>(sizes.components, comps, scalars_, records_);
    // The grasp's facts on the device (kernel_bodies.cuh grasp_*), sized for the largest box.
    grasp_columns_kernel<<<blocks_for(width + 2, kThreads), kThreads, 0, stream>>>(width + 2, width, labels_, scalars_,
                                                                                  records_, grasp_g2_);
    grasp_rows_kernel<<<blocks_for(height + 2, kThreads), kThreads, 0, stream>>>(
        height + 2, scalars_, records_, grasp_g2_, grasp_s_, grasp_t_, grasp_row_best_);
    grasp_pick_kernel<<<1, 1, 0, stream>>>(width, height, params.margin, labels_, scalars_, records_,
                                           grasp_row_best_);
    if (labels_dst) {
        cpu_labels_kernel<<<flat_blocks, kThreads, 0, stream>>>(pixels, labels_, comps, is_root_);
    }
    check(cudaGetLastError(), "ranking kernels");
    // One round trip: the counts with the grasp's facts, and the first records.
    check(cudaMemcpyAsync(host_scalars_, scalars_, kScalarCount * sizeof(unsigned long long), cudaMemcpyDeviceToHost,
                          stream),
          "cudaMemcpy(counts)");
    check(cudaMemcpyAsync(host_records_, records_, sizes.first_records * sizeof(CandidateRecord),
                          cudaMemcpyDeviceToHost, stream),
          "cudaMemcpy(records)");
    if (labels_dst) {
        check(cudaMemcpyAsync(labels_dst, is_root_, pixels * sizeof(int32_t), cudaMemcpyDeviceToHost, stream),
              "cudaMemcpy(labels)");
    }
}

binpick::RankingResult CudaRanker::collect(int64_t first_records, cudaStream_t stream) {
    const auto kept = static_cast<int64_t>(host_scalars_[3]);
    std::vector<CandidateRecord> ranked(static_cast<size_t>(kept));
    std::copy(host_records_, host_records_ + std::min(kept, first_records), ranked.begin());
    if (kept > first_records) {  // more candidates than the first copy holds: rare, one more round trip
        check(cudaMemcpyAsync(ranked.data() + first_records, records_ + first_records,
                              (kept - first_records) * sizeof(CandidateRecord), cudaMemcpyDeviceToHost, stream),
              "cudaMemcpy(more records)");
        check(cudaStreamSynchronize(stream), "more records");
    }
    return finish_on_host(ranked, host_scalars_);
}

CudaRankOutput CudaRanker::rank(const MapView& y, const MapView& z, int64_t height, int64_t width,
                                const binpick::RankingParams& params, cudaStream_t stream, int32_t* labels_out) {
    binpick::validate(params);
    if (height < 0 || width < 0) throw std::invalid_argument("height and width must be >= 0");
    const int64_t pixels = height * width;
    CudaRankOutput out;
    if (pixels == 0) return out;
    if (pixels >= INT_MAX || height > 65535) {
        throw std::invalid_argument("image too large: at most 65535 rows and 2^31 - 1 pixels");
    }
    DeviceGuard guard(device_);
    reserve_pixels(pixels);
    reserve_grasp(height, width);
    if (graph_mode_) return rank_graphed(y, z, height, width, params, stream, labels_out);

    check(cudaEventRecord(start_, stream), "cudaEventRecord");
    enqueue_labelling(y, z, height, width, params, stream);
    check(cudaMemcpyAsync(host_scalars_, scalars_, 2 * sizeof(unsigned long long), cudaMemcpyDeviceToHost, stream),
          "cudaMemcpy(counts)");
    check(cudaStreamSynchronize(stream), "labelling");
    const auto n = static_cast<int64_t>(host_scalars_[0]);
    const auto pairs = static_cast<int64_t>(host_scalars_[1]);
    out.n_components = n;
    if (n == 0) {
        if (labels_out) std::fill(labels_out, labels_out + pixels, 0);
        check(cudaEventRecord(stop_, stream), "cudaEventRecord");
        check(cudaStreamSynchronize(stream), "ranking");
        check(cudaEventElapsedTime(&out.device_ms, start_, stop_), "cudaEventElapsedTime");
        return out;
    }
    reserve_pairs(pairs);
    const RankingSizes sizes{n, pairs, pair_key_bits(n), std::min<int64_t>(n, kRecordsInFirstCopy), false};
    reserve_temp(ranking_temp_bytes(sizes));
    enqueue_ranking(sizes, height, width, params, stream, labels_out);
    check(cudaEventRecord(stop_, stream), "cudaEventRecord");
    check(cudaStreamSynchronize(stream), "ranking");
    check(cudaEventElapsedTime(&out.device_ms, start_, stop_), "cudaEventElapsedTime");
    out.result = collect(sizes.first_records, stream);
    return out;
}

bool CudaRanker::GraphKey::operator==(const GraphKey& o) const {
    auto same_map = [](const MapView& a, const MapView& b) {
        return a.data == b.data && a.dtype == b.dtype && a.row_stride == b.row_stride && a.col_stride == b.col_stride;
    };
    return same_map(y, o.y) && same_map(z, o.z) && height == o.height && width == o.width && params == o.params &&
           labels == o.labels && workspace == o.workspace;
}

void CudaRanker::drop_graphs() {
    for (const CachedGraph& g : graphs_) cudaGraphExecDestroy(g.exec);
    graphs_.clear();
}

cudaGraphExec_t CudaRanker::graph_for(const GraphKey& key, const RankingSizes& sizes, const MapView& y,
                                      const MapView& z, int64_t height, int64_t width,
                                      const binpick::RankingParams& params, bool labels) {
    for (auto it = graphs_.begin(); it != graphs_.end(); ++it) {
        if (it->key == key) {
            const CachedGraph hit = *it;
            graphs_.erase(it);
            graphs_.push_back(hit);
            return hit.exec;
        }
    }
    if (!capture_stream_) {
        check(cudaStreamCreateWithFlags(&capture_stream_, cudaStreamNonBlocking), "cudaStreamCreate(capture)");
    }
    check(cudaStreamBeginCapture(capture_stream_, cudaStreamCaptureModeThreadLocal), "cudaStreamBeginCapture");
    cudaGraph_t graph = nullptr;
    try {
        enqueue_labelling(y, z, height, width, params, capture_stream_);
        enqueue_ranking(sizes, height, width, params, capture_stream_, labels ? host_labels_ : nullptr);
    } catch (...) {
        cudaStreamEndCapture(capture_stream_, &graph);
        if (graph) cudaGraphDestroy(graph);
        cudaGetLastError();
        throw;
    }
    check(cudaStreamEndCapture(capture_stream_, &graph), "cudaStreamEndCapture");
    cudaGraphExec_t exec = nullptr;
    const cudaError_t status = cudaGraphInstantiate(&exec, graph, 0);
    cudaGraphDestroy(graph);
    check(status, "cudaGraphInstantiate");
    if (graphs_.size() >= kCachedGraphs) {
        cudaGraphExecDestroy(graphs_.front().exec);
        graphs_.erase(graphs_.begin());
    }
    graphs_.push_back({key, exec});
    return exec;
}

CudaRankOutput CudaRanker::rank_graphed(const MapView& y, const MapView& z, int64_t height, int64_t width,
                                        const binpick::RankingParams& params, cudaStream_t stream,
                                        int32_t* labels_out) {
    const int64_t pixels = height * width;
    if (pair_capacity(pixels) >= INT_MAX) {
        throw std::invalid_argument("image too large for the graph mode: at most 2^29 pixels");
    }
    // Sized for the worst case, so that nothing on the way waits for the counts: every
    // component-sized step runs over the component capacity and every pair-sized step over
    // 4 pairs per pixel (a boundary pixel touches at most 4 components); kernels read the true
    // counts on the device, and the sorts' extra items are padded to sort after the real ones.
    reserve_pairs(pair_capacity(pixels));
    if (labels_out && !host_labels_) {
        check(cudaMallocHost(reinterpret_cast<void**>(&host_labels_), pixel_capacity_ * sizeof(int32_t)),
              "cudaMallocHost(labels)");
    }
    const RankingSizes sizes{comp_capacity_, pair_capacity_, pair_key_bits(comp_capacity_),
                             std::min<int64_t>(comp_capacity_, kRecordsInFirstCopy), true};
    size_t scan_bytes = 0;
    check(cub::DeviceScan::ExclusiveSum(nullptr, scan_bytes, is_root_, dense_, static_cast<int>(pixels)),
          "cub scan size");
    reserve_temp(std::max(scan_bytes, ranking_temp_bytes(sizes)));
    const GraphKey key{y, z, height, width, params, labels_out != nullptr, workspace_generation_};
    const cudaGraphExec_t exec = graph_for(key, sizes, y, z, height, width, params, labels_out != nullptr);
    CudaRankOutput out;
    check(cudaEventRecord(start_, stream), "cudaEventRecord");
    check(cudaGraphLaunch(exec, stream), "cudaGraphLaunch");
    check(cudaEventRecord(stop_, stream), "cudaEventRecord");
    check(cudaStreamSynchronize(stream), "ranking");
    check(cudaEventElapsedTime(&out.device_ms, start_, stop_), "cudaEventElapsedTime");
    out.n_components = static_cast<int64_t>(host_scalars_[0]);
    if (labels_out) std::copy(host_labels_, host_labels_ + pixels, labels_out);
    out.result = collect(sizes.first_records, stream);
    return out;
}

}  // namespace binpick_cuda
