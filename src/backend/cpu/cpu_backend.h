// The CPU backend: the exact reference implementation of the Backend ops, fp32 activations and
// fp32 accumulation, weights as loaded (FP8 + scales, or BF16), multi-threaded. Every op works row
// by row, so a sequence's results do not depend on what else is in its batch.
#pragma once

#include <optional>
#include <vector>

#include "backend/cpu/cpu_lora.h"
#include "backend/cpu/linear.h"
#include "formats/hf_config.h"
#include "model/backend.h"
#include "model/collective.h"
#include "model/host_weights.h"
#include "model/rope_table.h"
#include "model/shard_plan.h"

namespace fp8llm {

// One rank of a tensor-parallel model: which shard the weights are, and the collectives that
// join this rank to the others.
struct CpuRank {
  std::optional<ShardPlan> plan;  // unset: the whole model
  int rank = 0;
  Collective* collective = nullptr;
};

class CpuBackend : public Backend {
 public:
  // `config` is the whole model's; with `rank.plan`, `weights` are rank.rank's shard (as
  // load_sharded_host_weights makes them) and the backend computes that rank's part of each op.
  CpuBackend(const ModelConfig& config, HostWeights weights, CpuRank rank = {});

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
  void all_reduce(Act x) override;
  void reduce_partial(Act partial, int64_t layer, LinearKind kind) override;
  void all_gather(Act local, Act out) override;

 private:
  // A rank's row-parallel projection (o, down): its output is a partial sum.
  bool partial_output(LinearKind kind) const;
  // Where this rank's part of a projection sits in the whole projection.
  cpu::WeightShard shard_of(LinearKind kind, int64_t in_features) const;
  Collective& collective() const;
  // A rank's row-parallel FP8 projection: its input's scales reduced over the ranks, then its
  // partial sum (cpu_backend_rank.cpp).
  void linear_fp8_partial(Act in, Fp8Scheme scheme, const uint8_t* wq, const float* wscale,
                          int64_t n, const cpu::WeightShard& shard, Act out);

  const HostLinear& linear_weights(int64_t layer, LinearKind kind) const;
  const std::vector<float>& norm_weights(int64_t layer, NormKind kind) const;
  const std::vector<float>& bias(int64_t layer, LinearKind kind) const;

  ModelConfig config_;  // the rank's: its heads, KV heads and MLP width
  CpuRank rank_;
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
