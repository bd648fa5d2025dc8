// pybind11 binding of the hot path: `edge._hotpath.rank(...)`.
//
// Why this shape: one call per frame, arrays read in place through their
// strides, the GIL released for the whole computation, and the candidates
// returned as one float64 table (cheap to cross the language boundary);
// edge/postprocess.py turns them into typed dataclasses.
#include <pybind11/numpy.h>
#include <pybind11/pybind11.h>

#include <cstdint>
#include <sstream>
#include <string>

#include "../hotpath/grasp.hpp"
#include "../hotpath/ranking.hpp"
#include "ranking_to_python.hpp"

namespace py = pybind11;
using binpick::StridedView;

namespace {

enum class MapType { float32, uint8 };

py::array as_map(const py::handle& obj, const char* name) {
    if (!py::isinstance<py::array>(obj)) {
        std::ostringstream msg;
        msg << name << ": expected a 2-D numpy array of float32 or uint8, got "
            << std::string(py::str(py::type::of(obj).attr("__name__")));
        throw py::value_error(msg.str());
    }
    py::array arr = py::reinterpret_borrow<py::array>(obj);
    const bool f32 = arr.dtype().is(py::dtype::of<float>()) || arr.dtype().equal(py::dtype::of<float>());
    const bool u8 = arr.dtype().equal(py::dtype::of<std::uint8_t>());
    if (!f32 && !u8) {
        throw py::value_error(std::string(name) + ": expected dtype float32 (probabilities in [0, 1]) or " +
                              "uint8 (probability*255), got " + std::string(py::str(arr.dtype())));
    }
    if (arr.ndim() != 2) {
        throw py::value_error(std::string(name) + ": expected a 2-D (H, W) map, got " +
                              std::to_string(arr.ndim()) + " dimensions");
    }
    // Misaligned float32 views (e.g. from a byte buffer at an odd offset) cannot be read in
    // place portably; copy those (rare) into an aligned array.
    const auto item = static_cast<std::uintptr_t>(arr.itemsize());
    const bool aligned = reinterpret_cast<std::uintptr_t>(arr.data()) % item == 0 &&
                         static_cast<std::uintptr_t>(arr.strides(0)) % item == 0 &&
                         static_cast<std::uintptr_t>(arr.strides(1)) % item == 0;
    if (!aligned) {
        py::list requirements;
        requirements.append("C");
        requirements.append("A");
        arr = py::module_::import("numpy").attr("require")(arr, py::none(), requirements);
    }
    return arr;
}

MapType type_of(const py::array& arr) {
    return arr.dtype().equal(py::dtype::of<float>()) ? MapType::float32 : MapType::uint8;
}

template <typename T>
StridedView<T> view_of(const py::array& arr) {
    StridedView<T> v;
    v.data = static_cast<const char*>(arr.data());
    v.height = arr.shape(0);
    v.width = arr.shape(1);
    v.row_stride = arr.strides(0);
    v.col_stride = arr.strides(1);
    return v;
}

template <typename TY, typename TZ>
binpick::RankingResult run(const py::array& y, const py::array& z, const binpick::RankingParams& p,
                           std::int32_t* labels) {
    const StridedView<TY> vy = view_of<TY>(y);
    const StridedView<TZ> vz = view_of<TZ>(z);
    py::gil_scoped_release release;
    return binpick::rank_candidates<TY, TZ>(vy, vz, p, labels);
}

py::tuple rank(const py::object& boundaries, const py::object& occlusions, const binpick::RankingParams& p,
               bool return_labels) {
    const py::array y = as_map(boundaries, "boundaries");
    const py::array z = as_map(occlusions, "occlusions");
    if (y.shape(0) != z.shape(0) || y.shape(1) != z.shape(1)) {
        std::ostringstream msg;
        msg << "occlusions: expected the shape of boundaries (" << y.shape(0) << ", " << y.shape(1) << "), got ("
            << z.shape(0) << ", " << z.shape(1) << ")";
        throw py::value_error(msg.str());
    }
    const auto [labels_obj, labels] = binpick_python::labels_output(return_labels, y.shape(0), y.shape(1));

    binpick::RankingResult res;
    const MapType ty = type_of(y), tz = type_of(z);
    if (ty == MapType::float32 && tz == MapType::float32)
        res = run<float, float>(y, z, p, labels);
    else if (ty == MapType::float32)
        res = run<float, std::uint8_t>(y, z, p, labels);
    else if (tz == MapType::float32)
        res = run<std::uint8_t, float>(y, z, p, labels);
    else
        res = run<std::uint8_t, std::uint8_t>(y, z, p, labels);

    return py::make_tuple(binpick_python::candidate_table(res), binpick_python::grasp_tuple(res.grasp),
                          labels_obj);
}

// The grasp rule of `rank` applied to any candidate of a labels image returned by `rank`, so a
// caller that prefers another candidate than the best one (the appliance's ROI and
// occluding-side checks) gets the very point the ranking would have chosen for it.
py::tuple grasp_point(const py::array_t<std::int32_t, py::array::c_style | py::array::forcecast>& labels,
                      std::int32_t label, double centroid_u, double centroid_v, std::int32_t bbox_x,
                      std::int32_t bbox_y, std::int32_t bbox_w, std::int32_t bbox_h, double margin) {
    if (labels.ndim() != 2) throw py::value_error("labels: expected a 2-D (H, W) int32 label image");
    const std::int64_t h = labels.shape(0), w = labels.shape(1);
    if (bbox_w < 1 || bbox_h < 1 || bbox_x < 0 || bbox_y < 0 || bbox_x + bbox_w > w || bbox_y + bbox_h > h)
        throw py::value_error("bbox: expected a box of at least 1x1 inside the label image");
    if (!(margin >= 0)) throw py::value_error("margin: expected a number >= 0");
    binpick::CandidateResult c;
    c.label = label;
    c.centroid_u = centroid_u;
    c.centroid_v = centroid_v;
    c.bbox_x = bbox_x;
    c.bbox_y = bbox_y;
    c.bbox_w = bbox_w;
    c.bbox_h = bbox_h;
    binpick::GraspResult g;
    {
        py::gil_scoped_release release;
        g = binpick::choose_grasp(c, labels.data(), h, w, label, 0, 0, margin);
    }
    return py::make_tuple(g.u, g.v, g.method == binpick::GraspMethod::centroid ? "centroid" : "inscribed");
}

}  // namespace

PYBIND11_MODULE(_hotpath, m) {
    m.doc() = "binpick native hot path: candidates (4-connected components) and occlusion-aware ranking.";
    m.attr("CANDIDATE_FIELDS") = binpick_python::candidate_fields();
    binpick_python::bind_ranking_params(m);
    m.def("rank", &rank, py::arg("boundaries"), py::arg("occlusions"), py::arg("params"),
          py::arg("return_labels") = false,
          "Rank the instance candidates of one frame with `params` (a RankingParams).\n\n"
          "Returns (table, grasp, labels): table is an (N, len(CANDIDATE_FIELDS)) float64 array, best\n"
          "candidate first; grasp is (u, v, angle_deg, major_px, minor_px, score, method) of the best\n"
          "candidate or None; labels is an (H, W) int32 array or None. Raises ValueError on bad input.");
    m.def("grasp_point", &grasp_point, py::arg("labels"), py::arg("label"), py::arg("centroid_u"),
          py::arg("centroid_v"), py::arg("bbox_x"), py::arg("bbox_y"), py::arg("bbox_w"), py::arg("bbox_h"),
          py::arg("margin"),
          "The grasp `rank` would choose for the candidate `label` of `labels`: (u, v, method).");
}
