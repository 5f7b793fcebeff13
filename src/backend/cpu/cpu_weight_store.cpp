#include "backend/cpu/cpu_weight_store.h"

#include <cstring>

#include "core/error.h"
#include "model/layer_members.h"

namespace fp8llm {
namespace {

// The projection a weight tensor is (nullptr for other roles, biases included).
const HostLinear* projection(const HostWeights& w, const WeightSpec& spec) {
  return is_bias_role(spec.role) ? nullptr : host_linear(w, spec);
}

const HostTensor& held(const HostWeights& w, const WeightSpec& spec) {
  const HostTensor* t = host_slot(w, spec);
  FP8LLM_CHECK(t != nullptr && !t->bytes.empty(), "{}: the CPU backend holds no such tensor",
               spec.name);
  FP8LLM_CHECK(t->shape == spec.shape, "{}: held with shape {}, expected {}", spec.name,
               shape_str(t->shape), shape_str(spec.shape));
  return *t;
}

}  // namespace

HeldWeight CpuWeightStore::held_weight(const WeightSpec& spec) const {
  const HostTensor& t = held(weights_, spec);
  const HostLinear* lin = projection(weights_, spec);
  if (lin != nullptr && lin->scheme) return {DType::F8_E4M3, lin->scheme};
  return {t.dtype, std::nullopt};
}

void CpuWeightStore::read_weight(const WeightSpec& spec, std::span<std::byte> values,
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
