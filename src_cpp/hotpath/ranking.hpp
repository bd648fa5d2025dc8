// Candidates and occlusion-aware ranking (thesis Section 4.4, DESIGN.md
// "Candidates and ranking"): the whole post-processing of one frame.
#pragma once

#include <cstdint>
#include <stdexcept>
#include <string>
#include <vector>

#include "host_device.hpp"
#include "image_view.hpp"

namespace binpick {

// How a candidate's contour term s1 and area term s2 make its score (docs/hotpath.md, "Score"):
//   thesis:  w1 * s1 + w2 * s2                      (thesis Eq. 4.10, DESIGN.md)
//   contour: w1 * s1 + w2 * [s2 >= kAreaGate]
//   strict:  w1 * max(0, s1 - b) + w2 * [s2 >= kAreaGate]  (the default)
// The contour rule keeps the area only as a gate: a candidate too small for its contour patches
// to say anything about it (they see mostly its surroundings) ranks after the others. The strict
// rule also subtracts b, the share of the contour pixels whose patch says the candidate is on the
// occluded side there (XNOR mean below kOccludedSideBelow): s1 is a mean over the whole contour, so a piece
// of an instance cut by one lying across it (its cut ends occluded, its long sides free) scored
// almost like a free instance; b counts those ends at full weight.
enum class ScoreRule : std::int32_t { thesis = 0, contour = 1, strict = 2 };

// The contour rule's gate on s2 (area / largest candidate's area).
constexpr double kAreaGate = 0.05;

// Every score rule's name, as the configuration spells it (`[ranking] score`).
inline const char* score_rule_name(ScoreRule rule) {
    return rule == ScoreRule::thesis ? "thesis" : rule == ScoreRule::contour ? "contour" : "strict";
}

// The largest XNOR patch: the window is a neighbourhood of one boundary pixel, far smaller than an
// instance, and its cost grows with its area for every contour pixel (99^2 ~ 10^4 reads each).
inline constexpr int kMaxPatch = 99;

// The ranking's parameters, their defaults and (in `validate`) their only limits: Python's
// edge.ranking.RankingParams and the configuration's [ranking] section are checked by building
// this struct through the binding (edge._hotpath.RankingParams), never by a table of their own.
struct RankingParams {
    double alpha = 0.1;      // boundary: Y > alpha (probability scale)
    double beta = 0.1;       // occluding side: Z > beta
    double min_area = 0.0005;  // >= 1: pixels; < 1: fraction of the image
    double max_area = 0.5;
    int patch = 9;           // odd side of the XNOR patch
    double w1 = 1.0, w2 = 1.0;
    double margin = 3.0;     // px: centroid closer than this to the border -> inscribed centre
    ScoreRule score = ScoreRule::strict;
};

// Every field, so that what depends on the parameters (the CUDA ranking's captured graphs)
// cannot miss one.
inline bool operator==(const RankingParams& a, const RankingParams& b) {
    return a.alpha == b.alpha && a.beta == b.beta && a.min_area == b.min_area && a.max_area == b.max_area &&
           a.patch == b.patch && a.w1 == b.w1 && a.w2 == b.w2 && a.margin == b.margin && a.score == b.score;
}

// An area bound in pixels: values >= 1 are pixels, values < 1 fractions of the image. The CUDA
// ranking filters with the same doubles.
inline double area_bound_px(double value, std::int64_t image_px) {
    return value >= 1.0 ? value : value * static_cast<double>(image_px);
}

// Raised for bad arguments; the binding turns it into Python's ValueError.
struct InvalidArgument : std::invalid_argument {
    using std::invalid_argument::invalid_argument;
};

void validate(const RankingParams& p);

// The largest image the ranking takes: labels, runs and their coordinates are int32, so every
// pixel index and every component number must fit one (2^31 - 1 pixels: 2 GB per uint8 map).
inline constexpr std::int64_t kMaxPixels = 2147483647;

// InvalidArgument naming `name` unless a height x width image has at most kMaxPixels pixels.
void check_image_size(std::int64_t height, std::int64_t width, const char* name);

// The rule named `name` ("thesis", "contour" or "strict"); InvalidArgument naming `score` otherwise.
ScoreRule score_rule_from_name(const std::string& name);

// The area term as the rule uses it: s2 itself (thesis) or its gate (contour). The CPU ranking,
// the CUDA ranking and its host replay all take it from here; the score is then w1*s1 + w2*term.
BINPICK_HD inline double area_term(ScoreRule rule, double s2) {
    if (rule == ScoreRule::thesis) return s2;
    return s2 >= kAreaGate ? 1.0 : 0.0;
}

// A contour pixel is on the candidate's occluded side when its patch's XNOR mean is below 0.4:
// on exact maps an occluded cut end agrees on about 1/3, a free edge on about 2/3; a network's
// blurred band pulls both towards 1/2, and 0.5 then flags free edges too (on the bundled model's
// maps of held-out scenes the top candidate was unoccluded in 35 % of frames at 0.5, 42 % at 0.4,
// 37 % with the contour score; exact maps: >= .95 in every domain at both). The comparison is
// the same in C++, CUDA and NumPy: all three divide the same integers by the same rule.
constexpr double kOccludedSideBelow = 0.4;
BINPICK_HD inline bool on_occluded_side(double xnor_mean) { return xnor_mean < kOccludedSideBelow; }

// The contour term as the rule uses it: s1 (thesis, contour), or s1 minus the occluded-side share
// `b`, floored at 0 (strict); the score is w1*term + w2*area_term. The floor keeps every score
// >= 0, which the CUDA ranking's sort sentinels (-1, -2) rely on.
BINPICK_HD inline double contour_term(ScoreRule rule, double s1, double b) {
    if (rule != ScoreRule::strict) return s1;
    const double t = s1 - b;
    return t > 0.0 ? t : 0.0;
}

struct CandidateResult {
    std::int32_t label = 0;
    std::int64_t area = 0;
    std::int32_t bbox_x = 0, bbox_y = 0, bbox_w = 0, bbox_h = 0;
    double centroid_u = 0, centroid_v = 0;
    std::int64_t contour_length = 0;
    double s1 = 0, s2 = 0;
    double occluded_share = 0;  // b: share of the contour on the candidate's occluded side
    double score = 0;
    double angle_deg = 0, major_px = 0, minor_px = 0;
};

// Box and centroid of a candidate from its component statistics (any record with min_x, min_y,
// max_x, max_y, sum_x, sum_y and area: the CPU labelling's and the CUDA ranking's alike), so
// both paths derive them by one rule.
template <typename Stats>
inline void set_box_and_centroid(CandidateResult& c, const Stats& s) {
    c.area = s.area;
    c.bbox_x = s.min_x;
    c.bbox_y = s.min_y;
    c.bbox_w = s.max_x - s.min_x + 1;
    c.bbox_h = s.max_y - s.min_y + 1;
    c.centroid_u = static_cast<double>(s.sum_x) / static_cast<double>(s.area);
    c.centroid_v = static_cast<double>(s.sum_y) / static_cast<double>(s.area);
}

enum class GraspMethod : int { centroid = 0, inscribed = 1 };

struct GraspResult {
    bool valid = false;
    double u = 0, v = 0, angle_deg = 0, major_px = 0, minor_px = 0, score = 0;
    GraspMethod method = GraspMethod::centroid;
};

struct RankingResult {
    std::vector<CandidateResult> candidates;  // best first
    GraspResult grasp;
};

// Runs the whole post-processing. `labels_out`, when not null, receives the
// h x w (contiguous) candidate labels: 1..N in raster order of each
// candidate's first pixel, 0 for boundary pixels and filtered components.
template <typename TY, typename TZ>
RankingResult rank_candidates(const StridedView<TY>& boundaries, const StridedView<TZ>& occlusions,
                              const RankingParams& params, std::int32_t* labels_out);

}  // namespace binpick
