// Attention of decode tokens (the one new token of each sequence in a pass) over the paged KV
// cache, in fp32: the kernel launch_paged_attention gives them where it applies. Decode is where
// a batch of sequences reads its whole KV cache every step, so this kernel is laid out for
// bandwidth: a block attends for a token and up to four of the query heads that share a KV
// head, over one or more of the token's ranges of keys, so each key and value row is read once for
// all of them; each key row is read by a group of lanes in 16-byte pieces (8 bf16, 16 e4m3 or 4
// fp32 elements a lane), several keys per warp at a time, requested rounds ahead with cp.async
// (decode_attention_pipelined.cu); the lane groups keep their own online softmax and are merged
// in a fixed order. The key ranges are those of paged_attention.h (decode_chunk), a function of
// the token's own length, so a sequence's results do not depend on its batch.
#pragma once

#include <cuda_runtime.h>

#include <cstdint>

#include "backend/cuda/kernels/paged_attention.h"
#include "fp8llm/modes.h"

namespace fp8llm::cuda {

// Head sizes 64, 128 and 256 (not 256 with an fp32 cache, whose row is wider than a warp's
// loads); the other layouts keep the general kernel of paged_attention.cu.
bool decode_attention_supported(KvCacheDtype dtype, int64_t head_dim);

// Tokens [0, decode_tokens) of q [tokens, heads, head_dim] into out (same layout): token t
// attends to positions 0 .. positions[t] of its sequence, with scale 1/sqrt(head_dim).
void launch_decode_attention(const float* q, int64_t heads, int64_t kv_heads, int64_t head_dim,
                             const PagedBatch& batch, int64_t decode_tokens, const PagedKv& kv,
                             const DecodeScratch& scratch, float* out, cudaStream_t stream);

// How a launch spreads its work: `range_blocks` blocks for each (token, KV head, four query
// heads), block z taking the token's key ranges z, z + range_blocks, ... (at least one, at most
// kDecodeMaxSplits), chosen so that the grid gives `multiprocessors` SMs several waves of blocks
// without blocks that have no range at large batches. The token's ranges and their merge do not
// change with it, so neither do its results.
struct DecodeGrid {
  int64_t range_blocks = 1;
};
// At most max_ranges (0: kDecodeMaxSplits) range blocks: no token of the pass has more ranges.
DecodeGrid choose_decode_grid(int64_t heads, int64_t kv_heads, int64_t decode_tokens,
                              int64_t multiprocessors, int64_t max_ranges = 0);

// The kernel alone on a given grid: for launch_decode_attention (which checks the layout and
// chooses the grid first) and for bench_attention's sweep of grids.
void launch_decode_attention_pipelined(const float* q, int64_t heads, int64_t kv_heads,
                                       int64_t head_dim, const PagedBatch& batch,
                                       int64_t decode_tokens, const PagedKv& kv,
                                       const DecodeScratch& scratch, float* out, DecodeGrid grid,
                                       cudaStream_t stream);

}  // namespace fp8llm::cuda
