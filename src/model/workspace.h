// The activation memory of one forward pass: bump allocation, released all at once when the next
// pass begins. The same sequence of allocations after a reset gives the same addresses, so a
// recorded pass (Backend::run_pass) finds its buffers where it left them.
#pragma once

#include <cstdint>

#include "model/act.h"

namespace fp8llm {

class Workspace {
 public:
  virtual ~Workspace() = default;
  // Starts a pass of `tokens` tokens: earlier activations are released.
  virtual void reset(int64_t tokens) = 0;
  virtual Act alloc(int64_t rows, int64_t cols) = 0;
};

}  // namespace fp8llm
