// Python bindings of the CUDA ranking (`edge._hotpath_cuda`).
//
// Same return shape as `edge._hotpath.rank` (candidate table in CANDIDATE_FIELDS order,
// grasp tuple, labels), so edge/postprocess_cuda.py builds the same dataclasses as the
// CPU path. edge/postprocess_cuda.py turns numpy arrays, __cuda_array_interface__
// objects and DLPack tensors into the two calls below.
#include <pybind11/numpy.h>
#include <pybind11/pybind11.h>

#include <cuda_runtime_api.h>

#include <stdexcept>
#include <string>

#include "cuda_ranker.hpp"
#include "python/ranking_to_python.hpp"

namespace py = pybind11;
using binpick_cuda::CudaRanker;
using binpick_cuda::CudaRankOutput;
using binpick_cuda::MapDtype;
using binpick_cuda::MapView;

namespace {

MapDtype dtype_from_code(int code, const char* name) {
    if (code == 0) return MapDtype::Float32;
    if (code == 1) return MapDtype::UInt8;
    throw std::invalid_argument(std::string(name) + ": dtype code must be 0 (float32) or 1 (uint8), got " +
                                std::to_string(code));
}

// Device pointers handed in from Python are checked before any kernel reads them:
// a host pointer or another GPU's memory would otherwise be an illegal access.
void check_device_pointer(uintptr_t address, int device, const char* name) {
    cudaPointerAttributes attributes{};
    const cudaError_t status = cudaPointerGetAttributes(&attributes, reinterpret_cast<const void*>(address));
    if (status != cudaSuccess) {
        cudaGetLastError();  // clear the error of the failed query
        throw std::invalid_argument(std::string(name) + ": not a CUDA pointer (" + cudaGetErrorString(status) + ")");
    }
    if (attributes.type != cudaMemoryTypeDevice && attributes.type != cudaMemoryTypeManaged) {
        throw std::invalid_argument(std::string(name) + ": expected GPU memory, got a host pointer");
    }
    if (attributes.type == cudaMemoryTypeDevice && attributes.device != device) {
        throw std::invalid_argument(std::string(name) + ": memory is on CUDA device " +
                                    std::to_string(attributes.device) + ", the ranker runs on device " +
                                    std::to_string(device));
    }
}

py::tuple to_python(const CudaRankOutput& out, py::object labels) {
    return py::make_tuple(binpick_python::candidate_table(out.result),
                          binpick_python::grasp_tuple(out.result.grasp), labels, out.n_components,
                          out.device_ms);
}

py::tuple cuda_status() {
    int count = 0;
    const cudaError_t status = cudaGetDeviceCount(&count);
    if (status != cudaSuccess) {
        cudaGetLastError();
        return py::make_tuple(0, std::string(cudaGetErrorString(status)));
    }
    return py::make_tuple(count, count > 0 ? std::string("ok") : std::string("no CUDA device"));
}

}  // namespace

PYBIND11_MODULE(_hotpath_cuda, m) {
    m.doc() = "CUDA twin of edge._hotpath: candidates and occlusion-aware ranking with the maps on the GPU.";
    m.attr("CANDIDATE_FIELDS") = binpick_python::candidate_fields();
    // The RankingParams type the rank methods take is registered by the CPU module.
    py::module_::import("edge._hotpath");
    m.def("cuda_status", &cuda_status, "(device count, message): 0 and the CUDA error where no GPU is usable.");

    py::class_<CudaRanker>(m, "Ranker")
        .def(py::init<int, bool>(), py::arg("device") = 0, py::arg("graph") = false)
        .def_property_readonly("device", &CudaRanker::device)
        .def_property_readonly("graph", &CudaRanker::graph_mode)
        .def(
            "rank_device",
            [](CudaRanker& self, uintptr_t y_ptr, int y_dtype, int64_t y_row_stride, int64_t y_col_stride,
               uintptr_t z_ptr, int z_dtype, int64_t z_row_stride, int64_t z_col_stride, int64_t height,
               int64_t width, const binpick::RankingParams& params, uintptr_t stream, bool return_labels) {
                binpick::validate(params);
                if (height < 0 || width < 0) throw std::invalid_argument("height, width: expected >= 0");
                binpick::check_image_size(height, width, "boundaries");  // labels are int32, as on the CPU
                if (height * width > 0) {
                    check_device_pointer(y_ptr, self.device(), "boundaries");
                    check_device_pointer(z_ptr, self.device(), "occlusions");
                }
                const MapView y{reinterpret_cast<const void*>(y_ptr), dtype_from_code(y_dtype, "boundaries"),
                                y_row_stride, y_col_stride};
                const MapView z{reinterpret_cast<const void*>(z_ptr), dtype_from_code(z_dtype, "occlusions"),
                                z_row_stride, z_col_stride};
                const auto [labels_obj, labels] = binpick_python::labels_output(return_labels, height, width);
                CudaRankOutput out;
                {
                    py::gil_scoped_release release;
                    out = self.rank(y, z, height, width, params, reinterpret_cast<cudaStream_t>(stream), labels);
                }
                return to_python(out, labels_obj);
            },
            py::arg("y_ptr"), py::arg("y_dtype"), py::arg("y_row_stride"), py::arg("y_col_stride"), py::arg("z_ptr"),
            py::arg("z_dtype"), py::arg("z_row_stride"), py::arg("z_col_stride"), py::arg("height"),
            py::arg("width"), py::arg("params"), py::arg("stream") = 0, py::arg("return_labels") = false,
            "Rank maps already on this GPU (strides in elements; stream: a cudaStream_t as an integer).\n"
            "Returns (table, grasp, labels, n_components, device_ms), table and grasp as edge._hotpath.rank.")
        .def(
            "rank_host",
            [](CudaRanker& self, py::array y, py::array z, const binpick::RankingParams& params, uintptr_t stream,
               bool return_labels) {
                auto dtype_of = [](const py::array& a, const char* name) {
                    if (a.dtype().equal(py::dtype::of<float>())) return MapDtype::Float32;
                    if (a.dtype().equal(py::dtype::of<uint8_t>())) return MapDtype::UInt8;
                    throw std::invalid_argument(std::string(name) + ": expected float32 or uint8");
                };
                if (y.ndim() != 2 || z.ndim() != 2 || y.shape(0) != z.shape(0) || y.shape(1) != z.shape(1)) {
                    throw std::invalid_argument("boundaries, occlusions: expected two HxW arrays of the same shape");
                }
                if (!(y.flags() & py::array::c_style) || !(z.flags() & py::array::c_style)) {
                    throw std::invalid_argument("boundaries, occlusions: host arrays must be C-contiguous");
                }
                const MapDtype yd = dtype_of(y, "boundaries");
                const MapDtype zd = dtype_of(z, "occlusions");
                const int64_t height = y.shape(0);
                const int64_t width = y.shape(1);
                binpick::check_image_size(height, width, "boundaries");  // labels are int32, as on the CPU
                binpick::validate(params);
                const auto [labels_obj, labels] = binpick_python::labels_output(return_labels, height, width);
                CudaRankOutput out;
                {
                    py::gil_scoped_release release;
                    out = self.rank_host(y.data(), z.data(), yd, zd, height, width, params,
                                         reinterpret_cast<cudaStream_t>(stream), labels);
                }
                return to_python(out, labels_obj);
            },
            py::arg("boundaries"), py::arg("occlusions"), py::arg("params"), py::arg("stream") = 0, py::arg("return_labels") = false,
            "Rank C-contiguous host maps (copied to the GPU first); returns as rank_device.");
}
