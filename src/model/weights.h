// The tensors a Llama-family checkpoint must hold, derived from its config alone: Hugging Face
// name, shape, role, and whether the FP8 schemes quantize it. The loader checks a checkpoint
// against this list before reading any weight byte.
#pragma once

#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "core/tensor.h"
#include "formats/hf_config.h"

namespace fp8llm {

enum class WeightRole {
  Embedding,      // model.embed_tokens.weight [vocab, hidden]
  LmHead,         // lm_head.weight [vocab, hidden] (absent when tied)
  FinalNorm,      // model.norm.weight [hidden]
  InputNorm,      // model.layers.L.input_layernorm.weight [hidden]
  PostAttnNorm,   // model.layers.L.post_attention_layernorm.weight [hidden]
  QNorm,          // model.layers.L.self_attn.q_norm.weight [head_dim] (qwen3)
  KNorm,          // model.layers.L.self_attn.k_norm.weight [head_dim] (qwen3)
  QProj,          // self_attn.q_proj.weight [heads*head_dim, hidden]
  KProj,          // self_attn.k_proj.weight [kv_heads*head_dim, hidden]
  VProj,          // self_attn.v_proj.weight [kv_heads*head_dim, hidden]
  OProj,          // self_attn.o_proj.weight [hidden, heads*head_dim]
  GateProj,       // mlp.gate_proj.weight [intermediate, hidden]
  UpProj,         // mlp.up_proj.weight [intermediate, hidden]
  DownProj,       // mlp.down_proj.weight [hidden, intermediate]
  QBias, KBias, VBias, OBias,           // self_attn.*_proj.bias [out]
  GateBias, UpBias, DownBias,           // mlp.*_proj.bias [out] (mlp_bias)
};

std::string_view weight_role_name(WeightRole role);

struct WeightSpec {
  std::string name;  // Hugging Face name, e.g. "model.layers.0.self_attn.q_proj.weight"
  WeightRole role;
  int64_t layer;     // -1 for embeddings, final norm, lm_head
  Shape shape;
  // True for the decoder linear projections (q/k/v/o/gate/up/down weights): the only tensors the
  // FP8 schemes quantize. Embeddings, norms, biases and lm_head stay as they are.
  bool quantizable;
};

// Every tensor the checkpoint must contain, in a stable order (embedding, layers 0..L-1, final
// norm, lm_head). Tied embeddings: no lm_head entry.
std::vector<WeightSpec> expected_weights(const ModelConfig& config);
// expected_weights(config).size(), computed without building the list (which grows with
// num_hidden_layers, a number only the checkpoint can vouch for).
int64_t expected_weight_count(const ModelConfig& config);

// True for names that checkpoints may carry but the engine does not use (e.g. rotary
// `inv_freq` buffers saved by old exports).
bool is_ignorable_tensor(std::string_view name);

}  // namespace fp8llm
