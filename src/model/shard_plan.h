// Tensor parallelism: which part of every tensor each of N ranks holds, from the config alone.
//
//   q, k, v, gate, up   column-parallel: a rank holds a range of output rows (its heads, its
//                       slice of the MLP), so its outputs are whole and need no communication
//   o, down             row-parallel: a rank holds the input columns that match its q heads / MLP
//                       slice and computes a partial sum of every output: one all-reduce each
//   embedding           a range of the vocabulary: a rank embeds the tokens in its range, zeros
//                       for the others, then an all-reduce sums the one row that is not zero
//   lm_head             a range of the vocabulary: a rank computes its slice of the logits, then
//                       an all-gather puts the slices side by side (tied: the embedding's range)
//   norms               whole on every rank (so are the o and down biases, added after the sum)
//
// Query heads stay with their KV head: rank r holds q heads [r H/N, (r+1) H/N) and the KV heads
// they read. With fewer KV heads than ranks, each KV head is held by the N / KV ranks whose q
// heads use it (replicated, as vLLM does). Every rank computes with the same sizes (RankDims), so
// one forward pass serves all of them. A config that does not divide is an Error naming the
// field and N.
#pragma once

#include <cstdint>
#include <vector>

#include "core/tensor.h"
#include "formats/hf_config.h"
#include "model/weights.h"

namespace fp8llm {

// What one rank computes with; the same on every rank of a plan.
struct RankDims {
  int ranks = 1;
  int64_t heads = 0;         // query heads
  int64_t kv_heads = 0;      // KV heads (1 where a KV head is replicated)
  int64_t intermediate = 0;  // MLP width
  int64_t vocab = 0;         // vocabulary rows of the embedding and lm_head, logits columns
};

// The whole model on one rank.
RankDims whole_model_dims(const ModelConfig& config);

// How a tensor is split: by output rows, by input columns, or not at all.
enum class ShardAxis { Replicated, Rows, Columns };

class ShardPlan {
 public:
  const ModelConfig& config() const { return config_; }
  int ranks() const { return dims_.ranks; }
  const RankDims& dims() const { return dims_; }

  // The config rank `rank` computes with: its heads, KV heads and MLP width (vocabulary and
  // hidden size stay the model's).
  ModelConfig rank_config(int rank) const;
  // The first query head, KV head, MLP column and vocabulary row of a rank.
  int64_t first_head(int rank) const { return rank * dims_.heads; }
  int64_t first_kv_head(int rank) const;
  int64_t first_intermediate(int rank) const { return rank * dims_.intermediate; }
  int64_t first_vocab(int rank) const { return rank * dims_.vocab; }

  ShardAxis axis(WeightRole role) const;
  // The rectangle of the tensor of `role` (shaped as expected_weights(config()) says) that rank
  // `rank` holds; a 1-D tensor has one column.
  TensorSlice slice(WeightRole role, int rank) const;

 private:
  friend ShardPlan plan_shards(const ModelConfig& config, int ranks);
  ModelConfig config_;
  RankDims dims_;
};

// The plan for `ranks` ranks; an Error naming the field when the config does not divide (ranks
// below 1, more ranks than query heads, heads, KV heads, MLP width or vocabulary not a multiple).
ShardPlan plan_shards(const ModelConfig& config, int ranks);

}  // namespace fp8llm
