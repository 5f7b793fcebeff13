// LoRA on the device (model/lora_weights.h), Punica's shrink and expand for a batch whose tokens
// use different adapters, over a group of projections that share their input (q, k, v; gate, up):
//
//   u_g[t] = x[t] · A_{g,s}ᵀ            (rank values; s = token_lora[t], -1: none)
//   y_g[t] += scale_s * (u_g[t] · B_{g,s}ᵀ)
//
// Every slot's factors of one projection sit at the same offset of the slot's region, so one base
// pointer and a slot stride reach them all; A is [max_rank, in] and B [out, max_rank], zero beyond
// the adapter's rank (which adds nothing).
//
// The shrink splits the input width into pieces whose count depends only on `in`, so a token's
// sums are added in the same order whatever else is in the batch (a request gives the same tokens
// alone and in any batch). One launch each for the shrink and the expand of the whole group: at
// batch 1 the cost of LoRA is mostly launches and memory latency. The shrink reads only x, so it
// may run beside the group's base projection; the expand adds to that projection's output.
#pragma once

#include <cuda_bf16.h>
#include <cuda_runtime.h>

#include <cstdint>

namespace fp8llm::cuda {

constexpr int kLoraMaxGroup = 3;

struct LoraProjection {
  const __nv_bfloat16* a = nullptr;  // slot 0's A of this projection
  const __nv_bfloat16* b = nullptr;  // slot 0's B
  float* y = nullptr;                // [tokens, out]
  int64_t out = 0;
};

struct LoraLaunch {
  const float* x = nullptr;  // [tokens, in]
  int64_t tokens = 0;
  int64_t in = 0;
  int64_t max_rank = 0;
  int groups = 0;
  LoraProjection proj[kLoraMaxGroup];
  int64_t slot_stride = 0;        // elements from one slot's region to the next
  const float* scales = nullptr;  // per slot
  const int32_t* token_lora = nullptr;
  float* partial = nullptr;  // scratch, lora_partial_floats(tokens, in, groups, max_rank)
};

// Floats of scratch a launch needs.
int64_t lora_partial_floats(int64_t tokens, int64_t in, int groups, int64_t max_rank);

// Fills l.partial; then the expand adds to the l.proj[g].y (stream order, or an event, between).
void launch_lora_shrink(const LoraLaunch& l, cudaStream_t stream);
void launch_lora_expand(const LoraLaunch& l, cudaStream_t stream);

}  // namespace fp8llm::cuda
