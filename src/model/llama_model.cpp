#include "model/llama_model.h"

#include <numeric>
#include <vector>

#include "core/error.h"

namespace fp8llm {

void LlamaModel::forward(Backend& b, std::span<const int32_t> ids, int64_t past,
                         std::span<float> logits, bool all_positions) const {
  const int64_t out_rows = all_positions ? static_cast<int64_t>(ids.size()) : 1;
  FP8LLM_CHECK(static_cast<int64_t>(logits.size()) == out_rows * config_.vocab_size,
               "forward: logits buffer holds {} floats, need {}", logits.size(),
               out_rows * config_.vocab_size);
  const Act out = forward_logits(b, ids, past, all_positions);
  b.read(out, logits.data());
}

Act LlamaModel::forward_logits(Backend& b, std::span<const int32_t> ids, int64_t past,
                               bool all_positions) const {
  const ModelConfig& c = config_;
  const auto t = static_cast<int64_t>(ids.size());
  FP8LLM_CHECK(t > 0, "forward: no tokens");
  FP8LLM_CHECK(past + t <= b.cache_capacity(),
               "sequence of {} tokens exceeds the context of {} positions", past + t,
               b.cache_capacity());
  const int64_t out_rows = all_positions ? t : 1;

  const int64_t q_dim = c.num_heads * c.head_dim, kv_dim = c.num_kv_heads * c.head_dim;
  std::vector<int64_t> positions(static_cast<size_t>(t));
  std::iota(positions.begin(), positions.end(), past);

  b.begin_forward(t, past);
  Act x = b.alloc(t, c.hidden_size);  // the residual stream
  Act h = b.alloc(t, c.hidden_size);  // normed input of each block
  Act q = b.alloc(t, q_dim), k = b.alloc(t, kv_dim), v = b.alloc(t, kv_dim);
  Act attn = b.alloc(t, q_dim);
  Act proj = b.alloc(t, c.hidden_size);  // o_proj / down_proj output
  Act gate = b.alloc(t, c.intermediate_size), up = b.alloc(t, c.intermediate_size);

  b.embed(ids, x);
  for (int64_t l = 0; l < c.num_layers; ++l) {
    b.rms_norm(x, l, NormKind::Input, h);
    b.linear(h, l, LinearKind::Q, q);
    b.linear(h, l, LinearKind::K, k);
    b.linear(h, l, LinearKind::V, v);
    if (c.qk_norm) {
      b.rms_norm(q, l, NormKind::QNorm, q);
      b.rms_norm(k, l, NormKind::KNorm, k);
    }
    b.rope(q, c.num_heads, positions);
    b.rope(k, c.num_kv_heads, positions);
    b.attention(l, q, k, v, past, attn);
    b.linear(attn, l, LinearKind::O, proj);
    b.add(x, proj);

    b.rms_norm(x, l, NormKind::PostAttention, h);
    b.linear(h, l, LinearKind::Gate, gate);
    b.linear(h, l, LinearKind::Up, up);
    b.silu_mul(gate, up, gate);
    b.linear(gate, l, LinearKind::Down, proj);
    b.add(x, proj);
  }
  // Only the rows whose logits are wanted go through the final norm and lm_head.
  Act last = all_positions ? x : b.rows(x, t - 1, 1);
  Act normed = b.rows(h, 0, out_rows);
  b.rms_norm(last, -1, NormKind::Final, normed);
  Act out = b.alloc(out_rows, c.vocab_size);
  b.linear(normed, -1, LinearKind::LmHead, out);
  return out;
}

}  // namespace fp8llm
