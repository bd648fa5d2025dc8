// Host replay of the CUDA ranking pipeline, for machines without a GPU.
//
// Runs the very kernel bodies of kernel_bodies.cuh sequentially, in the order the GPU
// launches them, with plain memory for atomics, std::stable_sort for CUB's stable radix
// sorts and std::partial_sum for its scans; the union-find merges run in a shuffled order
// (the GPU's is arbitrary). tests/test_cuda_host_check.py builds it with g++ and compares
// its output with the CPU hot path: what it cannot check is the hardware (warp ballot,
// atomics under contention, memory visibility), which the GPU test covers.
//
// Usage: host_check Y.raw Z.raw HEIGHT WIDTH Y_DTYPE Z_DTYPE ALPHA BETA MIN_AREA MAX_AREA
//                   PATCH W1 W2 MARGIN SEED LABELS_OUT.raw [padded]
// (padded: graph mode's capacity-sized steps and padded sorts)
// dtype: f32 or u8; maps row-major. Prints the ranked candidates (edge._hotpath's
// CANDIDATE_FIELDS order) one per line, then the grasp line; writes the CPU-numbered
// labels (int32) to LABELS_OUT.raw.
#include <algorithm>
#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <iostream>
#include <iterator>
#include <numeric>
#include <random>
#include <stdexcept>
#include <string>
#include <vector>

#include "kernel_bodies.cuh"

namespace bc = binpick_cuda;

