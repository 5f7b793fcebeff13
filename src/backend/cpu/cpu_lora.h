// LoRA adapters on the CPU: each slot's factors widened to fp32 once (exact from bf16), applied
// row by row: for the rows of one slot, u = x · Aᵀ and d = u · Bᵀ through the same fp32 GEMM as
// every projection (sums in a fixed order whatever the batch), then out += float32(scale * d).
#pragma once

#include <map>
#include <utility>
#include <vector>

#include "model/backend.h"
#include "model/lora_weights.h"

namespace fp8llm::cpu {

class CpuLora {
 public:
  void reserve(int slots, int64_t max_rank);
  void set(int slot, const LoraAdapter* adapter);
  void apply(const float* in, int64_t cols_in, int64_t layer, LinearKind kind,
             const BatchView& batch, float* out, int64_t cols_out) const;

 private:
  struct Factors {
    std::vector<float> a;  // [rank, in]
    std::vector<float> b;  // [out, rank]
  };
  struct Slot {
    bool used = false;
    int64_t rank = 0;
    float scale = 0;
    std::map<std::pair<int64_t, LinearKind>, Factors> modules;
  };
  std::vector<Slot> slots_;
  int64_t max_rank_ = 0;
};

}  // namespace fp8llm::cpu
