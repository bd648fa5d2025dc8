// Python bindings of the CUDA ranking (`edge._hotpath_cuda`). The wrapper
// edge/postprocess_cuda.py turns numpy arrays, __cuda_array_interface__ objects and
// DLPack tensors into the calls below and the returned records into Candidates.
#include <pybind11/numpy.h>
#include <pybind11/pybind11.h>

#include <cuda_runtime_api.h>

#include <cstring>
#include <stdexcept>
#include <string>

#include "cuda_ranker.hpp"

namespace py = pybind11;
using binpick_cuda::CandidateRecord;
using binpick_cuda::CudaRanker;
using binpick_cuda::MapDtype;
using binpick_cuda::MapView;
using binpick_cuda::RankOutput;
using binpick_cuda::RankParams;

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
        cudaGetLastError();  // clear the sticky-free error state of a failed query
        throw std::invalid_argument(std::string(name) + ": not a CUDA pointer (" + cudaGetErrorString(status) + ")");
    }
    if (attributes.type != cudaMemoryTypeDevice && attributes.type != cudaMemoryTypeManaged) {
        throw std::invalid_argument(std::string(name) + ": expected device memory, got host memory");
    }
    if (attributes.type == cudaMemoryTypeDevice && attributes.device != device) {
        throw std::invalid_argument(std::string(name) + ": memory is on CUDA device " +
                                    std::to_string(attributes.device) + ", the ranker runs on device " +
                                    std::to_string(device));
    }
}

RankParams make_params(float alpha, float beta, uint64_t min_area_px, uint64_t max_area_px, int patch, double w1,
                       double w2) {
    RankParams p;
    p.alpha = alpha;
    p.beta = beta;
    p.min_area_px = min_area_px;
    p.max_area_px = max_area_px;
    p.patch = patch;
    p.w1 = w1;
    p.w2 = w2;
    return p;
}

py::dict to_python(RankOutput&& out, int height, int width) {
    py::dict result;
    result["n_components"] = out.n_components;
    result["records"] = py::bytes(reinterpret_cast<const char*>(out.ranked.data()),
                                  out.ranked.size() * sizeof(CandidateRecord));
    py::array_t<int32_t> crop({out.crop_height, out.crop_width});
    if (!out.best_crop.empty()) {
        std::memcpy(crop.mutable_data(), out.best_crop.data(), out.best_crop.size() * sizeof(int32_t));
    }
    result["best_crop"] = crop;
    if (!out.labels.empty()) {
        py::array_t<int32_t> labels({height, width});
        std::memcpy(labels.mutable_data(), out.labels.data(), out.labels.size() * sizeof(int32_t));
        result["labels"] = labels;
    } else {
        result["labels"] = py::none();
    }
    result["device_ms"] = out.device_ms;
    return result;
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
    m.doc() = "CUDA ranking of instance candidates (labelling, statistics, XNOR score, sort) on the GPU.";
    m.attr("RECORD_SIZE") = static_cast<int>(sizeof(CandidateRecord));
    m.attr("RECORDS_IN_FIRST_COPY") = binpick_cuda::kRecordsInFirstCopy;
    m.def("cuda_status", &cuda_status, "(device count, message): 0 and the CUDA error where no GPU is usable.");

    py::class_<CudaRanker>(m, "Ranker")
        .def(py::init<int>(), py::arg("device") = 0)
        .def_property_readonly("device", &CudaRanker::device)
        .def(
            "rank_device",
            [](CudaRanker& self, uintptr_t y_ptr, int y_dtype, int64_t y_row_stride, int64_t y_col_stride,
               uintptr_t z_ptr, int z_dtype, int64_t z_row_stride, int64_t z_col_stride, int height, int width,
               float alpha, float beta, uint64_t min_area_px, uint64_t max_area_px, int patch, double w1, double w2,
               uintptr_t stream, bool return_labels) {
                const int64_t pixels = static_cast<int64_t>(height) * width;
                if (pixels > 0) {
                    check_device_pointer(y_ptr, self.device(), "boundaries");
                    check_device_pointer(z_ptr, self.device(), "occlusions");
                }
                const MapView y{reinterpret_cast<const void*>(y_ptr), dtype_from_code(y_dtype, "boundaries"),
                                y_row_stride, y_col_stride};
                const MapView z{reinterpret_cast<const void*>(z_ptr), dtype_from_code(z_dtype, "occlusions"),
                                z_row_stride, z_col_stride};
                const RankParams params = make_params(alpha, beta, min_area_px, max_area_px, patch, w1, w2);
                RankOutput out;
                {
                    py::gil_scoped_release release;
                    out = self.rank(y, z, height, width, params, reinterpret_cast<cudaStream_t>(stream),
                                    return_labels);
                }
                return to_python(std::move(out), height, width);
            },
            py::arg("y_ptr"), py::arg("y_dtype"), py::arg("y_row_stride"), py::arg("y_col_stride"), py::arg("z_ptr"),
            py::arg("z_dtype"), py::arg("z_row_stride"), py::arg("z_col_stride"), py::arg("height"),
            py::arg("width"), py::arg("alpha"), py::arg("beta"), py::arg("min_area_px"), py::arg("max_area_px"),
            py::arg("patch"), py::arg("w1"), py::arg("w2"), py::arg("stream") = 0, py::arg("return_labels") = false,
            "Rank maps already on this GPU (strides in elements; stream is a cudaStream_t as an integer).")
        .def(
            "rank_host",
            [](CudaRanker& self, py::array y, py::array z, float alpha, float beta, uint64_t min_area_px,
               uint64_t max_area_px, int patch, double w1, double w2, uintptr_t stream, bool return_labels) {
                auto dtype_of = [](const py::array& a, const char* name) {
                    if (a.dtype().is(py::dtype::of<float>())) return MapDtype::Float32;
                    if (a.dtype().is(py::dtype::of<uint8_t>())) return MapDtype::UInt8;
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
                const int height = static_cast<int>(y.shape(0));
                const int width = static_cast<int>(y.shape(1));
                const RankParams params = make_params(alpha, beta, min_area_px, max_area_px, patch, w1, w2);
                RankOutput out;
                {
                    py::gil_scoped_release release;
                    out = self.rank_host(y.data(), z.data(), yd, zd, height, width, params,
                                         reinterpret_cast<cudaStream_t>(stream), return_labels);
                }
                return to_python(std::move(out), height, width);
            },
            py::arg("boundaries"), py::arg("occlusions"), py::arg("alpha"), py::arg("beta"), py::arg("min_area_px"),
            py::arg("max_area_px"), py::arg("patch"), py::arg("w1"), py::arg("w2"), py::arg("stream") = 0,
            py::arg("return_labels") = false, "Rank C-contiguous host maps (copied to the GPU first).");
}
