#include "backend/cuda/cuda_workspace.h"

#include "core/error.h"

namespace fp8llm::cuda {

void CudaWorkspace::reset(int64_t /*tokens*/) {
  used_ = 0;
}

Act CudaWorkspace::alloc(int64_t rows, int64_t cols) {
  const size_t bytes = (static_cast<size_t>(rows * cols) * sizeof(float) + 255) / 256 * 256;
  FP8LLM_CHECK(used_ + bytes <= arena_.size(),
               "cuda: a pass needs more activation memory than the {} MiB set aside",
               arena_.size() >> 20);
  Act a{arena_.as<std::byte>() + used_, rows, cols};
  used_ += bytes;
  return a;
}

}  // namespace fp8llm::cuda
