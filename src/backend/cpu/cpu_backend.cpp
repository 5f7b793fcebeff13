#include "backend/cpu/cpu_backend.h"

#include <algorithm>
#include <cmath>
#include <cstring>

#include "backend/cpu/attention.h"
#include "backend/cpu/kv_rows.h"
#include "backend/cpu/linear.h"
#include "backend/cpu/ops.h"
#include "core/error.h"
#include "model/layer_members.h"

namespace fp8llm {
namespace {

float* f32(Act a) {
  return static_cast<float*>(a.data);
}

// Empty for an absent tensor (e.g. no bias).
std::vector<float> to_f32_vector(const HostTensor& t) {
  if (t.bytes.empty()) return {};
  std::vector<float> out(static_cast<size_t>(t.numel()));
  to_f32(t.dtype, t.bytes.data(), out.data(), out.size());
  return out;
}

}  // namespace

CpuBackend::CpuBackend(const ModelConfig& config, HostWeights weights)
    : config_(config),
      weights_(std::move(weights)),
      rope_(rope_params(config.rope), config.head_dim) {
  FP8LLM_CHECK(static_cast<int64_t>(weights_.layers.size()) == config.num_layers,
               "CPU backend: {} layers of weights for a {}-layer config", weights_.layers.size(),
               config.num_layers);
  weights_changed();
}

void CpuBackend::weights_changed() {
  // fp32 copies of each layer's norms and biases, indexed by kind.
  norms_.clear();
  biases_.clear();
  for (const HostLayer& l : weights_.layers) {
    std::vector<std::vector<float>>& norms = norms_.emplace_back();
    for (NormKind kind : kLayerNormKinds) norms.push_back(to_f32_vector(layer_norm(l, kind)));
    std::vector<std::vector<float>>& biases = biases_.emplace_back();
    for (LinearKind kind : kLayerLinearKinds)
      biases.push_back(to_f32_vector(layer_linear(l, kind).bias));
  }
  final_norm_ = to_f32_vector(weights_.final_norm);
}

BatchView CpuBackend::prepare(const Batch& batch) {
  return host_view(batch);  // the host arrays are where this backend reads them
}

void CpuBackend::embed(const BatchView& batch, Act out) {
  const HostTensor& table = weights_.embed;
  const int64_t vocab = table.shape[0], hidden = table.shape[1];
  const size_t row_bytes = static_cast<size_t>(hidden) * dtype_size(table.dtype);
  const std::span<const int32_t> ids(batch.token_ids, static_cast<size_t>(batch.num_tokens));
  for (size_t t = 0; t < ids.size(); ++t) {
    FP8LLM_CHECK(ids[t] >= 0 && ids[t] < vocab, "token id {} is out of range (vocabulary of {})",
                 ids[t], vocab);
    to_f32(table.dtype, table.bytes.data() + static_cast<size_t>(ids[t]) * row_bytes,
           f32(out) + static_cast<int64_t>(t) * hidden, static_cast<size_t>(hidden));
  }
}

const std::vector<float>& CpuBackend::norm_weights(int64_t layer, NormKind kind) const {
  if (kind == NormKind::Final) return final_norm_;
  return norms_[static_cast<size_t>(layer)][static_cast<size_t>(kind)];
}

void CpuBackend::rms_norm(Act in, int64_t layer, NormKind kind, Act out) {
  const std::vector<float>& w = norm_weights(layer, kind);
  const auto dim = static_cast<int64_t>(w.size());
  FP8LLM_CHECK(dim > 0 && in.cols % dim == 0, "rms_norm: {} columns for a norm of {}", in.cols,
               dim);
  // Per-head norms (q/k norm) normalize each head_dim slice: the same op over more, shorter rows.
  cpu::rms_norm(f32(in), in.rows * (in.cols / dim), dim, w.data(),
                static_cast<float>(config_.rms_norm_eps), f32(out));
}

const HostLinear& CpuBackend::linear_weights(int64_t layer, LinearKind kind) const {
  if (kind == LinearKind::LmHead) return weights_.lm_head;
  return layer_linear(weights_.layers[static_cast<size_t>(layer)], kind);
}

const std::vector<float>& CpuBackend::bias(int64_t layer, LinearKind kind) const {
  if (kind == LinearKind::LmHead) return no_bias_;
  return biases_[static_cast<size_t>(layer)][static_cast<size_t>(kind)];
}

void CpuBackend::linear(Act in, int64_t layer, LinearKind kind, Act out) {
  const bool tied_head = kind == LinearKind::LmHead && weights_.lm_head_tied;
  const HostTensor& w = tied_head ? weights_.embed : linear_weights(layer, kind).weight;
  const int64_t n = w.shape[0], k = w.shape[1];
  FP8LLM_CHECK(in.cols == k && out.cols == n && in.rows == out.rows,
               "linear: shapes [{}, {}] x [{}, {}]^T -> [{}, {}] do not agree", in.rows, in.cols, n,
               k, out.rows, out.cols);
  const std::vector<float>& b = bias(layer, kind);
  const float* bias_ptr = b.empty() ? nullptr : b.data();
  if (!tied_head && linear_weights(layer, kind).scheme) {
    const HostLinear& lin = linear_weights(layer, kind);
    cpu::linear_fp8(*lin.scheme, f32(in), in.rows, k, lin.weight.as<uint8_t>(),
                    lin.scale.as<float>(), n, bias_ptr, f32(out));
  } else if (w.dtype == DType::BF16) {
    cpu::linear_bf16(f32(in), in.rows, k, w.as<uint16_t>(), n, bias_ptr, f32(out));
  } else if (w.dtype == DType::F16) {
    cpu::linear_f16(f32(in), in.rows, k, w.as<uint16_t>(), n, bias_ptr, f32(out));
  } else {
    cpu::linear_f32(f32(in), in.rows, k, w.as<float>(), n, bias_ptr, f32(out));
  }
}

void CpuBackend::rope(Act x, int64_t heads, const BatchView& batch) {
  cpu::apply_rope(f32(x), x.rows, heads, config_.head_dim,
                  std::span<const int64_t>(batch.positions, static_cast<size_t>(batch.num_tokens)),
                  rope_);
}

void CpuBackend::append_kv(int64_t layer, Act k, Act v, const KvCacheView& kv,
                           const BatchView& batch) {
  const KvLayer& l = kv.layers[static_cast<size_t>(layer)];
  const cpu::KvRows k_rows(kv.spec, l.k, l.k_scale), v_rows(kv.spec, l.v, l.v_scale);
  const int64_t row = kv.spec.row_elements();
  FP8LLM_CHECK(k.cols == row && v.cols == row && k.rows == batch.num_tokens,
               "append_kv: k/v [{}, {}] for {} tokens of {} values", k.rows, k.cols,
               batch.num_tokens, row);
  for (int64_t t = 0; t < batch.num_tokens; ++t) {
    const int64_t slot = batch.slots[t];
    FP8LLM_CHECK(slot >= 0 && slot < kv.spec.slots(), "append_kv: slot {} outside the cache ({})",
                 slot, kv.spec.slots());
    k_rows.store(slot, f32(k) + t * row);
    v_rows.store(slot, f32(v) + t * row);
  }
}

void CpuBackend::attention(int64_t layer, Act q, const KvCacheView& kv, const BatchView& batch,
                           Act out) {
  FP8LLM_CHECK(q.rows == batch.num_tokens && q.cols == config_.num_heads * config_.head_dim,
               "attention: q [{}, {}] for {} tokens", q.rows, q.cols, batch.num_tokens);
  cpu::paged_attention(f32(q), config_.num_heads, kv.spec, kv.layers[static_cast<size_t>(layer)],
                       batch, f32(out));
}

void CpuBackend::silu_mul(Act gate, Act up, Act out) {
  cpu::silu_mul(f32(gate), f32(up), gate.rows * gate.cols, f32(out));
}

void CpuBackend::add(Act x, Act y) {
  cpu::add_inplace(f32(x), f32(y), x.rows * x.cols);
}

void CpuBackend::lora(Act in, int64_t layer, LinearKind kind, const BatchView& batch, Act out) {
  FP8LLM_CHECK(in.rows == batch.num_tokens && out.rows == in.rows,
               "lora: [{}, {}] -> [{}, {}] for {} tokens", in.rows, in.cols, out.rows, out.cols,
               batch.num_tokens);
  lora_.apply(f32(in), in.cols, layer, kind, batch, f32(out), out.cols);
}

void CpuBackend::gather_rows(Act in, const BatchView& batch, Act out) {
  FP8LLM_CHECK(out.rows == batch.num_logit_rows && out.cols == in.cols,
               "gather_rows: [{}, {}] for {} rows of {}", out.rows, out.cols, batch.num_logit_rows,
               in.cols);
  for (int64_t i = 0; i < out.rows; ++i) {
    std::memcpy(f32(out) + i * out.cols, f32(in) + int64_t{batch.logit_rows[i]} * in.cols,
                sizeof(float) * static_cast<size_t>(in.cols));
  }
}

void CpuBackend::read(Act in, float* host_out) {
  std::memcpy(host_out, f32(in), sizeof(float) * static_cast<size_t>(in.rows * in.cols));
}

}  // namespace fp8llm
