#include "loader/shard_sink.h"

#include <cmath>
#include <cstring>

#include "core/error.h"
#include "loader/host_sink.h"
#include "quant/region_quantizer.h"

namespace fp8llm {

HostTensor slice_tensor(const TensorView& source, const TensorSlice& slice) {
  const int64_t k = source.shape.size() > 1 ? source.shape[1] : 1;
  const size_t es = dtype_size(source.dtype);
  HostTensor out(source.dtype,
                 source.shape.size() > 1 ? Shape{slice.rows(), slice.cols()} : Shape{slice.rows()});
  const size_t row_bytes = static_cast<size_t>(slice.cols()) * es;
  for (int64_t r = 0; r < slice.rows(); ++r) {
    std::memcpy(out.bytes.data() + static_cast<size_t>(r) * row_bytes,
                source.data + static_cast<size_t>((slice.row_begin + r) * k + slice.col_begin) * es,
                row_bytes);
  }
  return out;
}

HostTensor slice_weight_scales(Fp8Scheme scheme, const HostTensor& scales,
                               const TensorSlice& slice) {
  return slice_tensor(scales.view(), region_scale_grid(scheme, slice));
}

ShardSink::ShardSink(const LoadPlan& plan, ShardPlan shards) : shards_(std::move(shards)) {
  ranks_.resize(static_cast<size_t>(shards_.ranks()));
  for (HostWeights& w : ranks_) {
    w.layers.resize(static_cast<size_t>(plan.config.num_layers));
    w.lm_head_tied = plan.config.tie_word_embeddings;
  }
}

void ShardSink::consume(const PlannedTensor& t, const TensorView& source) {
  if (t.is_weight_scale) {
    // The whole scale tensor once, checked as a one-rank load checks it, then each rank's part.
    HostTensor full(DType::F32, t.spec.shape);
    convert_weight_scale(source, full);
    const float* sc = full.as<float>();
    for (int64_t i = 0; i < full.numel(); ++i) {
      FP8LLM_CHECK(std::isfinite(sc[i]) && sc[i] >= 0,
                   "tensor '{}': scale {} at element {} is not a finite non-negative number",
                   t.spec.name, sc[i], i);
    }
    for (int r = 0; r < shards_.ranks(); ++r) {
      HostLinear* lin = host_linear(ranks_[static_cast<size_t>(r)], t.spec);
      FP8LLM_CHECK(lin != nullptr, "no place for tensor '{}'", t.spec.name);
      lin->scale = slice_weight_scales(*t.prequantized, full, shards_.slice(t.spec.role, r));
    }
    return;
  }
  for (int r = 0; r < shards_.ranks(); ++r) {
    HostWeights& w = ranks_[static_cast<size_t>(r)];
    const TensorSlice slice = shards_.slice(t.spec.role, r);
    if (t.quantize) {
      HostLinear* lin = host_linear(w, t.spec);
      FP8LLM_CHECK(lin != nullptr, "no place for tensor '{}'", t.spec.name);
      lin->scheme = t.quantize;
      lin->weight = HostTensor(DType::F8_E4M3, {slice.rows(), slice.cols()});
      lin->scale = HostTensor(DType::F32, region_scale_shape(*t.quantize, slice));
      quantize_weight_region(*t.quantize, source, slice, lin->weight.as<uint8_t>(),
                             lin->scale.as<float>(), t.spec.name);
      continue;
    }
    if (t.prequantized) {
      HostLinear* lin = host_linear(w, t.spec);
      FP8LLM_CHECK(lin != nullptr, "no place for tensor '{}'", t.spec.name);
      lin->scheme = t.prequantized;
    }
    HostTensor* slot = host_slot(w, t.spec);
    FP8LLM_CHECK(slot != nullptr, "no place for tensor '{}'", t.spec.name);
    *slot = slice_tensor(source, slice);
  }
}

std::vector<HostWeights> load_sharded_host_weights(const LoadPlan& plan, const ShardPlan& shards,
                                                   const StreamProgress& progress,
                                                   StreamStats* stats) {
  ShardSink sink(plan, shards);
  const StreamStats s = stream_weights(plan, sink, progress);
  if (stats) *stats = s;
  return sink.take();
}

}  // namespace fp8llm
