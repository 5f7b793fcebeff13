// Where each planned tensor lives in the device weights' arena (device_weights.h), decided from
// the LoadPlan alone. Tensors take the plan's order, each part 256-byte aligned, except a layer's
// q, k and v projections: their codes sit back to back, then their scales, so that one GEMM can
// read the three as a single [n_q + n_k + n_v, k] weight (Fp8Linear::forward_group). At a few
// hundred rows cuBLASLt's FP8 GEMM takes about 13 us whatever its width (docs/PERFORMANCE.md),
// so three calls cost nearly three times one.
#pragma once

#include <cstdint>
#include <vector>

#include "loader/load_plan.h"

namespace fp8llm::cuda {

// The byte sizes of a tensor's parts in the arena: values (or codes), and scales.
struct TensorFootprint {
  uint64_t data = 0;
  uint64_t scales = 0;
  int64_t scale_ld = 0;
  int64_t rows = 0;
  int64_t cols = 0;
};
TensorFootprint footprint_of(const PlannedTensor& t);

struct ArenaLayout {
  struct Place {
    uint64_t data = 0;    // byte offset of the values (a pre-quantized scale tensor's: its scales)
    uint64_t scales = 0;  // byte offset of the scales of a tensor quantized while it loads
  };
  std::vector<Place> tensors;  // one per plan.tensors entry
  uint64_t bytes = 0;          // the arena's size
};
ArenaLayout layout_arena(const LoadPlan& plan);

}  // namespace fp8llm::cuda
