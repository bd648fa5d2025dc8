// CUDA kernels of the ranking hot path and their host orchestration.
//
// Pipeline (one stream, three small device-to-host transfers):
//   init      binarise Y and Z; link each candidate pixel to the start of its horizontal
//             run inside its warp (ballot), or to the previous warp's last pixel
//   merge     union-find across rows, only where the left neighbours do not already join
//   compress  every pixel points at its root (the component's first pixel in raster order)
//   scan      exclusive sum of root flags -> dense labels 1..n in raster order
//   -- host reads n --
//   relabel   labels[p] = dense label or 0 on boundary pixels
//   stats     area, bbox and raw moments per component, one atomic set per horizontal run
//   contour   for every boundary pixel and each distinct 4-neighbour component: +1 contour
//             pixel and + the XNOR agreement count over the patch
//   filter    area filter and the largest kept area
//   score     s1, s2, score in double with explicit round-to-nearest operations (no FMA
//             contraction, so the values equal the CPU's bit for bit)
//   sort      stable descending radix sort on the score: ties keep raster (label) order
//   gather    ranked records; the host copies the count and the first records in one go
// Race notes: union-find links only ever decrease parent values (atomicMin), every other
// cross-thread write is an atomic on a per-component counter, and each kernel boundary is
// the only synchronisation needed (no kernel reads what it writes except through atomics).
#include "cuda_ranker.hpp"

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
constexpr int kStatsChunk = 16;   // pixels of one row per thread in the statistics pass
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

struct LabelAt {
    const int32_t* labels;
    int width;
    __device__ int32_t operator()(int x, int y) const { return labels[static_cast<int64_t>(y) * width + x]; }
};

struct OccludedAt {
    const uint8_t* flags;
    int width;
    __device__ bool operator()(int x, int y) const {
        return (flags[static_cast<int64_t>(y) * width + x] & 2u) != 0;
    }
};

__global__ void init_kernel(MapView y_map, MapView z_map, Thresholds t, int width, int height,
                            int32_t* parent, uint8_t* flags) {
    const int lane = threadIdx.x;
    const int x0 = blockIdx.x * kWarp;
    const int x = x0 + lane;
    const int row = blockIdx.y * blockDim.y + threadIdx.y;
    if (row >= height) return;  // uniform for the warp: one warp is one row segment
    const bool inside = x < width;
    bool boundary = true;
    bool occluded = false;
    if (inside) {
        boundary = above(y_map, x, row, t.alpha, t.alpha_u8);
        occluded = above(z_map, x, row, t.beta, t.beta_u8);
    }
    const bool candidate = inside && !boundary;
    const unsigned candidate_mask = __ballot_sync(0xffffffffu, candidate);
    if (!inside) return;
    const int64_t p = static_cast<int64_t>(row) * width + x;
    flags[p] = static_cast<uint8_t>((boundary ? 1u : 0u) | (occluded ? 2u : 0u));
    if (!candidate) {
        parent[p] = -1;
        return;
    }
    const unsigned gaps_below = ~candidate_mask & ((1u << lane) - 1u);
    const int run_start_lane = gaps_below ? kWarp - __clz(gaps_below) : 0;
    const int64_t row_base = static_cast<int64_t>(row) * width;
    int64_t target = row_base + x0 + run_start_lane;
    if (run_start_lane == 0 && lane == 0 && x0 > 0 && !above(y_map, x0 - 1, row, t.alpha, t.alpha_u8)) {
        target = p - 1;  // continue the run of the previous warp segment
    }
    parent[p] = static_cast<int32_t>(target);
}

__global__ void merge_kernel(int width, int height, int32_t* parent, const uint8_t* flags) {
    const int x = blockIdx.x * blockDim.x + threadIdx.x;
    const int row = blockIdx.y * blockDim.y + threadIdx.y;
    if (x >= width || row >= height || row == 0) return;
    const int64_t p = static_cast<int64_t>(row) * width + x;
    const int64_t up = p - width;
    if ((flags[p] & 1u) || (flags[up] & 1u)) return;
    // Left and up-left both candidates: this pair is already joined through them.
    if (x > 0 && !(flags[p - 1] & 1u) && !(flags[up - 1] & 1u)) return;
    unite(ParentLoad{parent}, ParentAtomicMin{parent}, static_cast<int32_t>(p), static_cast<int32_t>(up));
}

