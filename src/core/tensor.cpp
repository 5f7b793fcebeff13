#include "core/tensor.h"

#include <fmt/format.h>
#include <fmt/ranges.h>

namespace fp8llm {

int64_t num_elements(const Shape& shape) {
  int64_t n = 1;
  for (int64_t d : shape) n *= d;
  return n;
}

std::string shape_str(const Shape& shape) { return fmt::format("[{}]", fmt::join(shape, ", ")); }

HostTensor::HostTensor(DType t, Shape s)
    : dtype(t), shape(std::move(s)), bytes(static_cast<size_t>(num_elements(shape)) * dtype_size(t)) {}

}  // namespace fp8llm
