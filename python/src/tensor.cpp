#include "tensor.h"

#include <pybind11/numpy.h>
#include <pybind11/stl.h>

#include <cstring>

#include "core/error.h"
#include "core/tensor.h"
#include "dlpack_abi.h"
#include "owner.h"

namespace fp8llm::python {
namespace py = pybind11;

namespace {

DLDataType dl_dtype(const Tensor& t) {
  switch (t.dtype) {
    case DType::F32:
      return {kDLFloat, 32, 1};
    case DType::F16:
      return {kDLFloat, 16, 1};
    case DType::BF16:
      return {kDLBfloat, 16, 1};
    case DType::F8_E4M3:
    case DType::U8:
      return {kDLUInt, 8, 1};
    default:
      fail("tensor '{}': {} has no DLPack type", t.name, dtype_name(t.dtype));
  }
}

// An exported tensor: the DLPack struct, the shape and strides it points at, and the owner of
// the memory, all freed by the consumer's call of the deleter.
template <typename Managed>
struct Export {
  Managed managed{};
  std::vector<int64_t> shape, strides;
  std::shared_ptr<void> owner;
};

template <typename Managed>
Managed* export_of(const Tensor& t) {
  auto* e = new Export<Managed>;
  e->shape = t.shape;
  e->strides = t.strides;
  e->owner = t.owner;
  DLTensor& d = e->managed.dl_tensor;
  d.data = t.data;
  d.device = {t.device == Device::Cuda ? kDLCUDA : kDLCPU, 0};
  d.ndim = static_cast<int32_t>(t.shape.size());
  d.dtype = dl_dtype(t);
  d.shape = e->shape.data();
  d.strides = e->strides.data();
  d.byte_offset = 0;
  e->managed.manager_ctx = e;
  e->managed.deleter = [](Managed* self) {
    delete static_cast<Export<Managed>*>(self->manager_ctx);
  };
  return &e->managed;
}

// A capsule nobody consumed still owns its tensor (a consumer renames it "used_...").
void legacy_capsule_gone(PyObject* capsule) {
  if (PyCapsule_IsValid(capsule, "dltensor") == 0) return;
  auto* m = static_cast<DLManagedTensor*>(PyCapsule_GetPointer(capsule, "dltensor"));
  m->deleter(m);
}
void versioned_capsule_gone(PyObject* capsule) {
  if (PyCapsule_IsValid(capsule, "dltensor_versioned") == 0) return;
  auto* m =
      static_cast<DLManagedTensorVersioned*>(PyCapsule_GetPointer(capsule, "dltensor_versioned"));
  m->deleter(m);
}

py::object dlpack(const Tensor& t, const py::object& stream, const py::object& max_version,
                  const py::object& dl_device, const py::object& copy) {
  // Nothing is pending on any stream: every write to the weights has finished when its call
  // returns, so `stream` needs no synchronization.
  (void)stream;
  if (!copy.is_none() && copy.cast<bool>())
    throw py::buffer_error("fp8llm.Tensor: __dlpack__(copy=True) is not offered (views only)");
  const int32_t type = t.device == Device::Cuda ? kDLCUDA : kDLCPU;
  if (!dl_device.is_none()) {
    const auto want = dl_device.cast<std::pair<int32_t, int32_t>>();
    if (want.first != type || want.second != 0)
      throw py::buffer_error("fp8llm.Tensor: cannot export to another device");
  }
  const bool versioned =
      !max_version.is_none() && max_version.cast<std::pair<uint32_t, uint32_t>>().first >= 1;
  PyObject* capsule = nullptr;
  if (versioned) {
    DLManagedTensorVersioned* m = export_of<DLManagedTensorVersioned>(t);
    m->version = {1, 0};
    capsule = PyCapsule_New(m, "dltensor_versioned", versioned_capsule_gone);
    if (capsule == nullptr) m->deleter(m);
  } else {
    DLManagedTensor* m = export_of<DLManagedTensor>(t);
    capsule = PyCapsule_New(m, "dltensor", legacy_capsule_gone);
    if (capsule == nullptr) m->deleter(m);
  }
  if (capsule == nullptr) throw py::error_already_set();
  return py::reinterpret_steal<py::object>(capsule);
}

py::dtype numpy_dtype(DType d) {
  switch (d) {
    case DType::F32:
      return py::dtype::of<float>();
    case DType::F16:
      return py::dtype("float16");
    case DType::BF16:
      return py::dtype::of<uint16_t>();  // the bits; numpy has no bfloat16
    default:
      return py::dtype::of<uint8_t>();  // F8_E4M3 codes
  }
}

}  // namespace

Tensor Tensor::owning(std::string name, DType dtype, std::vector<int64_t> shape,
                      std::vector<std::byte> bytes) {
  auto held = std::make_shared<std::vector<std::byte>>(std::move(bytes));
  Tensor t;
  t.name = std::move(name);
  t.dtype = dtype;
  t.shape = std::move(shape);
  t.strides.assign(t.shape.size(), 1);
  for (size_t d = t.shape.size(); d-- > 1;) t.strides[d - 1] = t.strides[d] * t.shape[d];
  t.data = held->data();
  t.owner = std::move(held);
  return t;
}

bool Tensor::contiguous() const {
  int64_t expected = 1;
  for (size_t d = shape.size(); d-- > 0;) {
    if (shape[d] != 1 && strides[d] != expected) return false;
    expected *= shape[d];
  }
  return true;
}

uint64_t Tensor::nbytes() const {
  return static_cast<uint64_t>(num_elements(shape)) * dtype_size(dtype);
}

void bind_tensor(py::module_& m) {
  py::class_<Tensor>(m, "Tensor",
                     "A tensor of fp8llm's (a state-dict entry), exported without a copy through "
                     "DLPack: torch.from_dlpack(t), numpy.from_dlpack(t); numpy() on the host.")
      .def_readonly("name", &Tensor::name)
      .def_property_readonly("dtype",
                             [](const Tensor& t) { return std::string(dtype_name(t.dtype)); })
      .def_property_readonly("shape", [](const Tensor& t) { return py::tuple(py::cast(t.shape)); })
      .def_property_readonly("strides",
                             [](const Tensor& t) { return py::tuple(py::cast(t.strides)); })
      .def_property_readonly("device",
                             [](const Tensor& t) { return std::string(to_string(t.device)); })
      .def_property_readonly("nbytes", &Tensor::nbytes)
      .def_property_readonly("data_ptr",
                             [](const Tensor& t) { return reinterpret_cast<uintptr_t>(t.data); })
      .def("__dlpack__", &dlpack, py::kw_only(), py::arg("stream") = py::none(),
           py::arg("max_version") = py::none(), py::arg("dl_device") = py::none(),
           py::arg("copy") = py::none())
      .def("__dlpack_device__",
           [](const Tensor& t) {
             return py::make_tuple(static_cast<int>(t.device == Device::Cuda ? kDLCUDA : kDLCPU),
                                   0);
           })
      .def(
          "numpy",
          [](py::object self) {
            const Tensor& t = self.cast<const Tensor&>();
            FP8LLM_CHECK(t.device == Device::Cpu,
                         "tensor '{}' is in {} memory: numpy() reads host memory (use DLPack)",
                         t.name, to_string(t.device));
            const py::dtype dtype = numpy_dtype(t.dtype);
            std::vector<py::ssize_t> strides;
            for (int64_t s : t.strides) strides.push_back(s * dtype.itemsize());
            return py::array(dtype, std::vector<py::ssize_t>(t.shape.begin(), t.shape.end()),
                             strides, t.data, self);
          },
          "The tensor as a numpy array over the same memory (BF16 as uint16 bits, F8_E4M3 as "
          "uint8 codes).")
      .def_static(
          "bf16",
          [](const py::array& bits, const std::string& name) {
            FP8LLM_CHECK(bits.dtype().is(py::dtype::of<uint16_t>()) ||
                             bits.dtype().is(py::dtype::of<int16_t>()),
                         "Tensor.bf16: expected the uint16 bits of BF16 values, got dtype {}",
                         std::string(py::str(py::handle(bits.dtype()))));
            const auto c = py::array::ensure(bits, py::array::c_style);
            Tensor t;
            t.name = name;
            t.dtype = DType::BF16;
            t.shape.assign(c.shape(), c.shape() + c.ndim());
            t.strides.assign(t.shape.size(), 1);
            for (size_t d = t.shape.size(); d-- > 1;) t.strides[d - 1] = t.strides[d] * t.shape[d];
            t.data = const_cast<void*>(c.data());
            t.owner = keep_alive(c);
            return t;
          },
          py::arg("bits"), py::arg("name") = "",
          "Wraps a numpy array of BF16 bits (uint16) as a BF16 tensor, without a copy.")
      .def("__repr__", [](const Tensor& t) {
        std::string shape;
        for (int64_t s : t.shape) shape += (shape.empty() ? "" : ", ") + std::to_string(s);
        return "fp8llm.Tensor('" + t.name + "', " + std::string(dtype_name(t.dtype)) + ", [" +
               shape + "], " + std::string(to_string(t.device)) + ")";
      });
}

}  // namespace fp8llm::python
