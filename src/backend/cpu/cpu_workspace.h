// Activation memory of the CPU backend: one host buffer per allocation, all released at reset.
#pragma once

#include <cstddef>
#include <deque>
#include <vector>

#include "model/workspace.h"

namespace fp8llm {

class CpuWorkspace final : public Workspace {
 public:
  void reset(int64_t tokens) override;
  Act alloc(int64_t rows, int64_t cols) override;

 private:
  std::deque<std::vector<float>> buffers_;
};

}  // namespace fp8llm
