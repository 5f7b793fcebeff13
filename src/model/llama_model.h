// The forward pass of the Llama family (Llama, Mistral, Qwen2, Qwen3), written once against the
// Backend interface, over a batch of sequences. The variants differ only by flags in ModelConfig:
// q/k/v (and o) biases, per-head q/k RMSNorm (qwen3), tied embeddings, head_dim, RoPE scaling.
#pragma once

#include <cstdint>

#include "formats/hf_config.h"
#include "model/backend.h"
#include "model/shard_plan.h"
#include "model/workspace.h"

namespace fp8llm {

class LlamaModel {
 public:
  explicit LlamaModel(ModelConfig config)
      : config_(std::move(config)), dims_(whole_model_dims(config_)) {}
  // One rank of a tensor-parallel model: `config` is the whole model's, `dims` what each rank
  // computes with (ShardPlan::dims()); each rank runs this pass over its backend, which holds
  // its shard, and the passes meet in the backends' collectives.
  LlamaModel(ModelConfig config, RankDims dims) : config_(std::move(config)), dims_(dims) {}
  const ModelConfig& config() const { return config_; }
  const RankDims& dims() const { return dims_; }

  // Runs the batch's tokens, appending their keys and values to `kv` at the batch's slots, and
  // returns the fp32 logits of its logit rows ([num_logit_rows, vocab], in workspace memory:
  // valid until the workspace's next reset; no rows when the batch asks for none). Every op is
  // issued here in order, the fused ones by name, so the whole pass reads top to bottom.
  Act forward(Backend& b, Workspace& ws, const KvCacheView& kv, const BatchView& batch) const;

 private:
  ModelConfig config_;
  RankDims dims_;
};

}  // namespace fp8llm
