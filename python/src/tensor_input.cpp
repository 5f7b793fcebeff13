#include "tensor_input.h"

#include <pybind11/numpy.h>

#include <optional>
#include <vector>

#include "core/dtype.h"
#include "core/error.h"
#include "dlpack_abi.h"
#include "owner.h"
#include "tensor.h"

namespace fp8llm::python {
namespace py = pybind11;

namespace {

std::optional<DType> dtype_of(const DLDataType& t) {
  if (t.lanes != 1) return std::nullopt;
  if (t.code == kDLFloat && t.bits == 32) return DType::F32;
  if (t.code == kDLFloat && t.bits == 16) return DType::F16;
  if (t.code == kDLBfloat && t.bits == 16) return DType::BF16;
  return std::nullopt;
}

bool row_major(const std::vector<int64_t>& shape, const int64_t* strides) {
  if (strides == nullptr) return true;
  int64_t expected = 1;
  for (size_t d = shape.size(); d-- > 0;) {
    if (shape[d] != 1 && strides[d] != expected) return false;
    expected *= shape[d];
  }
  return true;
}

InputTensor from_numpy(const std::string& name, const py::array& given) {
  const py::dtype dt = given.dtype();
  std::string dtype;
  if (dt.kind() == 'f' && dt.itemsize() == 4) dtype = "F32";
  if (dt.kind() == 'f' && dt.itemsize() == 2) dtype = "F16";
  FP8LLM_CHECK(!dtype.empty(),
               "tensor '{}': numpy dtype {} cannot be written (float32 or float16; BF16 bits as "
               "uint16: fp8llm.Tensor.bf16(array))",
               name, std::string(py::str(py::handle(dt))));
  const auto a = py::array::ensure(given, py::array::c_style);  // a copy only if not contiguous
  InputTensor in;
  in.tensor = {name, dtype, std::vector<int64_t>(a.shape(), a.shape() + a.ndim()), a.data(),
               Device::Cpu};
  in.keep = keep_alive(a);
  return in;
}

InputTensor from_dlpack(const std::string& name, const py::handle& object) {
  py::object capsule = object.attr("__dlpack__")();
  FP8LLM_CHECK(PyCapsule_IsValid(capsule.ptr(), "dltensor") != 0,
               "tensor '{}': __dlpack__ did not return a DLPack capsule", name);
  auto* managed = static_cast<DLManagedTensor*>(PyCapsule_GetPointer(capsule.ptr(), "dltensor"));
  // Consumed: from now on the deleter is ours to call (the producer's may need the GIL).
  PyCapsule_SetName(capsule.ptr(), "used_dltensor");
  InputTensor in;
  in.keep = std::shared_ptr<void>(managed, [](void* p) {
    auto* m = static_cast<DLManagedTensor*>(p);
    if (m->deleter == nullptr) return;
    py::gil_scoped_acquire gil;
    m->deleter(m);
  });
  const DLTensor& t = managed->dl_tensor;
  const std::vector<int64_t> shape(t.shape, t.shape + t.ndim);
  const std::optional<DType> dtype = dtype_of(t.dtype);
  FP8LLM_CHECK(dtype.has_value(),
               "tensor '{}': DLPack type code {} of {} bits cannot be written (BF16, F16 or F32)",
               name, t.dtype.code, t.dtype.bits);
  FP8LLM_CHECK(row_major(shape, t.strides),
               "tensor '{}' is not contiguous: pass a contiguous tensor (e.g. .contiguous())",
               name);
  Device device = Device::Cpu;
  if (t.device.device_type == kDLCUDA || t.device.device_type == kDLCUDAManaged) {
    FP8LLM_CHECK(t.device.device_id == 0,
                 "tensor '{}' is on CUDA device {}; the engine runs on device 0", name,
                 t.device.device_id);
    device = Device::Cuda;
  } else {
    FP8LLM_CHECK(t.device.device_type == kDLCPU || t.device.device_type == kDLCUDAHost,
                 "tensor '{}' is on DLPack device type {}, neither host memory nor CUDA", name,
                 static_cast<int>(t.device.device_type));
  }
  in.tensor = {name, std::string(dtype_name(*dtype)), shape,
               static_cast<const std::byte*>(t.data) + t.byte_offset, device};
  return in;
}

}  // namespace

InputTensor input_tensor(const std::string& name, const py::handle& object) {
  if (py::isinstance<Tensor>(object)) {
    const auto& t = object.cast<const Tensor&>();
    FP8LLM_CHECK(t.contiguous(), "tensor '{}' is not contiguous", name);
    InputTensor in;
    in.tensor = {name, std::string(dtype_name(t.dtype)), t.shape, t.data, t.device};
    in.keep = t.owner;
    return in;
  }
  if (py::isinstance<py::array>(object)) return from_numpy(name, object.cast<py::array>());
  if (py::hasattr(object, "__dlpack__")) return from_dlpack(name, object);
  fail("tensor '{}': a {} is neither a numpy array nor a DLPack tensor (__dlpack__)", name,
       std::string(py::str(py::type::handle_of(object).attr("__name__"))));
}

}  // namespace fp8llm::python
