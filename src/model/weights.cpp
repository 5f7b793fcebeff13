#include "model/weights.h"

#include <fmt/format.h>

#include <array>

namespace fp8llm {

std::string_view weight_role_name(WeightRole role) {
  switch (role) {
    case WeightRole::Embedding:
      return "embedding";
    case WeightRole::LmHead:
      return "lm_head";
    case WeightRole::FinalNorm:
      return "final_norm";
    case WeightRole::InputNorm:
      return "input_norm";
    case WeightRole::PostAttnNorm:
      return "post_attention_norm";
    case WeightRole::QNorm:
      return "q_norm";
    case WeightRole::KNorm:
      return "k_norm";
    case WeightRole::QProj:
      return "q_proj";
    case WeightRole::KProj:
      return "k_proj";
    case WeightRole::VProj:
      return "v_proj";
    case WeightRole::OProj:
      return "o_proj";
    case WeightRole::GateProj:
      return "gate_proj";
    case WeightRole::UpProj:
      return "up_proj";
    case WeightRole::DownProj:
      return "down_proj";
    case WeightRole::QBias:
      return "q_bias";
    case WeightRole::KBias:
      return "k_bias";
    case WeightRole::VBias:
      return "v_bias";
    case WeightRole::OBias:
      return "o_bias";
    case WeightRole::GateBias:
      return "gate_bias";
    case WeightRole::UpBias:
      return "up_bias";
    case WeightRole::DownBias:
      return "down_bias";
  }
  return "unknown";
}

std::vector<WeightSpec> expected_weights(const ModelConfig& c) {
  const int64_t hidden = c.hidden_size;
  const int64_t q_out = c.num_heads * c.head_dim;
  const int64_t kv_out = c.num_kv_heads * c.head_dim;
  const int64_t inter = c.intermediate_size;

  std::vector<WeightSpec> specs;
  specs.push_back(
      {"model.embed_tokens.weight", WeightRole::Embedding, -1, {c.vocab_size, hidden}, false});

  for (int64_t l = 0; l < c.num_layers; ++l) {
    const std::string prefix = fmt::format("model.layers.{}.", l);
    auto add = [&](std::string_view suffix, WeightRole role, Shape shape, bool quantizable) {
      specs.push_back({prefix + std::string(suffix), role, l, std::move(shape), quantizable});
    };
    // A linear layer's weight [out, in] (quantizable) and, when the architecture has one, its
    // bias [out].
    auto linear = [&](std::string_view module, WeightRole weight_role, WeightRole bias_role,
                      int64_t out, int64_t in, bool bias) {
      add(fmt::format("{}.weight", module), weight_role, {out, in}, true);
      if (bias) add(fmt::format("{}.bias", module), bias_role, {out}, false);
    };

    add("input_layernorm.weight", WeightRole::InputNorm, {hidden}, false);
    linear("self_attn.q_proj", WeightRole::QProj, WeightRole::QBias, q_out, hidden, c.qkv_bias);
    linear("self_attn.k_proj", WeightRole::KProj, WeightRole::KBias, kv_out, hidden, c.qkv_bias);
    linear("self_attn.v_proj", WeightRole::VProj, WeightRole::VBias, kv_out, hidden, c.qkv_bias);
    linear("self_attn.o_proj", WeightRole::OProj, WeightRole::OBias, hidden, q_out, c.o_bias);
    if (c.qk_norm) {
      add("self_attn.q_norm.weight", WeightRole::QNorm, {c.head_dim}, false);
      add("self_attn.k_norm.weight", WeightRole::KNorm, {c.head_dim}, false);
    }
    add("post_attention_layernorm.weight", WeightRole::PostAttnNorm, {hidden}, false);
    linear("mlp.gate_proj", WeightRole::GateProj, WeightRole::GateBias, inter, hidden, c.mlp_bias);
    linear("mlp.up_proj", WeightRole::UpProj, WeightRole::UpBias, inter, hidden, c.mlp_bias);
    linear("mlp.down_proj", WeightRole::DownProj, WeightRole::DownBias, hidden, inter, c.mlp_bias);
  }

  specs.push_back({"model.norm.weight", WeightRole::FinalNorm, -1, {hidden}, false});
  if (!c.tie_word_embeddings) {
    specs.push_back({"lm_head.weight", WeightRole::LmHead, -1, {c.vocab_size, hidden}, false});
  }
  return specs;
}

int64_t expected_weight_count(const ModelConfig& c) {
  // Per layer: two norms and seven projections, their biases, and qwen3's q/k norms.
  const int64_t per_layer = 2 + 7 + (c.qkv_bias ? 3 : 0) + (c.o_bias ? 1 : 0) +
                            (c.mlp_bias ? 3 : 0) + (c.qk_norm ? 2 : 0);
  return 2 + c.num_layers * per_layer + (c.tie_word_embeddings ? 0 : 1);
}

bool is_ignorable_tensor(std::string_view name) {
  // Rotary buffers that old exports saved with the weights; the engine computes its own.
  constexpr std::array<std::string_view, 3> kSuffixes = {
      "rotary_emb.inv_freq", "rotary_emb.cos_cached", "rotary_emb.sin_cached"};
  for (std::string_view suffix : kSuffixes) {
    if (!name.ends_with(suffix)) continue;
    const size_t rest = name.size() - suffix.size();
    if (rest == 0 || name[rest - 1] == '.') return true;  // whole name components only
  }
  return false;
}

}  // namespace fp8llm
