// The tensors of update_weights as the engine takes them: each Python object (an fp8llm.Tensor, a
// numpy array, or anything with __dlpack__: torch tensors on the host or on the device, ...) read
// without a copy where possible, with what keeps its memory valid until the call is over.
#pragma once

#include <pybind11/pybind11.h>

#include <memory>
#include <string>

#include "fp8llm/weight_update.h"

namespace fp8llm::python {

struct InputTensor {
  WeightTensor tensor;
  std::shared_ptr<void> keep;
};

// An Error names the tensor when `object` is not a contiguous BF16/F16/F32 tensor in host memory
// or on CUDA device 0 (a non-contiguous numpy array is copied; other producers must hand over a
// contiguous tensor).
InputTensor input_tensor(const std::string& name, const pybind11::handle& object);

}  // namespace fp8llm::python
