// The CPU backend: the exact reference implementation of the Backend ops, fp32 activations and
// fp32 accumulation, weights as loaded (FP8 + scales, or BF16), multi-threaded.
#pragma once

#include <deque>
#include <vector>

#include "backend/cpu/rope.h"
#include "formats/hf_config.h"
#include "model/backend.h"
#include "model/host_weights.h"

namespace fp8llm {

struct CpuBackendOptions {
  // Positions the KV cache can hold; 0: the model's max_position_embeddings.
  int64_t max_context = 0;
};

class CpuBackend : public Backend {
 public:
  CpuBackend(const ModelConfig& config, HostWeights weights, CpuBackendOptions options = {});

  const HostWeights& weights() const { return weights_; }
  HostWeights& weights() { return weights_; }

  void begin_forward(int64_t tokens, int64_t past) override;
  Act alloc(int64_t rows, int64_t cols) override;
  Act rows(Act a, int64_t begin, int64_t count) override;
  void embed(std::span<const int32_t> ids, Act out) override;
  void rms_norm(Act in, int64_t layer, NormKind norm, Act out) override;
  void linear(Act in, int64_t layer, LinearKind kind, Act out) override;
  void rope(Act x, int64_t heads, std::span<const int64_t> positions) override;
  void attention(int64_t layer, Act q, Act k, Act v, int64_t past, Act out) override;
  void silu_mul(Act gate, Act up, Act out) override;
  void add(Act x, Act y) override;
  void read(Act in, float* host_out) override;
  TopToken top_token(Act logits) override;
  void reset_cache() override;
  int64_t cache_capacity() const override { return capacity_; }
  // The state dict (cpu_state_dict.cpp): the weights as loaded, FP8 projections with their scales.
  HeldWeight held_weight(const WeightSpec& spec) const override;
  void read_weight(const WeightSpec& spec, std::span<std::byte> values,
                   std::span<float> scales) const override;

 private:
  const HostLinear& linear_weights(int64_t layer, LinearKind kind) const;
  const std::vector<float>& norm_weights(int64_t layer, NormKind kind) const;
  const std::vector<float>& bias(int64_t layer, LinearKind kind) const;

  ModelConfig config_;
  HostWeights weights_;
  int64_t capacity_;
  RopeTable rope_;
  // Norm weights and biases upcast to fp32 once (small), indexed [layer][kind].
  std::vector<std::vector<std::vector<float>>> norms_;
  std::vector<float> final_norm_;
  std::vector<std::vector<std::vector<float>>> biases_;
  std::vector<float> no_bias_;
  // Activations of the current forward pass.
  std::deque<std::vector<float>> arena_;
  // KV cache per layer: [positions, kv_heads * head_dim], grown as the sequence grows.
  std::vector<std::vector<float>> k_cache_, v_cache_;
};

}  // namespace fp8llm
