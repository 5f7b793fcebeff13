// fp8llm.Tensor: a tensor the module hands out (the state dict) or wraps, readable by any framework
// without a copy through DLPack (__dlpack__ / __dlpack_device__: torch.from_dlpack,
// numpy.from_dlpack), and as a numpy array on the host (numpy()). It keeps what owns its memory
// alive: the engine, for a view of the live weights; its own bytes, for a copy; a wrapped array.
//
// Element types: F32, F16 and BF16 are exported as such; F8_E4M3 codes as uint8 (every framework
// reads those; torch: .view(torch.float8_e4m3fn)). numpy has no bfloat16: numpy() gives BF16 as
// its uint16 bits.
#pragma once

#include <pybind11/pybind11.h>

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "core/dtype.h"
#include "fp8llm/modes.h"

namespace fp8llm::python {

struct Tensor {
  std::string name;
  DType dtype = DType::F32;
  std::vector<int64_t> shape;
  std::vector<int64_t> strides;  // in elements
  void* data = nullptr;
  Device device = Device::Cpu;
  std::shared_ptr<void> owner;  // keeps `data` valid

  // A tensor owning a copy of `bytes`.
  static Tensor owning(std::string name, DType dtype, std::vector<int64_t> shape,
                       std::vector<std::byte> bytes);
  bool contiguous() const;
  uint64_t nbytes() const;
};

void bind_tensor(pybind11::module_& m);

}  // namespace fp8llm::python
