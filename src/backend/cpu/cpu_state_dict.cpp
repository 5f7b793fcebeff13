// The CPU backend's side of the state dict: its HostWeights under their checkpoint names. The
// weights are held as loaded, so FP8 projections are the codes and F32 scales in the checkpoint
// layout already, and every other tensor keeps its checkpoint dtype.
#include <cstring>

#include "backend/cpu/cpu_backend.h"
#include "core/error.h"

namespace fp8llm {
namespace {

// The linear layer a projection weight belongs to (nullptr for other roles).
const HostLinear* projection(const HostWeights& w, const WeightSpec& spec) {
  if (spec.role == WeightRole::LmHead) return &w.lm_head;
  if (spec.layer < 0 || spec.layer >= static_cast<int64_t>(w.layers.size())) return nullptr;
  const HostLayer& l = w.layers[static_cast<size_t>(spec.layer)];
  switch (spec.role) {
    case WeightRole::QProj:
      return &l.q;
    case WeightRole::KProj:
      return &l.k;
    case WeightRole::VProj:
      return &l.v;
    case WeightRole::OProj:
      return &l.o;
    case WeightRole::GateProj:
      return &l.gate;
    case WeightRole::UpProj:
      return &l.up;
    case WeightRole::DownProj:
      return &l.down;
    default:
      return nullptr;
  }
}

// The tensor holding `spec`'s values: a projection's weight, a bias, a norm, the embedding.
const HostTensor* values_of(const HostWeights& w, const WeightSpec& spec) {
  if (const HostLinear* lin = projection(w, spec)) return &lin->weight;
  if (spec.role == WeightRole::Embedding) return &w.embed;
  if (spec.role == WeightRole::FinalNorm) return &w.final_norm;
  if (spec.layer < 0 || spec.layer >= static_cast<int64_t>(w.layers.size())) return nullptr;
  const HostLayer& l = w.layers[static_cast<size_t>(spec.layer)];
  switch (spec.role) {
    case WeightRole::InputNorm:
      return &l.input_norm;
    case WeightRole::PostAttnNorm:
      return &l.post_attention_norm;
    case WeightRole::QNorm:
      return &l.q_norm;
    case WeightRole::KNorm:
      return &l.k_norm;
    case WeightRole::QBias:
      return &l.q.bias;
    case WeightRole::KBias:
      return &l.k.bias;
    case WeightRole::VBias:
      return &l.v.bias;
    case WeightRole::OBias:
      return &l.o.bias;
    case WeightRole::GateBias:
      return &l.gate.bias;
    case WeightRole::UpBias:
      return &l.up.bias;
    case WeightRole::DownBias:
      return &l.down.bias;
    default:
      return nullptr;
  }
}

const HostTensor& held(const HostWeights& w, const WeightSpec& spec) {
  const HostTensor* t = values_of(w, spec);
  FP8LLM_CHECK(t != nullptr && !t->bytes.empty(), "{}: the CPU backend holds no such tensor",
               spec.name);
  FP8LLM_CHECK(t->shape == spec.shape, "{}: held with shape {}, expected {}", spec.name,
               shape_str(t->shape), shape_str(spec.shape));
  return *t;
}

}  // namespace

HeldWeight CpuBackend::held_weight(const WeightSpec& spec) const {
  const HostTensor& t = held(weights_, spec);
  const HostLinear* lin = projection(weights_, spec);
  if (lin != nullptr && lin->scheme) return {DType::F8_E4M3, lin->scheme};
  return {t.dtype, std::nullopt};
}

void CpuBackend::read_weight(const WeightSpec& spec, std::span<std::byte> values,
                             std::span<float> scales) const {
  const HostTensor& t = held(weights_, spec);
  if (!values.empty()) {
    FP8LLM_CHECK(values.size() == t.bytes.size(), "{}: {} bytes asked for, the tensor has {}",
                 spec.name, values.size(), t.bytes.size());
    std::memcpy(values.data(), t.bytes.data(), t.bytes.size());
  }
  if (!scales.empty()) {
    const HostLinear* lin = projection(weights_, spec);
    FP8LLM_CHECK(lin != nullptr && lin->scheme, "{}: not an FP8 projection, it has no scales",
                 spec.name);
    FP8LLM_CHECK(static_cast<int64_t>(scales.size()) == lin->scale.numel(),
                 "{}: {} scales asked for, the weight has {}", spec.name, scales.size(),
                 lin->scale.numel());
    std::memcpy(scales.data(), lin->scale.bytes.data(), lin->scale.bytes.size());
  }
}

}  // namespace fp8llm
