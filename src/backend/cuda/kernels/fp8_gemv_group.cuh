// What the two one-token FP8 kernels share (fp8_gemv.cu sums on CUDA cores, fp8_gemv_tc.cu on
// the FP8 tensor cores): a grouped call's weights laid end to end over one grid, each segment
// taking the blocks it needs for its rows.
#pragma once

#include <cuda_runtime.h>

#include "backend/cuda/kernels/fp8_gemv.h"

namespace fp8llm::cuda::detail {

// Blocks [begin[s], begin[s + 1]) of the grid compute segment s; the blocks before begin[0] do
// other work (the tensor-core kernel's LoRA shrink).
struct GroupLayout {
  Fp8GemvGroupArgs args;
  int begin[kFp8GemvMaxGroup + 1];
};

// Each segment gets ceil(n / rows_per_block) blocks, from block `first` on.
inline GroupLayout group_layout(const Fp8GemvGroupArgs& a, int64_t rows_per_block, int first = 0) {
  GroupLayout g{a, {}};
  int blocks = first;
  for (int s = 0; s < a.count; ++s) {
    g.begin[s] = blocks;
    blocks += static_cast<int>((a.seg[s].n + rows_per_block - 1) / rows_per_block);
  }
  g.begin[a.count] = blocks;
  return g;
}

// The segment this block computes.
__device__ __forceinline__ int segment_of(const GroupLayout& g) {
  int s = 0;
  while (s + 1 < g.args.count && static_cast<int>(blockIdx.x) >= g.begin[s + 1]) ++s;
  return s;
}

// The tensor-core kernel (fp8_gemv_tc.cu), where it applies: K a multiple of 128 and x with its
// scales small enough for the default shared memory of a block. False (and nothing launched)
// otherwise.
bool launch_fp8_gemv_group_tc(const Fp8GemvGroupArgs& a, cudaStream_t stream);

}  // namespace fp8llm::cuda::detail