__global__ void compress_kernel(int64_t pixels, int32_t* parent, int32_t* is_root) {
    const int64_t p = static_cast<int64_t>(blockIdx.x) * blockDim.x + threadIdx.x;
    if (p >= pixels) return;
    if (parent[p] < 0) {
        is_root[p] = 0;
        return;
    }
    const int32_t root = find_root(ParentLoad{parent}, static_cast<int32_t>(p));
    parent[p] = root;
    is_root[p] = (root == p) ? 1 : 0;
}

__global__ void count_kernel(int64_t pixels, const int32_t* dense, const int32_t* is_root,
                             unsigned long long* scalars) {
    scalars[0] = static_cast<unsigned long long>(dense[pixels - 1] + is_root[pixels - 1]);
    scalars[1] = 0;
    scalars[2] = 0;
}

__global__ void relabel_kernel(int64_t pixels, const int32_t* parent, const int32_t* dense, int32_t* labels) {
    const int64_t p = static_cast<int64_t>(blockIdx.x) * blockDim.x + threadIdx.x;
    if (p >= pixels) return;
    const int32_t root = parent[p];
    labels[p] = root < 0 ? 0 : dense[root] + 1;
}

struct ComponentArrays {
    unsigned long long* area;
    unsigned long long* sum_x;
    unsigned long long* sum_y;
    unsigned long long* sum_xx;
    unsigned long long* sum_xy;
    unsigned long long* sum_yy;
    unsigned long long* xnor;
    unsigned int* contour;
    int* min_x;
    int* min_y;
    int* max_x;
    int* max_y;
    double* s1;
    double* s2;
};

__global__ void reset_components_kernel(int64_t n, ComponentArrays c) {
    const int64_t i = static_cast<int64_t>(blockIdx.x) * blockDim.x + threadIdx.x;
    if (i >= n) return;
    c.area[i] = c.sum_x[i] = c.sum_y[i] = c.sum_xx[i] = c.sum_xy[i] = c.sum_yy[i] = c.xnor[i] = 0;
    c.contour[i] = 0;
    c.min_x[i] = INT_MAX;
    c.min_y[i] = INT_MAX;
    c.max_x[i] = -1;
    c.max_y[i] = -1;
}

__device__ void flush_run(const ComponentArrays& c, int32_t label, int a, int b, int row) {
    const int i = label - 1;
    const unsigned long long n = static_cast<unsigned long long>(b - a + 1);
    const unsigned long long y = static_cast<unsigned long long>(row);
    const unsigned long long sx = sum_range(a, b);
    atomicAdd(c.area + i, n);
    atomicAdd(c.sum_x + i, sx);
    atomicAdd(c.sum_y + i, y * n);
    atomicAdd(c.sum_xx + i, sum_range_squares(a, b));
    atomicAdd(c.sum_xy + i, y * sx);
    atomicAdd(c.sum_yy + i, y * y * n);
    atomicMin(c.min_x + i, a);
    atomicMax(c.max_x + i, b);
    atomicMin(c.min_y + i, row);
    atomicMax(c.max_y + i, row);
}

__global__ void stats_kernel(int width, int height, const int32_t* labels, ComponentArrays c) {
    const int chunk = blockIdx.x * blockDim.x + threadIdx.x;
    const int row = blockIdx.y;
    const int xs = chunk * kStatsChunk;
    if (xs >= width || row >= height) return;
    const int xe = min(width, xs + kStatsChunk);
    const int32_t* line = labels + static_cast<int64_t>(row) * width;
    int32_t current = 0;
    int run_start = xs;
    for (int x = xs; x < xe; ++x) {
        const int32_t label = line[x];
        if (label != current) {
            if (current > 0) flush_run(c, current, run_start, x - 1, row);
            current = label;
            run_start = x;
        }
    }
    if (current > 0) flush_run(c, current, run_start, xe - 1, row);
}

