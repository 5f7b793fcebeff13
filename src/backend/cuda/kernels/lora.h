// LoRA on the device (model/lora_weights.h), Punica's shrink and expand for a batch whose tokens
// use different adapters: u[t] = x[t] · A_sᵀ (rank values), then y[t] += scale_s * (u[t] · B_sᵀ),
// s = token_lora[t] (-1: none). Every slot's factors of one projection sit at the same offset of
// the slot's region, so one base pointer and a slot stride reach them all; A is [max_rank, in]
// and B [out, max_rank], zero beyond the adapter's rank (which adds nothing).
#pragma once

#include <cuda_bf16.h>
#include <cuda_runtime.h>

#include <cstdint>

namespace fp8llm::cuda {

struct LoraLaunch {
  const float* x = nullptr;  // [tokens, in]
  float* y = nullptr;        // [tokens, out]
  int64_t tokens = 0;
  int64_t in = 0;
  int64_t out = 0;
  int64_t max_rank = 0;
  const __nv_bfloat16* a = nullptr;  // slot 0's A of this projection
  const __nv_bfloat16* b = nullptr;  // slot 0's B
  int64_t slot_stride = 0;           // elements from one slot's region to the next
  const float* scales = nullptr;     // per slot
  const int32_t* token_lora = nullptr;
  float* u = nullptr;  // scratch [tokens, max_rank]
};

void launch_lora(const LoraLaunch& l, cudaStream_t stream);

}  // namespace fp8llm::cuda
