// pybind11 binding of the hot path: `edge._hotpath.rank(...)`.
//
// Why this shape: one call per frame, arrays read in place through their
// strides, the GIL released for the whole computation, and the candidates
// returned as one float64 table (cheap to cross the language boundary);
// edge/postprocess.py turns them into typed dataclasses.
#include <pybind11/numpy.h>
#include <pybind11/pybind11.h>

#include <cstdint>
#include <limits>
#include <sstream>
#include <string>

#include "../hotpath/grasp.hpp"
#include "../hotpath/ranking.hpp"
#include "ranking_to_python.hpp"

namespace py = pybind11;
using binpick::StridedView;

namespace {

enum class MapType { float32, uint8 };

std::string type_name(const py::handle& obj) { return py::str(py::type::of(obj).attr("__name__")); }

py::array as_map(const py::handle& obj, const char* name) {
    if (!py::isinstance<py::array>(obj)) {
        std::ostringstream msg;
        msg << name << ": expected a 2-D numpy array of float32 or uint8, got "
            << type_name(obj);
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

// The params argument, or a one-line ValueError (pybind11's own is a TypeError listing the
// signature and the arrays' contents).
const binpick::RankingParams& params_arg(const py::handle& obj) {
    if (!py::isinstance<binpick::RankingParams>(obj))
        throw py::value_error("params: expected an edge._hotpath.RankingParams (edge.ranking.RankingParams.native()), "
                              "got " + type_name(obj));
    return obj.cast<const binpick::RankingParams&>();
}

py::tuple rank(const py::object& boundaries, const py::object& occlusions, const py::object& params,
               const py::object& return_labels_obj) {
    const binpick::RankingParams& p = params_arg(params);
    const int truth = PyObject_IsTrue(return_labels_obj.ptr());
    if (truth < 0) {
        PyErr_Clear();
        throw py::value_error("return_labels: expected a bool, got " + type_name(return_labels_obj));
    }
    const bool return_labels = truth == 1;
    const py::array y = as_map(boundaries, "boundaries");
    const py::array z = as_map(occlusions, "occlusions");
    if (y.shape(0) != z.shape(0) || y.shape(1) != z.shape(1)) {
        std::ostringstream msg;
        msg << "occlusions: expected the shape of boundaries (" << y.shape(0) << ", " << y.shape(1) << "), got ("
            << z.shape(0) << ", " << z.shape(1) << ")";
        throw py::value_error(msg.str());
    }
    try {  // before the labels are allocated
        binpick::check_image_size(y.shape(0), y.shape(1), "boundaries");
    } catch (const binpick::InvalidArgument& e) {
        throw py::value_error(e.what());
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

// Scalar arguments taken as Python objects and converted here, so that a wrong type or an
// integer beyond int32 gives a one-line ValueError naming the argument (pybind11's own
// conversion error is a TypeError listing the whole signature).
std::int32_t int32_arg(const py::handle& obj, const char* name) {
    if (PyBool_Check(obj.ptr()) || !PyIndex_Check(obj.ptr()))
        throw py::value_error(std::string(name) + ": expected an integer, got " + type_name(obj));
    const py::int_ value = py::reinterpret_steal<py::int_>(PyNumber_Index(obj.ptr()));
    if (!value) throw py::error_already_set();
    int overflow = 0;
    const long long v = PyLong_AsLongLongAndOverflow(value.ptr(), &overflow);
    if (overflow != 0 || v < std::numeric_limits<std::int32_t>::min() || v > std::numeric_limits<std::int32_t>::max())
        throw py::value_error(std::string(name) + ": expected an int32 integer, got " + std::string(py::str(value)));
    return static_cast<std::int32_t>(v);
}

double float_arg(const py::handle& obj, const char* name) {
    const double v = PyBool_Check(obj.ptr()) ? -1.0 : PyFloat_AsDouble(obj.ptr());
    if (PyBool_Check(obj.ptr()) || (v == -1.0 && PyErr_Occurred())) {
        PyErr_Clear();
        throw py::value_error(std::string(name) + ": expected a number (a float), got " + type_name(obj) + " " +
                              std::string(py::repr(obj)));
    }
    return v;
}

// The labels image of grasp_point: exactly what `rank(..., return_labels=True)` returns, an
// (H, W) int32 array (any strides; copied to C order when not already). Another dtype is
// refused rather than cast: int64 labels would wrap and float labels truncate silently.
py::array_t<std::int32_t> labels_arg(const py::handle& obj) {
    if (!py::isinstance<py::array>(obj))
        throw py::value_error("labels: expected a 2-D numpy array of int32 (the labels rank returns), got " +
                              type_name(obj));
    const py::array arr = py::reinterpret_borrow<py::array>(obj);
    if (!arr.dtype().equal(py::dtype::of<std::int32_t>()))
        throw py::value_error("labels: expected dtype int32 (the labels rank returns), got " +
                              std::string(py::str(arr.dtype())));
    if (arr.ndim() != 2)
        throw py::value_error("labels: expected a 2-D (H, W) int32 label image, got " + std::to_string(arr.ndim()) +
                              " dimensions");
    return py::array_t<std::int32_t, py::array::c_style>::ensure(arr);
}

// The grasp rule of `rank` applied to any candidate of a labels image returned by `rank`, so a
// caller that prefers another candidate than the best one (the appliance's ROI and
// occluding-side checks) gets the very point the ranking would have chosen for it.
py::tuple grasp_point(const py::object& labels_obj, const py::object& label, const py::object& centroid_u,
                      const py::object& centroid_v, const py::object& bbox_x, const py::object& bbox_y,
                      const py::object& bbox_w, const py::object& bbox_h, const py::object& margin_obj) {
    const py::array_t<std::int32_t> labels = labels_arg(labels_obj);
    const std::int64_t h = labels.shape(0), w = labels.shape(1);
    binpick::CandidateResult c;
    c.label = int32_arg(label, "label");
    c.centroid_u = float_arg(centroid_u, "centroid_u");
    c.centroid_v = float_arg(centroid_v, "centroid_v");
    c.bbox_x = int32_arg(bbox_x, "bbox_x");
    c.bbox_y = int32_arg(bbox_y, "bbox_y");
    c.bbox_w = int32_arg(bbox_w, "bbox_w");
    c.bbox_h = int32_arg(bbox_h, "bbox_h");
    const double margin = float_arg(margin_obj, "margin");
    try {
        binpick::check_grasp_request(c, labels.data(), h, w, margin);
    } catch (const binpick::InvalidArgument& e) {
        throw py::value_error(e.what());
    }
    binpick::GraspResult g;
    {
        py::gil_scoped_release release;
        g = binpick::choose_grasp(c, labels.data(), h, w, c.label, 0, 0, margin);
    }
    return py::make_tuple(g.u, g.v, g.method == binpick::GraspMethod::centroid ? "centroid" : "inscribed");
}

}  // namespace

PYBIND11_MODULE(_hotpath, m) {
    m.doc() = "binpick native hot path: candidates (4-connected components) and occlusion-aware ranking.";
    m.attr("CANDIDATE_FIELDS") = binpick_python::candidate_fields();
    binpick_python::bind_ranking_params(m);
    m.def("rank", &rank, py::arg("boundaries"), py::arg("occlusions"), py::arg("params"),
          py::arg("return_labels") = py::bool_(false),
          "Rank the instance candidates of one frame with `params` (a RankingParams).\n\n"
          "Returns (table, grasp, labels): table is an (N, len(CANDIDATE_FIELDS)) float64 array, best\n"
          "candidate first; grasp is (u, v, angle_deg, major_px, minor_px, score, method) of the best\n"
          "candidate or None; labels is an (H, W) int32 array or None. Raises ValueError on bad input.");
    m.def("grasp_point", &grasp_point, py::arg("labels"), py::arg("label"), py::arg("centroid_u"),
          py::arg("centroid_v"), py::arg("bbox_x"), py::arg("bbox_y"), py::arg("bbox_w"), py::arg("bbox_h"),
          py::arg("margin"),
          "The grasp `rank` would choose for the candidate `label` of `labels`: (u, v, method).\n\n"
          "labels is the (H, W) int32 image rank returns; bbox the candidate's bounding box in it and the\n"
          "centroid inside that box. Raises ValueError naming the argument on bad input.");
}
