// Attention of decode tokens (the one new token of each sequence in a pass) over the paged KV
// cache, with fp32's numbers: the kernels launch_paged_attention gives them where they apply.
// Decode is where a batch of sequences reads its whole KV cache every step, so these kernels are
// laid out for bandwidth: a block attends for a token and the query heads that share a KV head
// (up to four on CUDA cores, the group's eight on tensor cores), over one or more of the token's
// ranges of keys, so each key and value row is read once for all of them, requested ahead with
// cp.async; the warps (or lane groups) keep their own online softmax and are merged in a fixed
// order. The key ranges are those of paged_attention.h (decode_chunk), a function of the token's
// own length, so a sequence's results do not depend on its batch.
#pragma once

#include <cuda_runtime.h>

#include <cstdint>

#include "backend/cuda/kernels/paged_attention.h"
#include "fp8llm/modes.h"

namespace fp8llm::cuda {

// Head sizes 64, 128 and 256 (not 256 with an fp32 cache, whose row is wider than a warp's
// loads); the other layouts keep the general kernel of paged_attention.cu.
bool decode_attention_supported(KvCacheDtype dtype, int64_t head_dim);

// The two kernels: on tensor cores (decode_attention_mma.cu) for a bf16 or e4m3 cache, head size
// 64 or 128 and up to eight query heads per KV head; on CUDA cores (decode_attention_pipelined.cu)
// for the other supported layouts. The choice depends on the layout alone, never on the batch, so a
// sequence's results do not either.
enum class DecodeKernel { kCudaCores, kTensorCores };
DecodeKernel decode_kernel_for(KvCacheDtype dtype, int64_t heads, int64_t kv_heads,
                               int64_t head_dim);

// Tokens [0, decode_tokens) of q [tokens, heads, head_dim] into out (same layout): token t
// attends to positions 0 .. positions[t] of its sequence, with scale 1/sqrt(head_dim).
void launch_decode_attention(const float* q, int64_t heads, int64_t kv_heads, int64_t head_dim,
                             const PagedBatch& batch, int64_t decode_tokens, const PagedKv& kv,
                             const DecodeScratch& scratch, float* out, cudaStream_t stream);

// How a launch spreads its work: `range_blocks` blocks for each (token, KV head, query heads of
// a block), block z taking the token's key ranges z, z + range_blocks, ... (at least one, at
// most kDecodeMaxSplits), chosen so that the grid gives `multiprocessors` SMs several waves of
// blocks without blocks that have no range at large batches. The token's ranges and their merge
// do not change with it, so neither do its results.
// The tensor-core kernel also takes the 64-key steps a block keeps in shared memory: 2 (three
// blocks an SM) or 3 (two blocks an SM, each with two steps in flight).
struct DecodeGrid {
  int64_t range_blocks = 1;
  int stages = 2;
};
// At most max_ranges (0: kDecodeMaxSplits) range blocks: no token of the pass has more ranges.
DecodeGrid choose_decode_grid(DecodeKernel kernel, int64_t heads, int64_t kv_heads,
                              int64_t decode_tokens, int64_t multiprocessors,
                              int64_t max_ranges = 0);

// Each kernel alone on a given grid: for launch_decode_attention (which checks the layout and
// chooses the kernel and the grid first) and for bench_attention's sweep of grids.
void launch_decode_attention_pipelined(const float* q, int64_t heads, int64_t kv_heads,
                                       int64_t head_dim, const PagedBatch& batch,
                                       int64_t decode_tokens, const PagedKv& kv,
                                       const DecodeScratch& scratch, float* out, DecodeGrid grid,
                                       cudaStream_t stream);
void launch_decode_attention_mma(const float* q, int64_t heads, int64_t kv_heads, int64_t head_dim,
                                 const PagedBatch& batch, int64_t decode_tokens, const PagedKv& kv,
                                 const DecodeScratch& scratch, float* out, DecodeGrid grid,
                                 cudaStream_t stream);

}  // namespace fp8llm::cuda
