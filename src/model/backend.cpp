#include "model/backend.h"

#include <array>

#include "core/error.h"

namespace fp8llm {

void Backend::add_rms_norm(Act x, Act y, int64_t layer, NormKind norm, Act out) {
  add(x, y);
  rms_norm(x, layer, norm, out);
}

void Backend::rms_norm_for(Act in, int64_t layer, NormKind norm, Act out, NextLinear) {
  rms_norm(in, layer, norm, out);
}

void Backend::add_rms_norm_for(Act x, Act y, int64_t layer, NormKind norm, Act out, NextLinear) {
  add_rms_norm(x, y, layer, norm, out);
}

void Backend::silu_mul_for(Act gate, Act up, Act out, NextLinear) {
  silu_mul(gate, up, out);
}

void Backend::linear_group(Act in, int64_t layer, std::span<const LinearKind> kinds,
                           std::span<const Act> outs) {
  FP8LLM_CHECK(kinds.size() == outs.size(), "linear_group: {} weights for {} outputs", kinds.size(),
               outs.size());
  for (size_t i = 0; i < kinds.size(); ++i) linear(in, layer, kinds[i], outs[i]);
}

void Backend::project(Act in, int64_t layer, std::span<const LinearKind> kinds,
                      const BatchView& batch, std::span<const Act> outs) {
  if (batch.lora) {
    linear_group_lora(in, layer, kinds, batch, outs);
  } else if (kinds.size() == 1) {
    linear(in, layer, kinds[0], outs[0]);
  } else {
    linear_group(in, layer, kinds, outs);
  }
}

void Backend::rope_append_kv(int64_t layer, Act q, Act k, Act v, const KvCacheView& kv,
                             const BatchView& batch) {
  rope(q, q.cols / kv.spec.head_dim, batch);
  rope(k, kv.spec.kv_heads, batch);
  append_kv(layer, k, v, kv, batch);
}

void Backend::qkv_rope_append_kv(Act in, int64_t layer, Act q, Act k, Act v, const KvCacheView& kv,
                                 const BatchView& batch) {
  const std::array<LinearKind, 3> kinds{LinearKind::Q, LinearKind::K, LinearKind::V};
  project(in, layer, kinds, batch, std::array<Act, 3>{q, k, v});
  rope_append_kv(layer, q, k, v, kv, batch);
}

void Backend::all_reduce(Act) {
  fail("this backend holds the whole model: it has no other ranks to sum with");
}

void Backend::reduce_partial(Act, int64_t, LinearKind) {
  fail("this backend holds the whole model: it has no other ranks to sum with");
}

void Backend::all_gather(Act, Act) {
  fail("this backend holds the whole model: it has no other ranks to gather from");
}

void Backend::reserve_lora(int /*slots*/, int64_t /*max_rank*/) {
  fail("this backend does not run LoRA adapters");
}

void Backend::set_lora(int /*slot*/, const LoraAdapter* /*adapter*/) {
  fail("this backend does not run LoRA adapters");
}

void Backend::lora(Act, int64_t, LinearKind, const BatchView&, Act) {
  fail("this backend does not run LoRA adapters");
}

void Backend::lora_shrink(Act, int64_t, std::span<const LinearKind>, const BatchView&) {}

void Backend::lora_expand(Act in, int64_t layer, std::span<const LinearKind> kinds,
                          const BatchView& batch, std::span<const Act> outs) {
  FP8LLM_CHECK(kinds.size() == outs.size(), "lora: {} projections for {} outputs", kinds.size(),
               outs.size());
  for (size_t i = 0; i < kinds.size(); ++i) lora(in, layer, kinds[i], batch, outs[i]);
}

void Backend::linear_group_lora(Act in, int64_t layer, std::span<const LinearKind> kinds,
                                const BatchView& batch, std::span<const Act> outs) {
  FP8LLM_CHECK(kinds.size() == outs.size() && !kinds.empty(), "lora: {} projections for {} outputs",
               kinds.size(), outs.size());
  lora_shrink(in, layer, kinds, batch);
  if (kinds.size() == 1) {
    linear(in, layer, kinds[0], outs[0]);
  } else {
    linear_group(in, layer, kinds, outs);
  }
  lora_expand(in, layer, kinds, batch, outs);
}

void Backend::stage_lora(int /*slot*/, int64_t /*rank*/,
                         std::span<const LoraDeviceFactor> /*factors*/) {
  fail("this backend reads adapter factors from host memory only");
}

void Backend::commit_lora(int /*slot*/) {
  fail("this backend reads adapter factors from host memory only");
}

}  // namespace fp8llm
