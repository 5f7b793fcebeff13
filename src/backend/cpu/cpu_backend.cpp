#include "backend/cpu/cpu_backend.h"

#include <algorithm>
#include <cmath>
#include <cstring>

#include "backend/cpu/attention.h"
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

CpuBackend::CpuBackend(const ModelConfig& config, HostWeights weights, CpuBackendOptions options)
    : config_(config),
      weights_(std::move(weights)),
      capacity_(options.max_context > 0
                    ? std::min(options.max_context, config.max_position_embeddings)
                    : config.max_position_embeddings),
      rope_(rope_params(config.rope), config.head_dim) {
  FP8LLM_CHECK(static_cast<int64_t>(weights_.layers.size()) == config.num_layers,
               "CPU backend: {} layers of weights for a {}-layer config", weights_.layers.size(),
               config.num_layers);
  // fp32 copies of each layer's norms and biases, indexed by kind.
  for (const HostLayer& l : weights_.layers) {
    std::vector<std::vector<float>>& norms = norms_.emplace_back();
    for (NormKind kind : kLayerNormKinds) norms.push_back(to_f32_vector(layer_norm(l, kind)));
    std::vector<std::vector<float>>& biases = biases_.emplace_back();
    for (LinearKind kind : kLayerLinearKinds)
      biases.push_back(to_f32_vector(layer_linear(l, kind).bias));
  }
  final_norm_ = to_f32_vector(weights_.final_norm);
  k_cache_.resize(static_cast<size_t>(config.num_layers));
  v_cache_.resize(static_cast<size_t>(config.num_layers));
}

void CpuBackend::begin_forward(int64_t /*tokens*/, int64_t /*past*/) {
  arena_.clear();
}

Act CpuBackend::alloc(int64_t rows, int64_t cols) {
  arena_.emplace_back(static_cast<size_t>(rows * cols));
  return {arena_.back().data(), rows, cols};
}

Act CpuBackend::rows(Act a, int64_t begin, int64_t count) {
  return {f32(a) + begin * a.cols, count, a.cols};
}

void CpuBackend::embed(std::span<const int32_t> ids, Act out) {
  const HostTensor& table = weights_.embed;
  const int64_t vocab = table.shape[0], hidden = table.shape[1];
  const size_t row_bytes = static_cast<size_t>(hidden) * dtype_size(table.dtype);
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

void CpuBackend::rope(Act x, int64_t heads, std::span<const int64_t> positions) {
  cpu::apply_rope(f32(x), x.rows, heads, config_.head_dim, positions, rope_);
}

void CpuBackend::attention(int64_t layer, Act q, Act k, Act v, int64_t past, Act out) {
  const int64_t kv_dim = config_.num_kv_heads * config_.head_dim;
  const auto l = static_cast<size_t>(layer);
  const auto needed = static_cast<size_t>((past + q.rows) * kv_dim);
  FP8LLM_CHECK(past + q.rows <= capacity_, "context of {} positions exceeded", capacity_);
  FP8LLM_CHECK(static_cast<int64_t>(k_cache_[l].size()) >= past * kv_dim,
               "attention: the cache holds fewer than {} positions", past);
  k_cache_[l].resize(needed);
  v_cache_[l].resize(needed);
  std::memcpy(k_cache_[l].data() + past * kv_dim, f32(k),
              sizeof(float) * static_cast<size_t>(k.rows * kv_dim));
  std::memcpy(v_cache_[l].data() + past * kv_dim, f32(v),
              sizeof(float) * static_cast<size_t>(v.rows * kv_dim));
  cpu::attention(f32(q), q.rows, config_.num_heads, config_.num_kv_heads, config_.head_dim,
                 k_cache_[l].data(), v_cache_[l].data(), past, f32(out));
}

void CpuBackend::silu_mul(Act gate, Act up, Act out) {
  cpu::silu_mul(f32(gate), f32(up), gate.rows * gate.cols, f32(out));
}

void CpuBackend::add(Act x, Act y) {
  cpu::add_inplace(f32(x), f32(y), x.rows * x.cols);
}

void CpuBackend::read(Act in, float* host_out) {
  std::memcpy(host_out, f32(in), sizeof(float) * static_cast<size_t>(in.rows * in.cols));
}

TopToken CpuBackend::top_token(Act logits) {
  FP8LLM_CHECK(logits.rows == 1, "top_token: {} rows, expected one", logits.rows);
  return fp8llm::top_token(std::span<const float>(f32(logits), static_cast<size_t>(logits.cols)));
}

void CpuBackend::reset_cache() {
  for (auto& c : k_cache_) c.clear();
  for (auto& c : v_cache_) c.clear();
}

}  // namespace fp8llm
