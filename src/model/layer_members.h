// Which member of a decoder layer's weights an op's LinearKind / NormKind or a checkpoint tensor's
// WeightRole names. Every holder of a layer (HostLayer on the CPU, DeviceLayer on the GPU) names
// its members as Hugging Face names the modules -- q, k, v, o, gate, up, down for the projections,
// input_norm, post_attention_norm, q_norm, k_norm for the norms -- so the mapping is written once,
// here, as templates over the layer type, instead of one switch per backend and per use.
#pragma once

#include <array>
#include <optional>

#include "core/error.h"
#include "model/backend.h"
#include "model/weights.h"

namespace fp8llm {

// A layer's own projections and norms, each list in the order of its enum (so a table indexed by
// the kind can be built by walking it). LinearKind::LmHead and NormKind::Final are the model's.
inline constexpr std::array<LinearKind, 7> kLayerLinearKinds = {
    LinearKind::Q,    LinearKind::K,  LinearKind::V,   LinearKind::O,
    LinearKind::Gate, LinearKind::Up, LinearKind::Down};
inline constexpr std::array<NormKind, 4> kLayerNormKinds = {
    NormKind::Input, NormKind::PostAttention, NormKind::QNorm, NormKind::KNorm};

// The projection a tensor belongs to: its weight (QProj..DownProj, LmHead) or its bias
// (QBias..DownBias). nullopt for the embedding and the norms.
std::optional<LinearKind> linear_kind_of(WeightRole role);
// The weight of a projection: QProj..DownProj, LmHead.
WeightRole weight_role_of(LinearKind kind);
// The norm a tensor is (FinalNorm: NormKind::Final); nullopt for every other role.
std::optional<NormKind> norm_kind_of(WeightRole role);
// QBias..DownBias.
bool is_bias_role(WeightRole role);

// layer.q for LinearKind::Q, and so on; lm_head is not a layer's (an Error).
template <typename Layer>
auto& layer_linear(Layer& layer, LinearKind kind) {
  switch (kind) {
    case LinearKind::Q:
      return layer.q;
    case LinearKind::K:
      return layer.k;
    case LinearKind::V:
      return layer.v;
    case LinearKind::O:
      return layer.o;
    case LinearKind::Gate:
      return layer.gate;
    case LinearKind::Up:
      return layer.up;
    case LinearKind::Down:
      return layer.down;
    case LinearKind::LmHead:
      break;
  }
  fail("lm_head is not a projection of a decoder layer");
}

// layer.input_norm for NormKind::Input, and so on; the final norm is not a layer's (an Error).
template <typename Layer>
auto& layer_norm(Layer& layer, NormKind kind) {
  switch (kind) {
    case NormKind::Input:
      return layer.input_norm;
    case NormKind::PostAttention:
      return layer.post_attention_norm;
    case NormKind::QNorm:
      return layer.q_norm;
    case NormKind::KNorm:
      return layer.k_norm;
    case NormKind::Final:
      break;
  }
  fail("the final norm is not a norm of a decoder layer");
}

}  // namespace fp8llm
