#include "backend/cpu/cpu_workspace.h"

#include <cstddef>

namespace fp8llm {

void CpuWorkspace::reset(int64_t /*tokens*/) {
  buffers_.clear();
}

Act CpuWorkspace::alloc(int64_t rows, int64_t cols) {
  buffers_.emplace_back(static_cast<size_t>(rows * cols));
  return {buffers_.back().data(), rows, cols};
}

}  // namespace fp8llm
