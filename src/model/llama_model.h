// The forward pass of the Llama family (Llama, Mistral, Qwen2, Qwen3), written once against the
// Backend interface. The variants differ only by flags in ModelConfig: q/k/v (and o) biases,
// per-head q/k RMSNorm (qwen3), tied embeddings, head_dim, RoPE scaling.
#pragma once

#include <cstdint>
#include <span>

#include "formats/hf_config.h"
#include "model/backend.h"

namespace fp8llm {

class LlamaModel {
 public:
  explicit LlamaModel(ModelConfig config) : config_(std::move(config)) {}
  const ModelConfig& config() const { return config_; }

  // Runs `ids` at positions past .. past+T-1; the backend's KV cache must hold exactly `past`
  // tokens of this sequence, and holds past+T after. Writes fp32 logits to `logits`: for every
  // position ([T, vocab]) when `all_positions`, else for the last position only ([vocab]).
  void forward(Backend& backend, std::span<const int32_t> ids, int64_t past,
               std::span<float> logits, bool all_positions) const;
  // The same, leaving the logits where the backend computed them ([T or 1, vocab]; valid until
  // the backend's next pass), for top_token or a later read.
  Act forward_logits(Backend& backend, std::span<const int32_t> ids, int64_t past,
                     bool all_positions) const;

 private:
  ModelConfig config_;
};

}  // namespace fp8llm
