// Shapes and non-owning views of tensor bytes (a view into an mmapped file, a host buffer, ...).
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <vector>

#include "core/dtype.h"

namespace fp8llm {

using Shape = std::vector<int64_t>;

int64_t num_elements(const Shape& shape);
// "[1024, 256]"
std::string shape_str(const Shape& shape);

// A rectangle of a 2-D tensor: rows [row_begin, row_end), columns [col_begin, col_end) (a 1-D
// tensor has one column).
struct TensorSlice {
  int64_t row_begin = 0, row_end = 0;
  int64_t col_begin = 0, col_end = 0;
  int64_t rows() const { return row_end - row_begin; }
  int64_t cols() const { return col_end - col_begin; }
  bool operator==(const TensorSlice&) const = default;
};

// Read-only bytes of one tensor, row-major. Does not own `data`.
struct TensorView {
  DType dtype = DType::F32;
  Shape shape;
  const std::byte* data = nullptr;
  size_t nbytes = 0;

  int64_t numel() const { return num_elements(shape); }
  template <typename T>
  const T* as() const {
    return reinterpret_cast<const T*>(data);
  }
};

// A tensor that owns its bytes (host memory).
struct HostTensor {
  DType dtype = DType::F32;
  Shape shape;
  std::vector<std::byte> bytes;

  HostTensor() = default;
  HostTensor(DType t, Shape s);
  int64_t numel() const { return num_elements(shape); }
  TensorView view() const { return {dtype, shape, bytes.data(), bytes.size()}; }
  template <typename T>
  T* as() {
    return reinterpret_cast<T*>(bytes.data());
  }
  template <typename T>
  const T* as() const {
    return reinterpret_cast<const T*>(bytes.data());
  }
};

}  // namespace fp8llm
