#include "loader/host_sink.h"

#include "core/error.h"
#include "quant/quantizer.h"

namespace fp8llm {

HostLinear* host_linear(HostWeights& w, const WeightSpec& spec) {
  if (spec.role == WeightRole::LmHead) return &w.lm_head;
  if (spec.layer < 0 || spec.layer >= static_cast<int64_t>(w.layers.size())) return nullptr;
  HostLayer& l = w.layers[static_cast<size_t>(spec.layer)];
  switch (spec.role) {
    case WeightRole::QProj: case WeightRole::QBias: return &l.q;
    case WeightRole::KProj: case WeightRole::KBias: return &l.k;
    case WeightRole::VProj: case WeightRole::VBias: return &l.v;
    case WeightRole::OProj: case WeightRole::OBias: return &l.o;
    case WeightRole::GateProj: case WeightRole::GateBias: return &l.gate;
    case WeightRole::UpProj: case WeightRole::UpBias: return &l.up;
    case WeightRole::DownProj: case WeightRole::DownBias: return &l.down;
    default: return nullptr;
  }
}

HostTensor* host_slot(HostWeights& w, const WeightSpec& spec) {
  switch (spec.role) {
    case WeightRole::Embedding: return &w.embed;
    case WeightRole::FinalNorm: return &w.final_norm;
    case WeightRole::LmHead: return &w.lm_head.weight;
    default: break;
  }
  if (spec.layer < 0 || spec.layer >= static_cast<int64_t>(w.layers.size())) return nullptr;
  HostLayer& l = w.layers[static_cast<size_t>(spec.layer)];
  switch (spec.role) {
    case WeightRole::InputNorm: return &l.input_norm;
    case WeightRole::PostAttnNorm: return &l.post_attention_norm;
    case WeightRole::QNorm: return &l.q_norm;
    case WeightRole::KNorm: return &l.k_norm;
    case WeightRole::QBias: case WeightRole::KBias: case WeightRole::VBias: case WeightRole::OBias:
    case WeightRole::GateBias: case WeightRole::UpBias: case WeightRole::DownBias:
      return &host_linear(w, spec)->bias;
    default: return &host_linear(w, spec)->weight;
  }
}

HostSink::HostSink(const LoadPlan& plan) {
  weights_.layers.resize(static_cast<size_t>(plan.config.num_layers));
  weights_.lm_head_tied = plan.config.tie_word_embeddings;
}

std::byte* HostSink::direct_destination(const PlannedTensor& t) {
  if (t.quantize) return nullptr;
  HostTensor* slot = host_slot(weights_, t.spec);
  FP8LLM_CHECK(slot != nullptr, "no place for tensor '{}'", t.spec.name);
  *slot = HostTensor(t.source.info->dtype, t.spec.shape);
  return slot->bytes.data();
}

void HostSink::consume(const PlannedTensor& t, const TensorView& source) {
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
