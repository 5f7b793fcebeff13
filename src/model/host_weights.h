// A whole model's weights in host memory, as the CPU backend uses them: decoder projections as
// FP8 (e4m3 + fp32 scales) or in their checkpoint dtype, everything else in its checkpoint dtype.
#pragma once

#include <optional>
#include <vector>

#include "core/tensor.h"
#include "model/weights.h"
#include "quant/fp8_scheme.h"

namespace fp8llm {

struct HostLinear {
  std::optional<Fp8Scheme> scheme;  // set: weight is F8_E4M3 with `scale`; unset: checkpoint dtype
  HostTensor weight;                // [out_features, in_features]
  HostTensor scale;                 // F32, weight_scale_shape(scheme, N, K); empty when unquantized
  HostTensor bias;                  // [out_features] or empty

  int64_t out_features() const { return weight.shape.empty() ? 0 : weight.shape[0]; }
  int64_t in_features() const { return weight.shape.size() < 2 ? 0 : weight.shape[1]; }
};

struct HostLayer {
  HostTensor input_norm, post_attention_norm;
  HostTensor q_norm, k_norm;  // qwen3 only
  HostLinear q, k, v, o, gate, up, down;
};

struct HostWeights {
  HostTensor embed;  // [vocab, hidden]
  std::vector<HostLayer> layers;
  HostTensor final_norm;
  HostLinear lm_head;  // empty weight when tied to `embed`
  bool lm_head_tied = false;

  // Bytes held, for reports.
  uint64_t resident_bytes() const;
};

// Where a checkpoint tensor lives in HostWeights: the tensor holding its values (a projection's
// weight or bias, a norm, the embedding), or nullptr for a layer the weights do not have.
HostTensor* host_slot(HostWeights& weights, const WeightSpec& spec);
const HostTensor* host_slot(const HostWeights& weights, const WeightSpec& spec);
// The projection a weight or bias belongs to (lm_head included); nullptr for other roles.
HostLinear* host_linear(HostWeights& weights, const WeightSpec& spec);
const HostLinear* host_linear(const HostWeights& weights, const WeightSpec& spec);

}  // namespace fp8llm
