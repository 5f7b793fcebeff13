// The CPU backend: the exact reference implementation of the Backend ops, fp32 activations and
// fp32 accumulation, weights as loaded (FP8 + scales, or BF16), multi-threaded. Every op works row
// by row, so a sequence's results do not depend on what else is in its batch.
#pragma once

#include <vector>

#include "backend/cpu/cpu_lora.h"
#include "formats/hf_config.h"
#include "model/backend.h"
#include "model/host_weights.h"
#include "model/rope_table.h"

namespace fp8llm {

class CpuBackend : public Backend {
 public:
  CpuBackend(const ModelConfig& config, HostWeights weights);

  const HostWeights& weights() const { return weights_; }
  HostWeights& weights() { return weights_; }
  // After weights() were written in place: the fp32 copies of the norms and biases follow.
  void weights_changed();

  BatchView prepare(const Batch& batch) override;
  void embed(const BatchView& batch, Act out) override;
  void rms_norm(Act in, int64_t layer, NormKind norm, Act out) override;
  void linear(Act in, int64_t layer, LinearKind kind, Act out) override;
  void rope(Act x, int64_t heads, const BatchView& batch) override;
  void append_kv(int64_t layer, Act k, Act v, const KvCacheView& kv,
                 const BatchView& batch) override;
  void attention(int64_t layer, Act q, const KvCacheView& kv, const BatchView& batch,
                 Act out) override;
  void silu_mul(Act gate, Act up, Act out) override;
  void add(Act x, Act y) override;
  void gather_rows(Act in, const BatchView& batch, Act out) override;
  void read(Act in, float* host_out) override;
  void reserve_lora(int slots, int64_t max_rank) override { lora_.reserve(slots, max_rank); }
  void set_lora(int slot, const LoraAdapter* adapter) override { lora_.set(slot, adapter); }
  void lora(Act in, int64_t layer, LinearKind kind, const BatchView& batch, Act out) override;

 private:
  const HostLinear& linear_weights(int64_t layer, LinearKind kind) const;
  const std::vector<float>& norm_weights(int64_t layer, NormKind kind) const;
  const std::vector<float>& bias(int64_t layer, LinearKind kind) const;

  ModelConfig config_;
  HostWeights weights_;
  RopeTable rope_;
  // Norm weights and biases upcast to fp32 once (small), indexed [layer][kind].
  std::vector<std::vector<std::vector<float>>> norms_;
  std::vector<float> final_norm_;
  std::vector<std::vector<std::vector<float>>> biases_;
  std::vector<float> no_bias_;
  cpu::CpuLora lora_;
};

}  // namespace fp8llm
