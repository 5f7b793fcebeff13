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
// Both halves multiply on tensor cores (mma.sync, bf16 operands, fp32 sums) over tiles of the
// batch's tokens grouped by adapter (group_lora_rows), 8 to a tile at decode batch sizes and 32
// for prompts, one pass per adapter present in a tile. x and u are fp32: each is split into a
// bf16 value and the bf16 of what that leaves (x = hi + lo to within 2^-17 of x), and both halves
// multiplied, so the products keep about the precision of fp32 against the exact bf16 factors.
// The shrink splits the input width into pieces whose count depends only on `in`, and adds the
// pieces up, in piece order, into u (kernels in lora.cu say where). A token's sums are added in the
// same order whatever else is in the batch and wherever it falls in a tile, so a request gives the
// same tokens alone and in any batch. The shrink reads only x, so it may run beside the group's
// base projection; the expand adds to that projection's output.
#pragma once

#include <cuda_bf16.h>
#include <cuda_runtime.h>

#include <cstdint>

namespace fp8llm::cuda {

constexpr int kLoraMaxGroup = 3;

struct LoraProjection {
  const __nv_bfloat16* a = nullptr;  // slot 0's A of this projection
  const __nv_bfloat16* b = nullptr;  // slot 0's B
  float* y = nullptr;                // [tokens, ld]
  int64_t out = 0;
  int64_t ld = 0;  // floats from a token's outputs to the next's; 0: out
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
  // The batch's token rows grouped by adapter (group_lora_rows), and each one's slot (-1: none):
  // the kernels take tokens in this order, so a tile of them mostly shares one adapter.
  const int32_t* rows = nullptr;
  const int32_t* row_slots = nullptr;
  float* scratch = nullptr;  // lora_scratch_floats(tokens, in, groups, max_rank)
  // lora_tile_counts(tokens) counters, zero before the first shrink; each shrink leaves them zero.
  int32_t* tile_counts = nullptr;
};

// rows[0, tokens): the token rows in order of their slot, each slot's in batch order, the
// tokens without an adapter last; row_slots[i] = token_lora[rows[i]].
void group_lora_rows(const int32_t* token_lora, int64_t tokens, int32_t* rows, int32_t* row_slots);

// Floats of scratch a launch needs, and the counters of its tiles.
int64_t lora_scratch_floats(int64_t tokens, int64_t in, int groups, int64_t max_rank);
int64_t lora_tile_counts(int64_t tokens);

// Fills l.scratch; then the expand adds to the l.proj[g].y (stream order, or an event, between).
void launch_lora_shrink(const LoraLaunch& l, cudaStream_t stream);
void launch_lora_expand(const LoraLaunch& l, cudaStream_t stream);

}  // namespace fp8llm::cuda