__global__ void contour_kernel(int width, int height, int half, const int32_t* labels, const uint8_t* flags,
                               ComponentArrays c) {
    const int x = blockIdx.x * blockDim.x + threadIdx.x;
    const int row = blockIdx.y * blockDim.y + threadIdx.y;
    if (x >= width || row >= height) return;
    const int64_t p = static_cast<int64_t>(row) * width + x;
    if (!(flags[p] & 1u)) return;
    int32_t touching[4];
    int count = 0;
    const int32_t neighbours[4] = {
        row > 0 ? labels[p - width] : 0,
        x > 0 ? labels[p - 1] : 0,
        x + 1 < width ? labels[p + 1] : 0,
        row + 1 < height ? labels[p + width] : 0,
    };
    for (int k = 0; k < 4; ++k) {
        const int32_t label = neighbours[k];
        if (label <= 0) continue;
        bool seen = false;
        for (int j = 0; j < count; ++j) seen = seen || (touching[j] == label);
        if (!seen) touching[count++] = label;
    }
    const LabelAt label_at{labels, width};
    const OccludedAt occluded_at{flags, width};
    for (int j = 0; j < count; ++j) {
        const int32_t label = touching[j];
        const uint32_t agree = xnor_patch_count(label_at, occluded_at, label, x, row, half, width, height);
        atomicAdd(c.xnor + (label - 1), static_cast<unsigned long long>(agree));
        atomicAdd(c.contour + (label - 1), 1u);
    }
}

__global__ void filter_kernel(int64_t n, unsigned long long min_area, unsigned long long max_area,
                              ComponentArrays c, unsigned long long* scalars) {
    const int64_t i = static_cast<int64_t>(blockIdx.x) * blockDim.x + threadIdx.x;
    if (i >= n) return;
    const unsigned long long area = c.area[i];
    if (area >= min_area && area <= max_area) {
        atomicMax(scalars + 2, area);
        atomicAdd(scalars + 1, 1ull);
    }
}

__global__ void score_kernel(int64_t n, unsigned long long min_area, unsigned long long max_area,
                             double patch_area, double w1, double w2, ComponentArrays c,
                             const unsigned long long* scalars, double* keys, int32_t* ids) {
    const int64_t i = static_cast<int64_t>(blockIdx.x) * blockDim.x + threadIdx.x;
    if (i >= n) return;
    ids[i] = static_cast<int32_t>(i);
    const unsigned long long area = c.area[i];
    if (area < min_area || area > max_area) {
        keys[i] = -1.0;  // scores are >= 0: filtered components sort after every candidate
        return;
    }
    const unsigned int contour = c.contour[i];
    const double s1 = contour == 0 ? 0.0
                                   : __ddiv_rn(static_cast<double>(c.xnor[i]),
                                               __dmul_rn(patch_area, static_cast<double>(contour)));
    const double s2 = __ddiv_rn(static_cast<double>(area), static_cast<double>(scalars[2]));
    c.s1[i] = s1;
    c.s2[i] = s2;
    keys[i] = __dadd_rn(__dmul_rn(w1, s1), __dmul_rn(w2, s2));
}

__global__ void gather_kernel(int64_t n, const double* keys, const int32_t* ids, ComponentArrays c,
                              const unsigned long long* scalars, CandidateRecord* records) {
    const int64_t r = static_cast<int64_t>(blockIdx.x) * blockDim.x + threadIdx.x;
    if (r >= n || r >= static_cast<int64_t>(scalars[1])) return;
    const int32_t i = ids[r];
    CandidateRecord rec;
    rec.label = i + 1;
    rec.min_x = c.min_x[i];
    rec.min_y = c.min_y[i];
    rec.max_x = c.max_x[i];
    rec.max_y = c.max_y[i];
    rec.contour = c.contour[i];
    rec.area = c.area[i];
    rec.sum_x = c.sum_x[i];
    rec.sum_y = c.sum_y[i];
    rec.sum_xx = c.sum_xx[i];
    rec.sum_xy = c.sum_xy[i];
    rec.sum_yy = c.sum_yy[i];
    rec.xnor_agree = c.xnor[i];
    rec.s1 = c.s1[i];
    rec.s2 = c.s2[i];
    rec.score = keys[r];
    records[r] = rec;
}

unsigned blocks_for(int64_t items, int threads) {
    return static_cast<unsigned>(std::max<int64_t>(1, (items + threads - 1) / threads));
}

int threshold_u8(float t) {
    // value > t  <=>  value > floor(t * 255) for an 8-bit value representing value / 255.
    const double scaled = std::floor(static_cast<double>(t) * 255.0);
    return static_cast<int>(std::min(255.0, std::max(-1.0, scaled)));
}

class DeviceGuard {
public:
    explicit DeviceGuard(int device) {
        check(cudaGetDevice(&previous_), "cudaGetDevice");
        if (previous_ != device) check(cudaSetDevice(device), "cudaSetDevice");
    }
    ~DeviceGuard() { cudaSetDevice(previous_); }

private:
    int previous_ = 0;
};

