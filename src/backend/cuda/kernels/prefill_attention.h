// Attention of the prompt tokens of a pass on tensor cores (FlashAttention-2's scheme over the
// paged KV cache): tiles of 64 consecutive query rows per head, keys and values read through the
// block tables 64 at a time, S = Q Kᵀ and O += P V as bf16 products summed in fp32 (mma.sync
// m16n8k16: prefill_attention_mma.cu), the softmax online in fp32 per row. Q (scaled by
// 1/sqrt(head_dim)), K, V and P are rounded to bf16 on the way into the products; that is the
// whole difference from the fp32 kernel of paged_attention.h, which computes the CPU's arithmetic
// and stays the path of `--fp8-gemm fp32`.
//
// A tile's rows may belong to several sequences (a pass lays each sequence's tokens out
// consecutively, at consecutive positions): each sequence of the tile is one pass over its keys,
// the tile's other rows masked. Row t attends to positions 0 .. positions[t] of its sequence, so
// chunked prompts and cached prefixes are read from the cache like any key.
#pragma once

#include <cuda_runtime.h>

#include <cstddef>
#include <cstdint>

#include "backend/cuda/kernels/paged_attention.h"

namespace fp8llm::cuda {

// Whether the tensor-core kernel takes this head size (64 or 128) on the current device (its
// shared memory must hold a block's tiles); otherwise the fp32 kernel runs.
bool prefill_attention_supported(int64_t head_dim);

// Rows [first_token, batch.tokens) of q [tokens, heads, head_dim] into out (same layout).
void launch_prefill_attention(const float* q, int64_t heads, int64_t kv_heads, int64_t head_dim,
                              const PagedBatch& batch, int64_t first_token, const PagedKv& kv,
                              float* out, cudaStream_t stream);

// The kernel alone, for launch_prefill_attention (which checks the layout first), and the
// shared memory a block of it takes.
void launch_prefill_attention_mma(const float* q, int64_t heads, int64_t kv_heads, int64_t head_dim,
                                  const PagedBatch& batch, int64_t first_token, const PagedKv& kv,
                                  float* out, cudaStream_t stream);
size_t prefill_attention_mma_shared_bytes(int64_t head_dim);

}  // namespace fp8llm::cuda
