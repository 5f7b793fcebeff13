// Attention over the paged KV cache (model/kv_cache.h), and the writes into it, on fp32
// activations. Keys and values are stored as fp32, bf16, or e4m3 with one fp32 scale per slot and
// KV head (the activation quantizer's per-row rule over head_dim values: docs/FP8.md); they are
// widened to fp32 before use, exactly as the CPU backend widens them.
//
// A Batch's tokens reach the cache through device arrays: positions [tokens], slots [tokens],
// token_seq [tokens], block_tables [seqs, max_blocks]. Every size the kernels loop over is read on
// the device, so a recorded decode step replays at any length.
#pragma once

#include <cuda_runtime.h>

#include <cstdint>

#include "fp8llm/modes.h"

namespace fp8llm::cuda {

struct PagedKv {
  KvCacheDtype dtype = KvCacheDtype::BF16;
  void* k = nullptr;  // [slots, kv_heads, head_dim]
  void* v = nullptr;
  float* k_scale = nullptr;  // Fp8: [slots, kv_heads]
  float* v_scale = nullptr;
  int64_t block_size = 16;
};

struct PagedBatch {
  int64_t tokens = 0;
  const int64_t* positions = nullptr;
  const int64_t* slots = nullptr;
  const int32_t* token_seq = nullptr;
  const int32_t* block_tables = nullptr;
  int64_t max_blocks = 0;
  // The most key ranges (decode_chunk) any decode token of the pass may have, 0 for no bound
  // below kDecodeMaxSplits: a bound for the decode grid (decode_attention.h), which must hold
  // for every batch a recorded pass replays (decode_ranges_bound).
  int64_t max_ranges = 0;
};

// A pass's q, k and v rows, each token's row `ld` floats after the one before: three arrays of
// their own, or the columns of one joined projection's output (Fp8Linear::forward_group_joined),
// read where that GEMM wrote them. The rotated q goes to q_out (in place where it is q), the
// rotated k back over k where k_out is set.
struct QkvRows {
  const float* q = nullptr;
  const float* k = nullptr;
  const float* v = nullptr;
  int64_t q_ld = 0, k_ld = 0, v_ld = 0;
  float* q_out = nullptr;  // [tokens, heads * head_dim]
  float* k_out = nullptr;  // k's own rows, or null
};

// With `inv_freq` set: RoPE on q [tokens, heads, head_dim] and k [tokens, kv_heads, head_dim] in
// place (as launch_rope), then k and v into the cache at the tokens' slots. Without: k and v only.
void launch_rope_append_kv(float* q, float* k, const float* v, int64_t heads, int64_t kv_heads,
                           int64_t head_dim, const float* inv_freq, const PagedBatch& batch,
                           const PagedKv& kv, cudaStream_t stream);
// The same from rows anywhere (QkvRows; q_out is required where rotating): the cache and q_out
// get the bits the call above gives for the same values.
void launch_rope_append_kv(const QkvRows& rows, int64_t heads, int64_t kv_heads, int64_t head_dim,
                           const float* inv_freq, const PagedBatch& batch, const PagedKv& kv,
                           cudaStream_t stream);

// Decode tokens (the one token of their sequence in this pass) split each (token, head) over the
// keys so that a small batch still fills the GPU: token t's keys are cut into splits_t =
// ceil(keys / chunk) ranges, a function of the token's own length only (so a sequence's results
// do not depend on its batch), merged in a fixed order by the last range to finish. The chunk
// is keys / 16 kept within 64 .. 256 keys, but at least keys / 64, rounded up to 32: up to 4,096
// keys, 16 ranges of at least 64 keys; beyond, ranges of 256 keys up to 64 of them, then longer
// ranges. At one token of 32k keys, 8 KV heads x 64 ranges are 512 blocks, about four an SM,
// where 16 ranges left each SM one block bound by the latency of its rounds; at 4,096 keys, 64
// ranges of 64 keys were slower than 16 of 256 (each block's fixed cost). Decode tokens go to
// decode_attention.h's kernel where it takes the layout, else to this file's.
inline constexpr int kDecodeMaxSplits = 64;
inline constexpr int64_t kDecodeChunk = 64;
inline constexpr int64_t kDecodeLongChunk = 256;
__host__ __device__ inline int64_t decode_chunk(int64_t keys) {
  int64_t chunk = (keys + 15) / 16;
  chunk = chunk > kDecodeChunk ? chunk : kDecodeChunk;
  chunk = chunk < kDecodeLongChunk ? chunk : kDecodeLongChunk;
  const int64_t at_most = (keys + kDecodeMaxSplits - 1) / kDecodeMaxSplits;
  chunk = chunk > at_most ? chunk : at_most;
  return (chunk + 31) / 32 * 32;
}
// The bound PagedBatch::max_ranges takes for a pass whose longest sequence has `keys` keys: 16 up
// to 4,096 keys, else kDecodeMaxSplits. A backend records decode steps of the two classes apart
// (CudaBackend::recording_variant), so that a short pass launches no blocks for ranges it cannot
// have: at one token of 4,096 keys, 384 such blocks cost 6.5 us a layer on an H100.
inline constexpr int64_t kDecodeShortKeys = 4096;
inline constexpr int kDecodeShortSplits = 16;
inline int64_t decode_ranges_bound(int64_t keys) {
  return keys <= kDecodeShortKeys ? kDecodeShortSplits : kDecodeMaxSplits;
}
static_assert(kDecodeShortKeys / 16 <= kDecodeLongChunk, "16 ranges cover the short class");
struct DecodeScratch {
  float* partial = nullptr;  // tokens * heads * kDecodeMaxSplits * (head_dim + 2)
  int* counters = nullptr;   // tokens * heads, zero between launches (the kernel leaves them so)
};
// How the tokens after the decode tokens (prompts) are attended: the fp32 kernel (the CPU's
// arithmetic), or on tensor cores with bf16 products (prefill_attention.h; the caller checks
// prefill_attention_supported first).
enum class PrefillAttention { Fp32, TensorCores };
// Causal GQA attention, fp32 online softmax with scale 1/sqrt(head_dim): token t attends to the
// positions 0 .. positions[t] of its sequence. The first `decode_tokens` tokens take the split
// path (they must be decode tokens), the rest one block per (token, head), or the tensor-core
// kernel.
void launch_paged_attention(const float* q, int64_t heads, int64_t kv_heads, int64_t head_dim,
                            const PagedBatch& batch, int64_t decode_tokens, const PagedKv& kv,
                            const DecodeScratch& scratch, float* out, cudaStream_t stream,
                            PrefillAttention prefill = PrefillAttention::Fp32);

inline constexpr int64_t kPagedMaxHeadDim = 256;

}  // namespace fp8llm::cuda
