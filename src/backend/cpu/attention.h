// Causal grouped-query attention over a KV cache, the reference for every other backend.
#pragma once

#include <cstdint>

#include "model/batch.h"
#include "model/kv_cache.h"

namespace fp8llm::cpu {

// For each new token i (absolute position past + i) and query head h:
//   out[i, h] = softmax_j(q[i, h] · k[j, g] / sqrt(head_dim)) · v[j, g],  j = 0 .. past + i,
// where g = h / (heads / kv_heads) is the KV head shared by a group of query heads.
//
// q and out: [t, heads, head_dim]; k_cache and v_cache: [positions, kv_heads, head_dim] holding at
// least past + t positions (these tokens' keys and values already written at past ..). Scores,
// softmax and the weighted sum are accumulated in double; only the output is rounded to float.
// out may be q. Throws std::invalid_argument when heads is not a multiple of kv_heads.
void attention(const float* q, int64_t t, int64_t heads, int64_t kv_heads, int64_t head_dim,
               const float* k_cache, const float* v_cache, int64_t past, float* out);

// The same over a paged cache (one layer of `kv`): token i of the batch attends to positions
// 0 .. positions[i] of its sequence, each found through the sequence's block table. Keys and
// values held in bf16 or FP8 are widened to fp32 first (exactly: bf16 -> fp32, e4m3 code times
// its scale); the arithmetic is then that of attention() above, bit for bit.
void paged_attention(const float* q, int64_t heads, const KvCacheSpec& spec, const KvLayer& kv,
                     const BatchView& batch, float* out);

}  // namespace fp8llm::cpu
