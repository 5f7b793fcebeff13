// An activation: a 2-D fp32 matrix [rows, cols], row-major, in the memory of the backend that
// computes on it (host or device). Both backends keep activations in fp32 (docs/FP8.md says why).
#pragma once

#include <cstdint>

namespace fp8llm {

struct Act {
  void* data = nullptr;
  int64_t rows = 0;
  int64_t cols = 0;
  float* f32() const { return static_cast<float*>(data); }
};

// Rows [begin, begin + count) of `a`, without a copy.
inline Act rows_of(Act a, int64_t begin, int64_t count) {
  return {a.f32() + begin * a.cols, count, a.cols};
}

}  // namespace fp8llm
