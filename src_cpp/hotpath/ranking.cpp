#include "ranking.hpp"

#include <algorithm>
#include <cmath>
#include <memory>
#include <sstream>
#include <type_traits>

#include "binarize.hpp"
#include "connected_components.hpp"
#include "contour_score.hpp"
#include "distance_transform.hpp"
#include "grasp.hpp"
#include "moments.hpp"

namespace binpick {
namespace {

void require(bool ok, const std::string& name, double value, const std::string& expected) {
    if (ok) return;
    std::ostringstream msg;
    msg << name << ": expected " << expected << ", got " << value;
    throw InvalidArgument(msg.str());
}

template <typename T>
constexpr double probability_scale() {
    return std::is_same<T, std::uint8_t>::value ? 255.0 : 1.0;
}

}  // namespace

void validate(const RankingParams& p) {
    require(std::isfinite(p.alpha) && p.alpha >= 0.0 && p.alpha <= 1.0, "alpha", p.alpha, "a number in [0, 1]");
    require(std::isfinite(p.beta) && p.beta >= 0.0 && p.beta <= 1.0, "beta", p.beta, "a number in [0, 1]");
    require(std::isfinite(p.min_area) && p.min_area >= 0.0, "min_area", p.min_area,
            "a finite number >= 0 (pixels if >= 1, image fraction if < 1)");
    require(!std::isnan(p.max_area) && p.max_area > 0.0, "max_area", p.max_area,
            "a number > 0 or inf (pixels if >= 1, image fraction if < 1)");
    require(p.patch >= 1 && p.patch % 2 == 1 && p.patch <= kMaxPatch, "patch", p.patch, "an odd integer in [1, 99]");
    require(std::isfinite(p.w1) && p.w1 >= 0.0, "w1", p.w1, "a finite number >= 0");
    require(std::isfinite(p.w2) && p.w2 >= 0.0, "w2", p.w2, "a finite number >= 0");
    require(std::isfinite(p.margin) && p.margin >= 0.0, "margin", p.margin, "a finite number >= 0 (pixels)");
    require(p.score == ScoreRule::thesis || p.score == ScoreRule::contour || p.score == ScoreRule::strict, "score",
            static_cast<double>(p.score), "0 (thesis), 1 (contour) or 2 (strict)");
}

void check_image_size(std::int64_t height, std::int64_t width, const char* name) {
    // Compared by division: height * width itself may not fit an int64.
    if (height <= 0 || width <= 0 || width <= kMaxPixels / height) return;
    std::ostringstream msg;
    msg << name << ": expected at most " << kMaxPixels << " pixels (labels are int32), got (" << height << ", "
        << width << ")";
    throw InvalidArgument(msg.str());
}

ScoreRule score_rule_from_name(const std::string& name) {
    if (name == "thesis") return ScoreRule::thesis;
    if (name == "contour") return ScoreRule::contour;
    if (name == "strict") return ScoreRule::strict;
    throw InvalidArgument("score: expected 'thesis', 'contour' or 'strict', got '" + name + "'");
}

GraspResult grasp_result(const CandidateResult& best, bool centroid_near_border, std::int64_t inscribed_u,
                         std::int64_t inscribed_v) {
    GraspResult g;
    g.valid = true;
    g.angle_deg = best.angle_deg;
    g.major_px = best.major_px;
    g.minor_px = best.minor_px;
    g.score = best.score;
    if (!centroid_near_border) {
        g.u = best.centroid_u;
        g.v = best.centroid_v;
        g.method = GraspMethod::centroid;
    } else {
        g.u = static_cast<double>(inscribed_u);
        g.v = static_cast<double>(inscribed_v);
        g.method = GraspMethod::inscribed;
    }
    return g;
}

GraspResult choose_grasp(const CandidateResult& best, const std::int32_t* labels, std::int64_t height,
                         std::int64_t width, std::int32_t component, std::int64_t origin_x,
                         std::int64_t origin_y, double margin) {
    // The candidate's centroid pixel and bounding box in `labels` coordinates.
    const std::int64_t cx = pixel_of(best.centroid_u) - origin_x;
    const std::int64_t cy = pixel_of(best.centroid_v) - origin_y;
    const std::int64_t min_x = best.bbox_x - origin_x, min_y = best.bbox_y - origin_y;
    const std::int64_t max_x = min_x + best.bbox_w - 1, max_y = min_y + best.bbox_h - 1;
    // The centroid's pixel is usable when no non-candidate pixel lies within `margin` of it
    // (a centroid outside the candidate fails this at distance 0).
    CandidateDistance dist;
    bool near_border;
    if (window_search_pays(margin, best.bbox_w + 2, best.bbox_h + 2)) {
        near_border = near_candidate_border(labels, height, width, component, cx, cy, margin);
    } else {
        dist = candidate_distance(labels, width, component, min_x, min_y, max_x, max_y);
        near_border = within_margin(dist.sq_dist[(cy - dist.box_y) * dist.box_w + (cx - dist.box_x)], margin);
    }
    if (!near_border) return grasp_result(best, false, 0, 0);
    // Inscribed-circle centre: the first (raster order) maximum of the distance transform.
    if (dist.sq_dist.empty())
        dist = candidate_distance(labels, width, component, min_x, min_y, max_x, max_y);
    std::int64_t best_d = -1;
    std::int64_t bx = cx, by = cy;
    for (std::int64_t y = 0; y < dist.box_h; ++y) {
        for (std::int64_t x = 0; x < dist.box_w; ++x) {
            const std::int64_t d = dist.sq_dist[y * dist.box_w + x];
            if (d > best_d) {
                best_d = d;
                bx = x + dist.box_x;
                by = y + dist.box_y;
            }
        }
    }
    return grasp_result(best, true, bx + origin_x, by + origin_y);
}

namespace {

// Whether `label` occurs in the n pixels from `p` on, `step` apart.
bool holds_label(const std::int32_t* p, std::int64_t n, std::int64_t step, std::int32_t label) {
    for (std::int64_t i = 0; i < n; ++i)
        if (p[i * step] == label) return true;
    return false;
}

// Whether the box (x, y, w, h), inside the image, is the tight box of `label`: its first and last
// row and column each hold the label (a label elsewhere in the image is not looked for).
bool is_tight_box(const std::int32_t* labels, std::int64_t width, std::int32_t label, std::int64_t x,
                  std::int64_t y, std::int64_t w, std::int64_t h) {
    const std::int32_t* top_left = labels + y * width + x;
    return holds_label(top_left, w, 1, label) && holds_label(top_left + (h - 1) * width, w, 1, label) &&
           holds_label(top_left, h, width, label) && holds_label(top_left + (w - 1), h, width, label);
}

std::string box_text(const CandidateResult& c) {
    std::ostringstream text;
    text << "(" << c.bbox_x << ", " << c.bbox_y << ", " << c.bbox_w << ", " << c.bbox_h << ")";
    return text.str();
}

}  // namespace

void check_grasp_request(const CandidateResult& c, const std::int32_t* labels, std::int64_t height,
                         std::int64_t width, double margin) {
    require(std::isfinite(margin) && margin >= 0.0, "margin", margin, "a finite number >= 0 (pixels)");
    if (c.label < 1) throw InvalidArgument("label: expected a candidate label >= 1, got " + std::to_string(c.label));
    // int64: x + w of two int32 values cannot overflow.
    const std::int64_t x = c.bbox_x, y = c.bbox_y, w = c.bbox_w, h = c.bbox_h;
    if (w < 1 || h < 1 || x < 0 || y < 0 || x + w > width || y + h > height) {
        std::ostringstream msg;
        msg << "bbox: expected a box (x, y, w, h) of at least 1x1 inside the (" << height << ", " << width
            << ") label image, got " << box_text(c);
        throw InvalidArgument(msg.str());
    }
    if (!is_tight_box(labels, width, c.label, x, y, w, h))
        throw InvalidArgument("bbox: expected the bounding box of label " + std::to_string(c.label) +
                              " in labels, got " + box_text(c));
    std::ostringstream range;
    range << "a number in [" << x << ", " << x + w - 1 << "] (inside the candidate's box)";
    require(c.centroid_u >= static_cast<double>(x) && c.centroid_u <= static_cast<double>(x + w - 1), "centroid_u",
            c.centroid_u, range.str());
    range.str("");
    range << "a number in [" << y << ", " << y + h - 1 << "] (inside the candidate's box)";
    require(c.centroid_v >= static_cast<double>(y) && c.centroid_v <= static_cast<double>(y + h - 1), "centroid_v",
            c.centroid_v, range.str());
}

namespace {

// The pixels of candidate `label` inside the box (x0, y0, w, h) of the image: a w x h
// contiguous crop holding `label` on the candidate's pixels and 0 elsewhere, from the runs.
std::vector<std::int32_t> paint_crop(const Components& comps, const std::vector<std::int32_t>& new_id,
                                     std::int32_t label, std::int64_t x0, std::int64_t y0, std::int64_t w,
                                     std::int64_t h) {
    std::vector<std::int32_t> crop(static_cast<std::size_t>(w * h), 0);
    const auto first = std::lower_bound(comps.runs.begin(), comps.runs.end(), y0,
                                        [](const Run& r, std::int64_t y) { return r.y < y; });
    for (auto it = first; it != comps.runs.end() && it->y < y0 + h; ++it) {
        if (new_id[static_cast<std::size_t>(it->label)] != label) continue;
        const std::int64_t a = std::max<std::int64_t>(it->x0, x0), b = std::min<std::int64_t>(it->x1, x0 + w);
        if (a >= b) continue;
        std::int32_t* row = crop.data() + (it->y - y0) * w - x0;
        std::fill(row + a, row + b, label);
    }
    return crop;
}

// choose_grasp without a full label image: the centroid test first reads only the window
// around the centroid (the usual case ends there), the whole box only when the inscribed
// centre is needed. Outside a crop counts as outside the candidate, as outside its box.
GraspResult grasp_from_runs(const Components& comps, const std::vector<std::int32_t>& new_id,
                            const CandidateResult& best, double margin) {
    if (window_search_pays(margin, best.bbox_w + 2, best.bbox_h + 2)) {
        const auto reach = static_cast<std::int64_t>(std::floor(margin));
        const std::int64_t cx = pixel_of(best.centroid_u), cy = pixel_of(best.centroid_v);
        const std::int64_t x0 = std::max<std::int64_t>(best.bbox_x, cx - reach);
        const std::int64_t y0 = std::max<std::int64_t>(best.bbox_y, cy - reach);
        const std::int64_t x1 = std::min<std::int64_t>(best.bbox_x + best.bbox_w - 1, cx + reach);
        const std::int64_t y1 = std::min<std::int64_t>(best.bbox_y + best.bbox_h - 1, cy + reach);
        const std::int64_t ww = x1 - x0 + 1, wh = y1 - y0 + 1;
        const std::vector<std::int32_t> window = paint_crop(comps, new_id, best.label, x0, y0, ww, wh);
        if (!near_candidate_border(window.data(), wh, ww, best.label, cx - x0, cy - y0, margin))
            return grasp_result(best, false, 0, 0);
    }
    const std::vector<std::int32_t> box =
        paint_crop(comps, new_id, best.label, best.bbox_x, best.bbox_y, best.bbox_w, best.bbox_h);
    return choose_grasp(best, box.data(), best.bbox_h, best.bbox_w, best.label, best.bbox_x, best.bbox_y, margin);
}

}  // namespace

template <typename TY, typename TZ>
RankingResult rank_candidates(const StridedView<TY>& boundaries, const StridedView<TZ>& occlusions,
                              const RankingParams& params, std::int32_t* labels_out) {
    validate(params);
    const std::int64_t h = boundaries.height, w = boundaries.width;
    check_image_size(h, w, "boundaries");
    RankingResult res;
    if (h == 0 || w == 0) return res;
    const std::size_t n_px = static_cast<std::size_t>(h * w);

    // Every byte is written by the thresholding: no zero-fill first. measure_contours reads
    // `occluding` 16 bytes at a time: 16 spare (zeroed) bytes after it.
    const std::unique_ptr<std::uint8_t[]> non_boundary(new std::uint8_t[n_px]),
        occluding(new std::uint8_t[n_px + kContourPadding]);
    std::fill(occluding.get() + n_px, occluding.get() + n_px + kContourPadding, 0);
    threshold_map(boundaries, params.alpha * probability_scale<TY>(), /*above=*/false, non_boundary.get());
    threshold_map(occlusions, params.beta * probability_scale<TZ>(), /*above=*/true, occluding.get());

    const Components comps = label_components(non_boundary.get(), h, w);

    // Area filter; survivors keep their raster order and are renumbered 1..N.
    const double min_px = area_bound_px(params.min_area, h * w);
    const double max_px = area_bound_px(params.max_area, h * w);
    std::vector<std::int32_t> new_id(comps.stats.size() + 1, 0);
    std::vector<const ComponentStats*> kept;
    for (std::size_t c = 0; c < comps.stats.size(); ++c) {
        const double area = static_cast<double>(comps.stats[c].area);
        if (area >= min_px && area <= max_px) {
            kept.push_back(&comps.stats[c]);
            new_id[c + 1] = static_cast<std::int32_t>(kept.size());
        }
    }
    // The label image is painted only when asked for: the scoring reads the runs.
    if (labels_out) paint_labels(comps, new_id, h, w, labels_out);
    const auto count = static_cast<std::int32_t>(kept.size());
    if (count == 0) return res;

    std::vector<double> angle(kept.size());
    for (std::size_t i = 0; i < kept.size(); ++i) angle[i] = principal_angle(*kept[i]);
    const std::vector<AxisExtents> extents = axis_extents(comps, new_id, angle);
    const std::vector<ContourMeasures> contour =
        measure_contours(comps, new_id, count, occluding.get(), h, w, params.patch);

    std::int64_t largest = 0;
    for (const ComponentStats* s : kept) largest = std::max(largest, s->area);

    res.candidates.resize(kept.size());
    for (std::size_t i = 0; i < kept.size(); ++i) {
        const ComponentStats& s = *kept[i];
        const ContourMeasures& m = contour[i + 1];
        CandidateResult& c = res.candidates[i];
        c.label = static_cast<std::int32_t>(i + 1);
        set_box_and_centroid(c, s);
        c.contour_length = m.contour_length;
        // No boundary pixel touches it: no evidence that it is on top.
        c.s1 = m.contour_length > 0 ? m.s1_sum / static_cast<double>(m.contour_length) : 0.0;
        c.s2 = static_cast<double>(s.area) / static_cast<double>(largest);
        c.occluded_share = m.contour_length > 0
                               ? static_cast<double>(m.occluded_side) / static_cast<double>(m.contour_length)
                               : 0.0;
        c.score = params.w1 * contour_term(params.score, c.s1, c.occluded_share) +
                  params.w2 * area_term(params.score, c.s2);
        c.angle_deg = angle[i] * (180.0 / kPi);
        const AxisExtents& e = extents[i + 1];
        c.major_px = e.max_a - e.min_a + 1.0;
        c.minor_px = e.max_b - e.min_b + 1.0;
    }
    // Best first; equal scores keep label (raster) order, so the result is deterministic.
    std::stable_sort(res.candidates.begin(), res.candidates.end(),
                     [](const CandidateResult& a, const CandidateResult& b) { return a.score > b.score; });
    const CandidateResult& best = res.candidates.front();
    if (labels_out) {
        res.grasp = choose_grasp(best, labels_out, h, w, best.label, 0, 0, params.margin);
    } else {
        res.grasp = grasp_from_runs(comps, new_id, best, params.margin);
    }
    return res;
}

template RankingResult rank_candidates<float, float>(const StridedView<float>&, const StridedView<float>&,
                                                     const RankingParams&, std::int32_t*);
template RankingResult rank_candidates<float, std::uint8_t>(const StridedView<float>&,
                                                            const StridedView<std::uint8_t>&,
                                                            const RankingParams&, std::int32_t*);
template RankingResult rank_candidates<std::uint8_t, float>(const StridedView<std::uint8_t>&,
                                                            const StridedView<float>&, const RankingParams&,
                                                            std::int32_t*);
template RankingResult rank_candidates<std::uint8_t, std::uint8_t>(const StridedView<std::uint8_t>&,
                                                                   const StridedView<std::uint8_t>&,
                                                                   const RankingParams&, std::int32_t*);

}  // namespace binpick