namespace {

std::vector<char> read_file(const std::string& path) {
    std::ifstream in(path, std::ios::binary);
    if (!in) throw std::runtime_error("cannot read " + path);
    return std::vector<char>(std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>());
}

bc::MapDtype parse_dtype(const std::string& s) {
    if (s == "f32") return bc::MapDtype::Float32;
    if (s == "u8") return bc::MapDtype::UInt8;
    throw std::runtime_error("dtype: expected f32 or u8, got " + s);
}

// `padded`: replay graph mode, whose component- and pair-sized steps run over the worst-case
// capacities with the sort inputs padded (pad_sort_inputs) instead of over the true counts.
binpick::RankingResult replay(const bc::MapView& y, const bc::MapView& z, int64_t height, int64_t width,
                              const binpick::RankingParams& params, unsigned seed, bool padded,
                              std::vector<int32_t>& cpu_labels) {
    binpick::validate(params);
    const int64_t pixels = height * width;
    cpu_labels.assign(static_cast<size_t>(pixels), 0);
    if (pixels == 0) return {};
    const double alpha = params.alpha * (y.dtype == bc::MapDtype::UInt8 ? 255.0 : 1.0);
    const double beta = params.beta * (z.dtype == bc::MapDtype::UInt8 ? 255.0 : 1.0);

    std::vector<int32_t> parent(pixels), labels(pixels), is_root(pixels), dense(pixels), pair_count(pixels),
        pair_offset(pixels);
    std::vector<uint8_t> flags(pixels);
    // init, one 32-pixel segment at a time: the ballot is the segment's candidate mask.
    for (int64_t row = 0; row < height; ++row) {
        for (int64_t x0 = 0; x0 < width; x0 += 32) {
            uint32_t mask = 0;
            bool cand[32], occ[32];
            for (int lane = 0; lane < 32; ++lane) {
                const int64_t x = x0 + lane;
                cand[lane] = x < width && bc::is_candidate_pixel(y, x, row, alpha);
                occ[lane] = x < width && bc::is_occluding_pixel(z, x, row, beta);
                if (cand[lane]) mask |= 1u << lane;
            }
            for (int lane = 0; lane < 32 && x0 + lane < width; ++lane) {
                bc::init_pixel(y, alpha, width, x0, lane, row, cand[lane], occ[lane], mask, parent.data(),
                               flags.data());
            }
        }
    }
    // merge in a shuffled order
    std::vector<int64_t> order(pixels);
    std::iota(order.begin(), order.end(), 0);
    std::shuffle(order.begin(), order.end(), std::mt19937(seed));
    auto load = [&parent](int32_t i) { return parent[i]; };
    auto atomic_min = [&parent](int32_t i, int32_t v) {
        const int32_t old = parent[i];
        if (v < old) parent[i] = v;
        return old;
    };
    for (int64_t p : order) bc::merge_pixel(p % width, p / width, width, flags.data(), load, atomic_min);
    for (int64_t p : order) bc::compress_pixel(p, parent.data(), is_root.data(), load);
    for (int64_t p = 0; p < pixels; ++p) {
        bc::pair_count_pixel(p % width, p / width, width, height, parent.data(), flags.data(), pair_count.data());
    }
    std::exclusive_scan(is_root.begin(), is_root.end(), dense.begin(), 0);
    std::exclusive_scan(pair_count.begin(), pair_count.end(), pair_offset.begin(), 0);
    unsigned long long scalars[bc::kScalarCount] = {};
    bc::count_scalars(pixels, dense.data(), is_root.data(), pair_offset.data(), pair_count.data(), scalars);
    for (int64_t p = 0; p < pixels; ++p) bc::relabel_pixel(p, parent.data(), dense.data(), labels.data());
    const auto n = static_cast<int64_t>(scalars[0]);
    const auto pairs = static_cast<int64_t>(scalars[1]);
    if (n == 0) return {};

    const int64_t comp_items = padded ? bc::component_capacity(pixels) : n;
    const int64_t pair_items = padded ? bc::pair_capacity(pixels) : std::max<int64_t>(pairs, 1);
    const int pair_bits = bc::pair_key_bits(comp_items);
    // Poisoned like reused device memory: every value read must have been written first.
    std::vector<char> block(bc::Components::bytes(comp_items), 0x5a);
    const bc::Components c = bc::Components::carve(block.data(), comp_items);
    std::vector<int32_t> keys(static_cast<size_t>(pair_items), 0x5a5a5a5a);
    std::vector<double> terms(keys.size(), -7.0);
    for (int64_t i = 0; i < n; ++i) bc::reset_component(i, c);
    if (padded) {
        for (int64_t i = 0; i < std::max(comp_items, pair_items); ++i) {
            bc::pad_sort_inputs(i, comp_items, pair_items, bc::pair_key_sentinel(pair_bits), scalars, c, keys.data());
        }
    }
    for (int64_t row = 0; row < height; ++row) {
        for (int64_t xs = 0; xs < width; xs += 16) {
            bc::stats_chunk<bc::HostAtomics>(xs, std::min(width, xs + 16), row, width, labels.data(), c);
        }
    }
    const double min_px = binpick::area_bound_px(params.min_area, pixels);
    const double max_px = binpick::area_bound_px(params.max_area, pixels);
    for (int64_t i = 0; i < n; ++i) bc::filter_component<bc::HostAtomics>(i, min_px, max_px, c, scalars);
    std::exclusive_scan(c.keep, c.keep + comp_items, c.kept_rank, 0);
    for (int64_t i = 0; i < n; ++i) bc::axes_component(i, c);
    for (int64_t p = 0; p < pixels; ++p) {
        bc::contour_pixel<bc::HostAtomics>(p % width, p / width, width, height, params.patch / 2, labels.data(),
                                          flags.data(), pair_offset.data(), c, keys.data(), terms.data());
    }
    for (int64_t i = 0; i < 2 * (width + height); ++i) bc::edge_extent<bc::HostAtomics>(i, width, height, labels.data(), c);
    // CUB's stable radix sort of the pairs by component, over the key bits it is given.
    const int64_t sorted_pairs = padded ? pair_items : pairs;
    const int32_t key_mask = bc::pair_key_sentinel(pair_bits);  // all the sorted bits
    std::vector<int64_t> idx(static_cast<size_t>(sorted_pairs));
    std::iota(idx.begin(), idx.end(), 0);
    std::stable_sort(idx.begin(), idx.end(),
                     [&](int64_t a, int64_t b) { return (keys[a] & key_mask) < (keys[b] & key_mask); });
    std::vector<int32_t> keys_sorted(keys.size());
    std::vector<double> terms_sorted(terms.size());
    for (int64_t i = 0; i < sorted_pairs; ++i) {
        keys_sorted[i] = keys[idx[i]];
        terms_sorted[i] = terms[idx[i]];
    }
    for (int64_t i = 0; i < pairs; ++i) bc::segment_pair(i, pairs, keys_sorted.data(), c);
    for (int64_t i = 0; i < n; ++i)
        bc::score_component(i, params.w1, params.w2, params.score, terms_sorted.data(), c, scalars);
    // CUB's stable descending radix sort of the scores.
    std::vector<int32_t> ids(c.ids_in, c.ids_in + comp_items);
    std::stable_sort(ids.begin(), ids.end(), [&](int32_t a, int32_t b) { return c.keys_in[a] > c.keys_in[b]; });
    for (int64_t r = 0; r < comp_items; ++r) {
        c.ids_out[r] = ids[r];
        c.keys_out[r] = c.keys_in[ids[r]];
    }
    const auto kept = static_cast<int64_t>(scalars[3]);
    std::vector<bc::CandidateRecord> ranked(static_cast<size_t>(kept));
    for (int64_t r = 0; r < kept; ++r) bc::gather_record(r, c, ranked.data());
    for (int64_t p = 0; p < pixels; ++p) bc::cpu_label_pixel(p, labels.data(), c, cpu_labels.data());
    // The grasp's facts, as the GPU finds them: columns, rows (each with its own scratch), pick.
    const size_t box_capacity = static_cast<size_t>((height + 2) * (width + 2));
    std::vector<int64_t> g2(box_capacity, -7), s(box_capacity, -7), t(box_capacity, -7),
        row_best(static_cast<size_t>(2 * (height + 2)), -7);
    for (int64_t x = 0; x < width + 2; ++x) bc::grasp_column(x, width, labels.data(), scalars, ranked.data(), g2.data());
    for (int64_t y = 0; y < height + 2; ++y) {
        bc::grasp_row(y, scalars, ranked.data(), g2.data(), s.data(), t.data(), row_best.data());
    }
    bc::grasp_pick(width, height, params.margin, labels.data(), scalars, ranked.data(), row_best.data());
    return bc::finish_on_host(ranked, scalars);
}

}  // namespace

