// Activation memory of the CUDA backend: one arena sized when the backend is built, handed out by
// bump allocation from its start at every pass, so the same pass finds the same addresses (what a
// recorded pass needs).
#pragma once

#include <cstddef>

#include "backend/cuda/runtime/device_buffer.h"
#include "model/workspace.h"

namespace fp8llm::cuda {

class CudaWorkspace final : public Workspace {
 public:
  explicit CudaWorkspace(size_t bytes) : arena_(bytes) {}
  void reset(int64_t tokens) override;
  Act alloc(int64_t rows, int64_t cols) override;
  size_t bytes() const { return arena_.size(); }

 private:
  DeviceBuffer arena_;
  size_t used_ = 0;
};

}  // namespace fp8llm::cuda