template <typename T>
void device_alloc(T** ptr, int64_t count, const char* what) {
    check(cudaMalloc(reinterpret_cast<void**>(ptr), sizeof(T) * static_cast<size_t>(std::max<int64_t>(1, count))),
          what);
}

}  // namespace

CudaRanker::CudaRanker(int device) : device_(device) {
    int count = 0;
    check(cudaGetDeviceCount(&count), "cudaGetDeviceCount");
    if (device < 0 || device >= count) {
        throw std::invalid_argument("device: expected 0.." + std::to_string(count - 1) + ", got " +
                                    std::to_string(device));
    }
    DeviceGuard guard(device_);
    check(cudaMallocHost(reinterpret_cast<void**>(&host_scalars_), 4 * sizeof(unsigned long long)),
          "cudaMallocHost(scalars)");
    check(cudaMallocHost(reinterpret_cast<void**>(&host_records_), kRecordsInFirstCopy * sizeof(CandidateRecord)),
          "cudaMallocHost(records)");
    check(cudaEventCreate(&start_), "cudaEventCreate");
    check(cudaEventCreate(&stop_), "cudaEventCreate");
}

CudaRanker::~CudaRanker() {
    DeviceGuard guard(device_);
    release();
    cudaFreeHost(host_scalars_);
    cudaFreeHost(host_records_);
    cudaEventDestroy(start_);
    cudaEventDestroy(stop_);
}

void CudaRanker::release() {
    void* buffers[] = {parent_, labels_, is_root_, dense_,  flags_,    staging_, area_,    sum_x_,
                       sum_y_,  sum_xx_, sum_xy_,  sum_yy_, xnor_,     contour_, min_x_,   min_y_,
                       max_x_,  max_y_,  s1_,      s2_,     keys_in_,  keys_out_, ids_in_, ids_out_,
                       records_, scalars_, cub_temp_};
    for (void* b : buffers) cudaFree(b);
    parent_ = labels_ = is_root_ = dense_ = nullptr;
    flags_ = nullptr;
    staging_ = nullptr;
    area_ = sum_x_ = sum_y_ = sum_xx_ = sum_xy_ = sum_yy_ = xnor_ = nullptr;
    contour_ = nullptr;
    min_x_ = min_y_ = max_x_ = max_y_ = nullptr;
    s1_ = s2_ = keys_in_ = keys_out_ = nullptr;
    ids_in_ = ids_out_ = nullptr;
    records_ = nullptr;
    scalars_ = nullptr;
    cub_temp_ = nullptr;
    capacity_ = comp_capacity_ = 0;
    cub_temp_bytes_ = 0;
}

void CudaRanker::reserve(int64_t pixels) {
    if (pixels <= capacity_) return;
    release();
    const int64_t comps = pixels / 2 + 2;  // 4-connectivity: at most ceil(pixels / 2) components
    device_alloc(&parent_, pixels, "cudaMalloc(parent)");
    device_alloc(&labels_, pixels, "cudaMalloc(labels)");
    device_alloc(&is_root_, pixels, "cudaMalloc(is_root)");
    device_alloc(&dense_, pixels, "cudaMalloc(dense)");
    device_alloc(&flags_, pixels, "cudaMalloc(flags)");
    device_alloc(reinterpret_cast<float**>(&staging_), 2 * pixels, "cudaMalloc(staging)");
    device_alloc(&area_, comps, "cudaMalloc(area)");
    device_alloc(&sum_x_, comps, "cudaMalloc(sum_x)");
    device_alloc(&sum_y_, comps, "cudaMalloc(sum_y)");
    device_alloc(&sum_xx_, comps, "cudaMalloc(sum_xx)");
    device_alloc(&sum_xy_, comps, "cudaMalloc(sum_xy)");
    device_alloc(&sum_yy_, comps, "cudaMalloc(sum_yy)");
    device_alloc(&xnor_, comps, "cudaMalloc(xnor)");
    device_alloc(&contour_, comps, "cudaMalloc(contour)");
    device_alloc(&min_x_, comps, "cudaMalloc(min_x)");
    device_alloc(&min_y_, comps, "cudaMalloc(min_y)");
    device_alloc(&max_x_, comps, "cudaMalloc(max_x)");
    device_alloc(&max_y_, comps, "cudaMalloc(max_y)");
    device_alloc(&s1_, comps, "cudaMalloc(s1)");
    device_alloc(&s2_, comps, "cudaMalloc(s2)");
    device_alloc(&keys_in_, comps, "cudaMalloc(keys)");
    device_alloc(&keys_out_, comps, "cudaMalloc(keys)");
    device_alloc(&ids_in_, comps, "cudaMalloc(ids)");
    device_alloc(&ids_out_, comps, "cudaMalloc(ids)");
    device_alloc(&records_, comps, "cudaMalloc(records)");
    device_alloc(&scalars_, 4, "cudaMalloc(scalars)");
    size_t scan_bytes = 0;
    size_t sort_bytes = 0;
    check(cub::DeviceScan::ExclusiveSum(nullptr, scan_bytes, is_root_, dense_, static_cast<int>(pixels)),
          "cub scan size");
    check(cub::DeviceRadixSort::SortPairsDescending(nullptr, sort_bytes, keys_in_, keys_out_, ids_in_, ids_out_,
                                                     static_cast<int>(comps)),
          "cub sort size");
    cub_temp_bytes_ = std::max(scan_bytes, sort_bytes);
    check(cudaMalloc(&cub_temp_, cub_temp_bytes_), "cudaMalloc(cub temp)");
    capacity_ = pixels;
    comp_capacity_ = comps;
}

