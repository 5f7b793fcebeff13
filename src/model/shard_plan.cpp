#include "model/shard_plan.h"

#include <algorithm>

#include "core/error.h"

namespace fp8llm {
namespace {

void check_multiple(int ranks, const char* field, int64_t value) {
  FP8LLM_CHECK(value % ranks == 0, "--tensor-parallel {}: {} {} is not a multiple of {}", ranks,
               field, value, ranks);
}

TensorSlice rows(int64_t begin, int64_t count, int64_t cols) {
  return {begin, begin + count, 0, cols};
}

TensorSlice columns(int64_t rows, int64_t begin, int64_t count) {
  return {0, rows, begin, begin + count};
}

}  // namespace

RankDims whole_model_dims(const ModelConfig& c) {
  return {.ranks = 1,
          .heads = c.num_heads,
          .kv_heads = c.num_kv_heads,
          .intermediate = c.intermediate_size,
          .vocab = c.vocab_size};
}

ShardPlan plan_shards(const ModelConfig& c, int ranks) {
  FP8LLM_CHECK(ranks >= 1, "--tensor-parallel {} must be at least 1", ranks);
  FP8LLM_CHECK(ranks <= c.num_heads,
               "--tensor-parallel {}: more ranks than num_attention_heads ({})", ranks,
               c.num_heads);
  check_multiple(ranks, "num_attention_heads", c.num_heads);
  // Fewer KV heads than ranks: each KV head's query heads must fill whole ranks, which holds
  // when the ranks are a multiple of the KV heads.
  if (c.num_kv_heads >= ranks) {
    check_multiple(ranks, "num_key_value_heads", c.num_kv_heads);
  } else {
    FP8LLM_CHECK(ranks % c.num_kv_heads == 0,
                 "--tensor-parallel {}: num_key_value_heads {} is neither a multiple nor a divisor "
                 "of {}",
                 ranks, c.num_kv_heads, ranks);
  }
  check_multiple(ranks, "intermediate_size", c.intermediate_size);
  check_multiple(ranks, "vocab_size", c.vocab_size);
  ShardPlan plan;
  plan.config_ = c;
  plan.dims_ = {.ranks = ranks,
                .heads = c.num_heads / ranks,
                .kv_heads = std::max<int64_t>(1, c.num_kv_heads / ranks),
                .intermediate = c.intermediate_size / ranks,
                .vocab = c.vocab_size / ranks};
  return plan;
}

int64_t ShardPlan::first_kv_head(int rank) const {
  // The KV head of the rank's first query head (grouped query attention: heads / kv_heads query
  // heads read each KV head, in order).
  return first_head(rank) / (config_.num_heads / config_.num_kv_heads);
}

ModelConfig ShardPlan::rank_config(int rank) const {
  FP8LLM_CHECK(rank >= 0 && rank < ranks(), "rank {} of {}", rank, ranks());
  ModelConfig c = config_;
  c.num_heads = dims_.heads;
  c.num_kv_heads = dims_.kv_heads;
  c.intermediate_size = dims_.intermediate;
  return c;
}

ShardAxis ShardPlan::axis(WeightRole role) const {
  if (dims_.ranks == 1) return ShardAxis::Replicated;
  switch (role) {
    case WeightRole::Embedding:
    case WeightRole::LmHead:
    case WeightRole::QProj:
    case WeightRole::KProj:
    case WeightRole::VProj:
    case WeightRole::GateProj:
    case WeightRole::UpProj:
    case WeightRole::QBias:
    case WeightRole::KBias:
    case WeightRole::VBias:
    case WeightRole::GateBias:
    case WeightRole::UpBias:
      return ShardAxis::Rows;
    case WeightRole::OProj:
    case WeightRole::DownProj:
      return ShardAxis::Columns;
    case WeightRole::FinalNorm:
    case WeightRole::InputNorm:
    case WeightRole::PostAttnNorm:
    case WeightRole::QNorm:
    case WeightRole::KNorm:
    case WeightRole::OBias:
    case WeightRole::DownBias:
      break;
  }
  return ShardAxis::Replicated;
}

TensorSlice ShardPlan::slice(WeightRole role, int rank) const {
  FP8LLM_CHECK(rank >= 0 && rank < ranks(), "{}: rank {} of {}", weight_role_name(role), rank,
               ranks());
  const ModelConfig& c = config_;
  const int64_t hd = c.head_dim, q_dim = c.num_heads * hd;
  if (axis(role) == ShardAxis::Replicated) {
    // Whole: the tensor's full extent.
    switch (role) {
      case WeightRole::QNorm:
      case WeightRole::KNorm:
        return rows(0, hd, 1);
      case WeightRole::FinalNorm:
      case WeightRole::InputNorm:
      case WeightRole::PostAttnNorm:
      case WeightRole::OBias:
      case WeightRole::DownBias:
        return rows(0, c.hidden_size, 1);
      case WeightRole::Embedding:
      case WeightRole::LmHead:
        return rows(0, c.vocab_size, c.hidden_size);
      case WeightRole::QProj:
        return rows(0, q_dim, c.hidden_size);
      case WeightRole::KProj:
      case WeightRole::VProj:
        return rows(0, c.num_kv_heads * hd, c.hidden_size);
      case WeightRole::OProj:
        return rows(0, c.hidden_size, q_dim);
      case WeightRole::GateProj:
      case WeightRole::UpProj:
        return rows(0, c.intermediate_size, c.hidden_size);
      case WeightRole::DownProj:
        return rows(0, c.hidden_size, c.intermediate_size);
      case WeightRole::QBias:
        return rows(0, q_dim, 1);
      case WeightRole::KBias:
      case WeightRole::VBias:
        return rows(0, c.num_kv_heads * hd, 1);
      case WeightRole::GateBias:
      case WeightRole::UpBias:
        return rows(0, c.intermediate_size, 1);
    }
  }
  const int64_t k = role == WeightRole::QBias || role == WeightRole::KBias ||
                            role == WeightRole::VBias || role == WeightRole::GateBias ||
                            role == WeightRole::UpBias
                        ? 1
                        : c.hidden_size;
  switch (role) {
    case WeightRole::Embedding:
    case WeightRole::LmHead:
      return rows(first_vocab(rank), dims_.vocab, k);
    case WeightRole::QProj:
    case WeightRole::QBias:
      return rows(first_head(rank) * hd, dims_.heads * hd, k);
    case WeightRole::KProj:
    case WeightRole::VProj:
    case WeightRole::KBias:
    case WeightRole::VBias:
      return rows(first_kv_head(rank) * hd, dims_.kv_heads * hd, k);
    case WeightRole::GateProj:
    case WeightRole::UpProj:
    case WeightRole::GateBias:
    case WeightRole::UpBias:
      return rows(first_intermediate(rank), dims_.intermediate, k);
    case WeightRole::OProj:
      return columns(c.hidden_size, first_head(rank) * hd, dims_.heads * hd);
    case WeightRole::DownProj:
      return columns(c.hidden_size, first_intermediate(rank), dims_.intermediate);
    default:
      break;
  }
  fail("{}: no shard rule", weight_role_name(role));
}

}  // namespace fp8llm
