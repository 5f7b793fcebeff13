#include "model/host_weights.h"

#include "model/layer_members.h"

namespace fp8llm {
namespace {

uint64_t linear_bytes(const HostLinear& l) {
  return l.weight.bytes.size() + l.scale.bytes.size() + l.bias.bytes.size();
}

// One body for the const and the mutable lookups (Weights: HostWeights, const or not).
template <typename Weights>
auto* layer_of(Weights& w, const WeightSpec& spec) {
  const bool held = spec.layer >= 0 && spec.layer < static_cast<int64_t>(w.layers.size());
  return held ? &w.layers[static_cast<size_t>(spec.layer)] : nullptr;
}

template <typename Weights>
auto linear_in(Weights& w, const WeightSpec& spec) -> decltype(&w.lm_head) {
  const std::optional<LinearKind> kind = linear_kind_of(spec.role);
  if (!kind) return nullptr;
  if (*kind == LinearKind::LmHead) return &w.lm_head;
  auto* layer = layer_of(w, spec);
  return layer ? &layer_linear(*layer, *kind) : nullptr;
}

template <typename Weights>
auto slot_in(Weights& w, const WeightSpec& spec) -> decltype(&w.embed) {
  if (spec.role == WeightRole::Embedding) return &w.embed;
  if (spec.role == WeightRole::FinalNorm) return &w.final_norm;
  if (auto* lin = linear_in(w, spec)) return is_bias_role(spec.role) ? &lin->bias : &lin->weight;
  const std::optional<NormKind> norm = norm_kind_of(spec.role);
  auto* layer = layer_of(w, spec);
  return norm && layer ? &layer_norm(*layer, *norm) : nullptr;
}

}  // namespace

uint64_t HostWeights::resident_bytes() const {
  uint64_t total = embed.bytes.size() + final_norm.bytes.size() + linear_bytes(lm_head);
  for (const HostLayer& l : layers) {
    for (NormKind kind : kLayerNormKinds) total += layer_norm(l, kind).bytes.size();
    for (LinearKind kind : kLayerLinearKinds) total += linear_bytes(layer_linear(l, kind));
  }
  return total;
}

HostTensor* host_slot(HostWeights& weights, const WeightSpec& spec) {
  return slot_in(weights, spec);
}
const HostTensor* host_slot(const HostWeights& weights, const WeightSpec& spec) {
  return slot_in(weights, spec);
}
HostLinear* host_linear(HostWeights& weights, const WeightSpec& spec) {
  return linear_in(weights, spec);
}
const HostLinear* host_linear(const HostWeights& weights, const WeightSpec& spec) {
  return linear_in(weights, spec);
}

}  // namespace fp8llm