RankOutput CudaRanker::rank_host(const void* y, const void* z, MapDtype y_dtype, MapDtype z_dtype, int height,
                                 int width, const RankParams& params, cudaStream_t stream, bool want_labels) {
    DeviceGuard guard(device_);
    const int64_t pixels = static_cast<int64_t>(height) * width;
    reserve(pixels);
    const size_t y_bytes = static_cast<size_t>(pixels) * (y_dtype == MapDtype::UInt8 ? 1 : 4);
    const size_t z_bytes = static_cast<size_t>(pixels) * (z_dtype == MapDtype::UInt8 ? 1 : 4);
    auto* y_dev = static_cast<uint8_t*>(staging_);
    auto* z_dev = y_dev + static_cast<size_t>(pixels) * 4;
    if (pixels > 0) {
        check(cudaMemcpyAsync(y_dev, y, y_bytes, cudaMemcpyHostToDevice, stream), "cudaMemcpy(boundaries)");
        check(cudaMemcpyAsync(z_dev, z, z_bytes, cudaMemcpyHostToDevice, stream), "cudaMemcpy(occlusions)");
    }
    const MapView yv{y_dev, y_dtype, width, 1};
    const MapView zv{z_dev, z_dtype, width, 1};
    return rank(yv, zv, height, width, params, stream, want_labels);
}

