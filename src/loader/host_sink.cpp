#include "loader/host_sink.h"

#include <algorithm>

#include "core/error.h"
#include "loader/value_checks.h"
#include "quant/quantizer.h"

namespace fp8llm {

void convert_weight_scale(const TensorView& source, HostTensor& scale) {
  const int64_t n = scale.numel();
  float* out = scale.as<float>();
  if (source.numel() == n) {
    to_f32(source.dtype, source.data, out, static_cast<size_t>(n));
  } else {
    // A per-tensor scale: the same scale for every row.
    float one = 0;
    to_f32(source.dtype, source.data, &one, 1);
    std::fill(out, out + n, one);
  }
}

HostSink::HostSink(const LoadPlan& plan) {
  weights_.layers.resize(static_cast<size_t>(plan.config.num_layers));
  weights_.lm_head_tied = plan.config.tie_word_embeddings;
}

std::byte* HostSink::direct_destination(const PlannedTensor& t) {
  if (t.quantize) return nullptr;
  if (t.prequantized) {
    HostLinear* lin = host_linear(weights_, t.spec);
    FP8LLM_CHECK(lin != nullptr, "no place for tensor '{}'", t.spec.name);
    if (!t.is_weight_scale) {
      lin->scheme = t.prequantized;
      lin->weight = HostTensor(DType::F8_E4M3, t.spec.shape);
      return lin->weight.bytes.data();
    }
    lin->scale = HostTensor(DType::F32, t.spec.shape);
    // F32 scales of the final shape are read in place; others are converted in consume().
    const bool as_is = t.source.info->dtype == DType::F32 && t.source.info->shape == t.spec.shape;
    return as_is ? lin->scale.bytes.data() : nullptr;
  }
  HostTensor* slot = host_slot(weights_, t.spec);
  FP8LLM_CHECK(slot != nullptr, "no place for tensor '{}'", t.spec.name);
  *slot = HostTensor(t.source.info->dtype, t.spec.shape);
  return slot->bytes.data();
}

void HostSink::consume(const PlannedTensor& t, const TensorView& source) {
  check_planned_tensor(t, source);
  if (t.is_weight_scale) {
    HostLinear* lin = host_linear(weights_, t.spec);
    FP8LLM_CHECK(lin != nullptr, "no place for tensor '{}'", t.spec.name);
    if (source.data != lin->scale.bytes.data()) convert_weight_scale(source, lin->scale);
    return;
  }
  if (!t.quantize) return;  // already read into its slot by direct_destination
  HostLinear* lin = host_linear(weights_, t.spec);
  FP8LLM_CHECK(lin != nullptr, "no place for tensor '{}'", t.spec.name);
  const int64_t n = t.spec.shape[0], k = t.spec.shape[1];
  lin->scheme = t.quantize;
  lin->weight = HostTensor(DType::F8_E4M3, t.spec.shape);
  lin->scale = HostTensor(DType::F32, weight_scale_shape(*t.quantize, n, k));
  quantize_weight(*t.quantize, source, lin->weight.as<uint8_t>(), lin->scale.as<float>(),
                  t.spec.name);
}

HostWeights load_host_weights(const LoadPlan& plan, const StreamProgress& progress,
                              StreamStats* stats) {
  HostSink sink(plan);
  const StreamStats s = stream_weights(plan, sink, progress);
  if (stats) *stats = s;
  return sink.take();
}

}  // namespace fp8llm
