// Causal grouped-query attention over a KV cache, the reference for every other backend.
#pragma once

#include <cstdint>

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

}  // namespace fp8llm::cpu
