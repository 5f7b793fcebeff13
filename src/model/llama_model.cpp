#include "model/llama_model.h"

#include <array>

#include "core/error.h"

namespace fp8llm {

Act LlamaModel::forward(Backend& b, Workspace& ws, const KvCacheView& kv,
                        const BatchView& batch) const {
  const ModelConfig& c = config_;
  const RankDims& d = dims_;
  const bool split = d.ranks > 1;  // tensor parallel: the collectives below join the ranks
  const int64_t t = batch.num_tokens;
  FP8LLM_CHECK(t > 0, "forward: no tokens");
  const int64_t q_dim = d.heads * c.head_dim, kv_dim = d.kv_heads * c.head_dim;

  ws.reset(t);
  Act x = ws.alloc(t, c.hidden_size);  // the residual stream
  Act h = ws.alloc(t, c.hidden_size);  // normed input of each block
  Act q = ws.alloc(t, q_dim), k = ws.alloc(t, kv_dim), v = ws.alloc(t, kv_dim);
  Act attn = ws.alloc(t, q_dim);
  Act proj = ws.alloc(t, c.hidden_size);  // o_proj / down_proj output
  Act gate = ws.alloc(t, d.intermediate), up = ws.alloc(t, d.intermediate);
  const std::array<LinearKind, 3> qkv{LinearKind::Q, LinearKind::K, LinearKind::V};
  const std::array<LinearKind, 2> gate_up{LinearKind::Gate, LinearKind::Up};
  const std::array<LinearKind, 1> o_kind{LinearKind::O}, down_kind{LinearKind::Down};

  // Without LoRA the normed and gated activations feed only their projections.
  const bool lora = batch.lora;
  b.embed(batch, x);
  if (split) b.all_reduce(x);
  for (int64_t l = 0; l < c.num_layers; ++l) {
    // The previous block's down_proj output joins the residual stream in the norm's kernel.
    if (l == 0) {
      b.rms_norm_for(x, l, NormKind::Input, h, {l, qkv, lora});
    } else {
      b.add_rms_norm_for(x, proj, l, NormKind::Input, h, {l, qkv, lora});
    }
    if (c.qk_norm) {
      b.project(h, l, qkv, batch, std::array<Act, 3>{q, k, v});
      b.rms_norm(q, l, NormKind::QNorm, q);
      b.rms_norm(k, l, NormKind::KNorm, k);
      b.rope_append_kv(l, q, k, v, kv, batch);
    } else {
      b.qkv_rope_append_kv(h, l, q, k, v, kv, batch);
    }
    b.attention(l, q, kv, batch, attn);
    // On a rank, the adapter's share (its columns of A) joins the partial sum before the ranks
    // add theirs up (model/lora_shard.h).
    b.project(attn, l, o_kind, batch, std::array<Act, 1>{proj});
    if (split) b.reduce_partial(proj, l, LinearKind::O);
    b.add_rms_norm_for(x, proj, l, NormKind::PostAttention, h, {l, gate_up, lora});
    b.project(h, l, gate_up, batch, std::array<Act, 2>{gate, up});
    b.silu_mul_for(gate, up, gate, {l, down_kind, lora});
    b.project(gate, l, down_kind, batch, std::array<Act, 1>{proj});
    if (split) b.reduce_partial(proj, l, LinearKind::Down);
  }
  // Only the rows whose logits are wanted go through lm_head.
  b.add_rms_norm(x, proj, -1, NormKind::Final, h);
  const int64_t rows = batch.num_logit_rows;
  if (rows == 0) return {nullptr, 0, c.vocab_size};  // a step of prompt chunks that sample nothing
  Act selected = ws.alloc(rows, c.hidden_size);
  b.gather_rows(h, batch, selected);
  Act out = ws.alloc(rows, c.vocab_size);
  if (split) {
    Act slice = ws.alloc(rows, d.vocab);  // this rank's vocabulary range
    b.linear(selected, -1, LinearKind::LmHead, slice);
    b.all_gather(slice, out);
  } else {
    b.linear(selected, -1, LinearKind::LmHead, out);
  }
  return out;
}

}  // namespace fp8llm