int main(int argc, char** argv) {
    if (argc != 18 && argc != 19) {
        std::cerr << "usage: host_check Y.raw Z.raw H W YDTYPE ZDTYPE ALPHA BETA MIN_AREA MAX_AREA PATCH W1 W2 "
                     "MARGIN SCORE SEED LABELS_OUT.raw [padded]\n";
        return 2;
    }
    try {
        const std::vector<char> ybuf = read_file(argv[1]), zbuf = read_file(argv[2]);
        const int64_t height = std::atoll(argv[3]), width = std::atoll(argv[4]);
        const bc::MapDtype yd = parse_dtype(argv[5]), zd = parse_dtype(argv[6]);
        binpick::RankingParams params;
        params.alpha = std::strtod(argv[7], nullptr);
        params.beta = std::strtod(argv[8], nullptr);
        params.min_area = std::strtod(argv[9], nullptr);
        params.max_area = std::strtod(argv[10], nullptr);
        params.patch = std::atoi(argv[11]);
        params.w1 = std::strtod(argv[12], nullptr);
        params.w2 = std::strtod(argv[13], nullptr);
        params.margin = std::strtod(argv[14], nullptr);
        params.score = binpick::score_rule_from_name(argv[15]);
        const auto seed = static_cast<unsigned>(std::strtoul(argv[16], nullptr, 10));
        const bc::MapView y{ybuf.data(), yd, width, 1};
        const bc::MapView z{zbuf.data(), zd, width, 1};
        std::vector<int32_t> labels;
        const bool padded = argc == 19 && std::string(argv[18]) == "padded";
        const binpick::RankingResult res = replay(y, z, height, width, params, seed, padded, labels);
        for (const binpick::CandidateResult& cr : res.candidates) {
            std::printf("%d %lld %d %d %d %d %.17g %.17g %lld %.17g %.17g %.17g %.17g %.17g %.17g %.17g\n", cr.label,
                        static_cast<long long>(cr.area), cr.bbox_x, cr.bbox_y, cr.bbox_w, cr.bbox_h, cr.centroid_u,
                        cr.centroid_v, static_cast<long long>(cr.contour_length), cr.s1, cr.s2, cr.occluded_share,
                        cr.score,
                        cr.angle_deg, cr.major_px, cr.minor_px);
        }
        const binpick::GraspResult& g = res.grasp;
        if (g.valid) {
            std::printf("grasp %.17g %.17g %.17g %.17g %.17g %.17g %s\n", g.u, g.v, g.angle_deg, g.major_px,
                        g.minor_px, g.score,
                        g.method == binpick::GraspMethod::inscribed ? "inscribed" : "centroid");
        }
        std::ofstream out(argv[17], std::ios::binary);
        out.write(reinterpret_cast<const char*>(labels.data()),
                  static_cast<std::streamsize>(labels.size() * sizeof(int32_t)));
    } catch (const std::exception& e) {
        std::cerr << "host_check: " << e.what() << "\n";
        return 1;
    }
    return 0;
}