RankOutput CudaRanker::rank(const MapView& y, const MapView& z, int height, int width, const RankParams& params,
                            cudaStream_t stream, bool want_labels) {
    DeviceGuard guard(device_);
    if (height < 0 || width < 0) throw std::invalid_argument("height and width must be >= 0");
    const int64_t pixels = static_cast<int64_t>(height) * width;
    if (pixels >= INT_MAX || height > 65535) {
        throw std::invalid_argument("image too large: at most 65535 rows and 2^31 - 1 pixels");
    }
    if (params.patch < 1 || params.patch % 2 == 0) throw std::invalid_argument("patch must be odd and >= 1");
    RankOutput out;
    if (pixels == 0) return out;
    reserve(pixels);

    const Thresholds t{params.alpha, params.beta, threshold_u8(params.alpha), threshold_u8(params.beta)};
    const ComponentArrays comps{area_,  sum_x_, sum_y_, sum_xx_, sum_xy_, sum_yy_, xnor_,
                                contour_, min_x_, min_y_, max_x_, max_y_, s1_,  s2_};
    check(cudaEventRecord(start_, stream), "cudaEventRecord");

    const dim3 warp_block(kWarp, kRowsPerBlock);
    const dim3 pixel_grid(blocks_for(width, kWarp), blocks_for(height, kRowsPerBlock));
    init_kernel<<<pixel_grid, warp_block, 0, stream>>>(y, z, t, width, height, parent_, flags_);
    merge_kernel<<<pixel_grid, warp_block, 0, stream>>>(width, height, parent_, flags_);
    compress_kernel<<<blocks_for(pixels, kThreads), kThreads, 0, stream>>>(pixels, parent_, is_root_);
    size_t temp_bytes = cub_temp_bytes_;
    check(cub::DeviceScan::ExclusiveSum(cub_temp_, temp_bytes, is_root_, dense_, static_cast<int>(pixels), stream),
          "cub scan");
    count_kernel<<<1, 1, 0, stream>>>(pixels, dense_, is_root_, scalars_);
    relabel_kernel<<<blocks_for(pixels, kThreads), kThreads, 0, stream>>>(pixels, parent_, dense_, labels_);
    check(cudaGetLastError(), "labelling kernels");
    check(cudaMemcpyAsync(host_scalars_, scalars_, sizeof(unsigned long long), cudaMemcpyDeviceToHost, stream),
          "cudaMemcpy(count)");
    check(cudaStreamSynchronize(stream), "labelling");
    const int64_t n = static_cast<int64_t>(host_scalars_[0]);
    out.n_components = n;

    if (n > 0) {
        const unsigned comp_blocks = blocks_for(n, kThreads);
        reset_components_kernel<<<comp_blocks, kThreads, 0, stream>>>(n, comps);
        const dim3 stats_grid(blocks_for(blocks_for(width, kStatsChunk), kWarp), height);
        stats_kernel<<<stats_grid, kWarp, 0, stream>>>(width, height, labels_, comps);
        contour_kernel<<<pixel_grid, warp_block, 0, stream>>>(width, height, params.patch / 2, labels_, flags_,
                                                              comps);
        filter_kernel<<<comp_blocks, kThreads, 0, stream>>>(n, params.min_area_px, params.max_area_px, comps,
                                                            scalars_);
        const double patch_area = static_cast<double>(params.patch) * static_cast<double>(params.patch);
        score_kernel<<<comp_blocks, kThreads, 0, stream>>>(n, params.min_area_px, params.max_area_px, patch_area,
                                                           params.w1, params.w2, comps, scalars_, keys_in_,
                                                           ids_in_);
        temp_bytes = cub_temp_bytes_;
        check(cub::DeviceRadixSort::SortPairsDescending(cub_temp_, temp_bytes, keys_in_, keys_out_, ids_in_,
                                                         ids_out_, static_cast<int>(n), 0, 64, stream),
              "cub sort");
        gather_kernel<<<comp_blocks, kThreads, 0, stream>>>(n, keys_out_, ids_out_, comps, scalars_, records_);
        check(cudaGetLastError(), "ranking kernels");
        const int64_t first = std::min<int64_t>(n, kRecordsInFirstCopy);
        check(cudaMemcpyAsync(host_scalars_, scalars_, 2 * sizeof(unsigned long long), cudaMemcpyDeviceToHost,
                              stream),
              "cudaMemcpy(kept)");
        check(cudaMemcpyAsync(host_records_, records_, first * sizeof(CandidateRecord), cudaMemcpyDeviceToHost,
                              stream),
              "cudaMemcpy(records)");
        check(cudaStreamSynchronize(stream), "ranking");
        const int64_t kept = static_cast<int64_t>(host_scalars_[1]);
        out.ranked.resize(static_cast<size_t>(kept));
        std::copy(host_records_, host_records_ + std::min(kept, first), out.ranked.begin());
        if (kept > first) {
            check(cudaMemcpyAsync(out.ranked.data() + first, records_ + first,
                                  (kept - first) * sizeof(CandidateRecord), cudaMemcpyDeviceToHost, stream),
                  "cudaMemcpy(more records)");
        }
        if (kept > 0) {
            const CandidateRecord& best = out.ranked[0];
            out.crop_width = best.max_x - best.min_x + 1;
            out.crop_height = best.max_y - best.min_y + 1;
            out.best_crop.resize(static_cast<size_t>(out.crop_width) * out.crop_height);
            check(cudaMemcpy2DAsync(out.best_crop.data(), out.crop_width * sizeof(int32_t),
                                    labels_ + static_cast<int64_t>(best.min_y) * width + best.min_x,
                                    width * sizeof(int32_t), out.crop_width * sizeof(int32_t), out.crop_height,
                                    cudaMemcpyDeviceToHost, stream),
                  "cudaMemcpy(best crop)");
        }
    }
    if (want_labels) {
        out.labels.resize(static_cast<size_t>(pixels));
        check(cudaMemcpyAsync(out.labels.data(), labels_, pixels * sizeof(int32_t), cudaMemcpyDeviceToHost, stream),
              "cudaMemcpy(labels)");
    }
    check(cudaEventRecord(stop_, stream), "cudaEventRecord");
    check(cudaStreamSynchronize(stream), "result copy");
    check(cudaEventElapsedTime(&out.device_ms, start_, stop_), "cudaEventElapsedTime");
    return out;
}

}  // namespace binpick_cuda
