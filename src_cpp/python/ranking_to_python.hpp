// A RankingResult as Python sees it, shared by edge._hotpath (hotpath_module.cpp) and
// edge._hotpath_cuda (src_cpp/cuda/module.cpp), so that both return the same candidate
// table and grasp tuple: one float64 row per candidate in CANDIDATE_FIELDS order, best first.
#pragma once

#include <pybind11/numpy.h>
#include <pybind11/pybind11.h>

#include <string>

#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <utility>

#include "../hotpath/ranking.hpp"

namespace binpick_python {

// The patch argument as an int. An integer beyond int's range is reported here, naming the
// field as validate does, rather than by pybind11's multi-line TypeError (a Python int has no
// bound: RankingParams(patch=2**40) reached the binding).
inline int patch_arg(const pybind11::handle& obj) {
    namespace py = pybind11;
    if (PyBool_Check(obj.ptr()) || !PyIndex_Check(obj.ptr()))
        throw py::value_error("patch: expected an odd integer, got " +
                              std::string(py::str(py::type::of(obj).attr("__name__"))));
    const py::int_ value = py::reinterpret_steal<py::int_>(PyNumber_Index(obj.ptr()));
    if (!value) throw py::error_already_set();
    int overflow = 0;
    const long long v = PyLong_AsLongLongAndOverflow(value.ptr(), &overflow);
    if (overflow != 0 || v < 1 || v > binpick::kMaxPatch)
        throw py::value_error("patch: expected an odd integer in [1, " + std::to_string(binpick::kMaxPatch) +
                              "], got " + std::string(py::str(value)));
    return static_cast<int>(v);
}

// edge._hotpath.RankingParams: the C++ struct itself, built only through `validate`, so the
// parameters Python holds are the ones the ranking accepts (one set of limits, in ranking.cpp).
// Read-only: a changed value would skip the checks. Registered once, by edge._hotpath;
// edge._hotpath_cuda imports that module and takes the same type.
inline void bind_ranking_params(pybind11::module_& m) {
    namespace py = pybind11;
    const binpick::RankingParams d{};
    py::class_<binpick::RankingParams>(m, "RankingParams",
                                       "Validated ranking parameters (see edge.ranking.RankingParams).")
        .def(py::init([](double alpha, double beta, double min_area, double max_area, const py::object& patch,
                         double w1, double w2, double margin, const std::string& score) {
                 binpick::RankingParams p{alpha, beta, min_area, max_area, patch_arg(patch), w1, w2, margin};
                 try {
                     p.score = binpick::score_rule_from_name(score);
                     binpick::validate(p);
                 } catch (const binpick::InvalidArgument& e) {
                     throw py::value_error(e.what());
                 }
                 return p;
             }),
             py::kw_only(), py::arg("alpha") = d.alpha, py::arg("beta") = d.beta, py::arg("min_area") = d.min_area,
             py::arg("max_area") = d.max_area, py::arg("patch") = d.patch, py::arg("w1") = d.w1,
             py::arg("w2") = d.w2, py::arg("margin") = d.margin,
             py::arg("score") = std::string(binpick::score_rule_name(d.score)))
        .def_readonly("alpha", &binpick::RankingParams::alpha)
        .def_readonly("beta", &binpick::RankingParams::beta)
        .def_readonly("min_area", &binpick::RankingParams::min_area)
        .def_readonly("max_area", &binpick::RankingParams::max_area)
        .def_readonly("patch", &binpick::RankingParams::patch)
        .def_readonly("w1", &binpick::RankingParams::w1)
        .def_readonly("w2", &binpick::RankingParams::w2)
        .def_readonly("margin", &binpick::RankingParams::margin)
        .def_property_readonly("score",
                               [](const binpick::RankingParams& p) { return binpick::score_rule_name(p.score); })
        .def("__eq__", [](const binpick::RankingParams& a, const binpick::RankingParams& b) { return a == b; });
    m.attr("MAX_PATCH") = binpick::kMaxPatch;
    m.attr("MAX_PIXELS") = binpick::kMaxPixels;
}

inline constexpr const char* kCandidateFields[] = {
    "label", "area", "bbox_x", "bbox_y", "bbox_w", "bbox_h", "centroid_u", "centroid_v", "contour_length",
    "s1", "s2", "occluded_share", "score", "angle_deg", "major_px", "minor_px"};
inline constexpr int kNumFields = sizeof(kCandidateFields) / sizeof(kCandidateFields[0]);

// The module's CANDIDATE_FIELDS tuple.
inline pybind11::tuple candidate_fields() {
    pybind11::tuple fields(kNumFields);
    for (int i = 0; i < kNumFields; ++i) fields[i] = pybind11::str(kCandidateFields[i]);
    return fields;
}

// The optional labels output: a new (height, width) int32 array and its buffer where wanted,
// else None and null.
inline std::pair<pybind11::object, std::int32_t*> labels_output(bool wanted, pybind11::ssize_t height,
                                                                pybind11::ssize_t width) {
    if (!wanted) return {pybind11::none(), nullptr};
    pybind11::array_t<std::int32_t> labels({height, width});
    std::int32_t* data = labels.mutable_data();
    return {std::move(labels), data};
}

// The (N, len(CANDIDATE_FIELDS)) float64 candidate table.
inline pybind11::array_t<double> candidate_table(const binpick::RankingResult& res) {
    const auto n = static_cast<pybind11::ssize_t>(res.candidates.size());
    pybind11::array_t<double> table({n, static_cast<pybind11::ssize_t>(kNumFields)});
    double* t = table.mutable_data();
    for (pybind11::ssize_t i = 0; i < n; ++i) {
        const binpick::CandidateResult& c = res.candidates[static_cast<std::size_t>(i)];
        const double row[kNumFields] = {
            static_cast<double>(c.label), static_cast<double>(c.area), static_cast<double>(c.bbox_x),
            static_cast<double>(c.bbox_y), static_cast<double>(c.bbox_w), static_cast<double>(c.bbox_h),
            c.centroid_u, c.centroid_v, static_cast<double>(c.contour_length), c.s1, c.s2, c.occluded_share, c.score,
            c.angle_deg, c.major_px, c.minor_px};
        std::copy(row, row + kNumFields, t + i * kNumFields);
    }
    return table;
}

// (u, v, angle_deg, major_px, minor_px, score, method) of the best candidate, or None without a grasp.
inline pybind11::object grasp_tuple(const binpick::GraspResult& g) {
    if (!g.valid) return pybind11::none();
    return pybind11::make_tuple(g.u, g.v, g.angle_deg, g.major_px, g.minor_px, g.score,
                                g.method == binpick::GraspMethod::inscribed ? "inscribed" : "centroid");
}

}  // namespace binpick_python
