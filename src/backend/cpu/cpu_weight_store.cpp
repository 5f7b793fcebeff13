#include "backend/cpu/cpu_weight_store.h"

#include <cstring>

#include "core/error.h"
#include "core/thread_pool.h"
#include "model/layer_members.h"
#include "quant/quantizer.h"

namespace fp8llm {
namespace {

// The projection a weight tensor is (nullptr for other roles, biases included).
const HostLinear* projection(const HostWeights& w, const WeightSpec& spec) {
  return is_bias_role(spec.role) ? nullptr : host_linear(w, spec);
}

// One body for the const and the mutable lookups (Weights: HostWeights, const or not).
template <typename Weights>
auto& held(Weights& w, const WeightSpec& spec) {
  auto* t = host_slot(w, spec);
  FP8LLM_CHECK(t != nullptr && !t->bytes.empty(), "{}: the CPU backend holds no such tensor",
               spec.name);
  FP8LLM_CHECK(t->shape == spec.shape, "{}: held with shape {}, expected {}", spec.name,
               shape_str(t->shape), shape_str(spec.shape));
  return *t;
}

// Converts `count` values to `dst_type` in chunks (through fp32, which holds BF16, F16 and F32
// exactly), on every core.
void convert_into(DType src_type, const std::byte* src, DType dst_type, std::byte* dst,
                  size_t count) {
  if (src_type == dst_type) {
    std::memcpy(dst, src, count * dtype_size(src_type));
    return;
  }
  constexpr size_t kChunk = 1 << 14;
  parallel_for((count + kChunk - 1) / kChunk, 1, [&](size_t begin, size_t end) {
    std::vector<float> buffer(kChunk);
    for (size_t c = begin; c < end; ++c) {
      const size_t at = c * kChunk, n = std::min(kChunk, count - at);
      to_f32(src_type, src + at * dtype_size(src_type), buffer.data(), n);
      from_f32(dst_type, buffer.data(), dst + at * dtype_size(dst_type), n);
    }
  });
}

}  // namespace

HeldWeight CpuWeightStore::held_weight(const WeightSpec& spec) const {
  const HostTensor& t = held(backend_.weights(), spec);
  const HostLinear* lin = projection(backend_.weights(), spec);
  if (lin != nullptr && lin->scheme) return {DType::F8_E4M3, lin->scheme};
  return {t.dtype, std::nullopt};
}

void CpuWeightStore::read_weight(const WeightSpec& spec, std::span<std::byte> values,
                                 std::span<float> scales) const {
  const HostTensor& t = held(backend_.weights(), spec);
  if (!values.empty()) {
    FP8LLM_CHECK(values.size() == t.bytes.size(), "{}: {} bytes asked for, the tensor has {}",
                 spec.name, values.size(), t.bytes.size());
    std::memcpy(values.data(), t.bytes.data(), t.bytes.size());
  }
  if (!scales.empty()) {
    const HostLinear* lin = projection(backend_.weights(), spec);
    FP8LLM_CHECK(lin != nullptr && lin->scheme, "{}: not an FP8 projection, it has no scales",
                 spec.name);
    FP8LLM_CHECK(static_cast<int64_t>(scales.size()) == lin->scale.numel(),
                 "{}: {} scales asked for, the weight has {}", spec.name, scales.size(),
                 lin->scale.numel());
    std::memcpy(scales.data(), lin->scale.bytes.data(), lin->scale.bytes.size());
  }
}

HeldMemory CpuWeightStore::memory(const WeightSpec& spec) {
  HostWeights& w = backend_.weights();
  HeldMemory m{.values = held(w, spec).bytes.data()};
  HostLinear* lin = is_bias_role(spec.role) ? nullptr : host_linear(w, spec);
  if (lin != nullptr && lin->scheme) {
    m.scales = lin->scale.as<float>();
    m.scale_row_stride = lin->scale.shape[1];
  }
  return m;
}

void CpuWeightStore::write(std::span<const WeightWrite> writes) {
  HostWeights& w = backend_.weights();
  for (const WeightWrite& write : writes) {
    const WeightSpec& spec = *write.spec;
    FP8LLM_CHECK(!write.on_device, "{}: the CPU backend reads host memory only", spec.name);
    HostTensor& slot = held(w, spec);
    HostLinear* lin = is_bias_role(spec.role) ? nullptr : host_linear(w, spec);
    const size_t count = static_cast<size_t>(num_elements(spec.shape));
    if (lin != nullptr && lin->scheme) {
      const TensorView source{write.dtype, spec.shape, write.data, count * dtype_size(write.dtype)};
      quantize_weight(*lin->scheme, source, slot.as<uint8_t>(), lin->scale.as<float>(), spec.name);
    } else {
      convert_into(write.dtype, write.data, slot.dtype, slot.bytes.data(), count);
    }
  }
  backend_.weights_changed();
}

}  // namespace fp8llm
