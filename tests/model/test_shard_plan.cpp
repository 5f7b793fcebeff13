#include "model/shard_plan.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <map>
#include <string>
#include <vector>

#include "formats/hf_config.h"
#include "model/weights.h"
#include "test_util.h"

namespace fp8llm {
namespace {

using test::data_path;
using test::error_of;

// What plan_shards says for every fixture architecture and rank count: "" where it divides, else
// the error (one line naming the field and N).
struct Expectation {
  std::string model;
  int ranks;
  std::string error;
};

const std::vector<Expectation>& expectations() {
  static const std::vector<Expectation> all = {
      {"tiny-llama", 1, ""},
      {"tiny-llama", 2, ""},
      {"tiny-llama", 3, "--tensor-parallel 3: num_attention_heads 4 is not a multiple of 3"},
      {"tiny-llama", 4, ""},
      {"tiny-llama", 8, "--tensor-parallel 8: more ranks than num_attention_heads (4)"},
      {"tiny-llama-fp8-block", 2, ""},
      {"tiny-llama-fp8-block", 4, ""},
      {"tiny-qwen3", 1, ""},
      {"tiny-qwen3", 2, ""},
      {"tiny-qwen3", 4, ""},
      {"tiny-qwen3", 5, "--tensor-parallel 5: more ranks than num_attention_heads (4)"},
      {"tiny-qwen2", 1, ""},
      {"tiny-qwen2", 2, "--tensor-parallel 2: num_attention_heads 3 is not a multiple of 2"},
      {"tiny-qwen2", 3, "--tensor-parallel 3: intermediate_size 200 is not a multiple of 3"},
      {"tiny-qwen2", 4, "--tensor-parallel 4: more ranks than num_attention_heads (3)"},
  };
  return all;
}

// For every tensor of the model, which rank holds which element (counted), so that splits are
// checked to partition and replicas to cover.
void check_covering(const ShardPlan& plan) {
  const ModelConfig& c = plan.config();
  for (const WeightSpec& spec : expected_weights(c)) {
    const int64_t n = spec.shape[0], k = spec.shape.size() > 1 ? spec.shape[1] : 1;
    std::vector<int> holders(static_cast<size_t>(n * k));
    for (int r = 0; r < plan.ranks(); ++r) {
      const TensorSlice s = plan.slice(spec.role, r);
      ASSERT_TRUE(s.row_begin >= 0 && s.row_begin < s.row_end && s.row_end <= n &&
                  s.col_begin >= 0 && s.col_begin < s.col_end && s.col_end <= k)
          << spec.name << " rank " << r;
      for (int64_t i = s.row_begin; i < s.row_end; ++i)
        for (int64_t j = s.col_begin; j < s.col_end; ++j) ++holders[static_cast<size_t>(i * k + j)];
    }
    const ShardAxis axis = plan.axis(spec.role);
    // Each element is held by every rank (replicated), by one (split), or, for the K and V rows
    // of a KV head shared by several ranks, by the ranks whose query heads read it.
    int expected = axis == ShardAxis::Replicated ? plan.ranks() : 1;
    const bool kv = spec.role == WeightRole::KProj || spec.role == WeightRole::VProj ||
                    spec.role == WeightRole::KBias || spec.role == WeightRole::VBias;
    if (kv && c.num_kv_heads < plan.ranks())
      expected = plan.ranks() / static_cast<int>(c.num_kv_heads);
    for (size_t e = 0; e < holders.size(); ++e)
      ASSERT_EQ(holders[e], expected) << spec.name << " element " << e;
  }
}

TEST(ShardPlan, EveryFixtureArchitecture) {
  for (const Expectation& e : expectations()) {
    SCOPED_TRACE(e.model + " x " + std::to_string(e.ranks));
    const ModelConfig config = load_model_config(data_path(e.model));
    if (!e.error.empty()) {
      EXPECT_EQ(error_of([&] { plan_shards(config, e.ranks); }), e.error);
      continue;
    }
    const ShardPlan plan = plan_shards(config, e.ranks);
    EXPECT_EQ(plan.ranks(), e.ranks);
    check_covering(plan);
  }
}

TEST(ShardPlan, QueryHeadsStayWithTheirKvHead) {
  for (const std::string model : {"tiny-llama", "tiny-qwen3"}) {
    const ModelConfig c = load_model_config(data_path(model));
    for (const int ranks : {1, 2, 4}) {
      const ShardPlan plan = plan_shards(c, ranks);
      const int64_t group = c.num_heads / c.num_kv_heads;
      for (int r = 0; r < ranks; ++r) {
        const ModelConfig local = plan.rank_config(r);
        EXPECT_EQ(local.num_heads * ranks, c.num_heads);
        // A rank's grouping: its query heads share its KV heads evenly (all of them one KV head
        // where that head is replicated).
        ASSERT_EQ(local.num_heads % local.num_kv_heads, 0);
        const int64_t local_group = local.num_heads / local.num_kv_heads;
        EXPECT_EQ(local_group, std::min(group, local.num_heads));
        EXPECT_EQ(local.intermediate_size * ranks, c.intermediate_size);
        EXPECT_EQ(local.hidden_size, c.hidden_size);
        EXPECT_EQ(local.vocab_size, c.vocab_size);
        // The KV head a query head reads in the whole model is the one the rank's grouping
        // gives it among the rank's KV heads.
        for (int64_t h = 0; h < local.num_heads; ++h) {
          const int64_t global_head = plan.first_head(r) + h;
          EXPECT_EQ(global_head / group, plan.first_kv_head(r) + h / local_group);
        }
        const TensorSlice q = plan.slice(WeightRole::QProj, r);
        const TensorSlice kv = plan.slice(WeightRole::KProj, r);
        EXPECT_EQ(q.rows(), local.num_heads * c.head_dim);
        EXPECT_EQ(kv.rows(), local.num_kv_heads * c.head_dim);
        EXPECT_EQ(kv.row_begin, plan.first_kv_head(r) * c.head_dim);
        // o_proj's columns are the rank's attention outputs; down_proj's its MLP slice.
        EXPECT_EQ(plan.slice(WeightRole::OProj, r).col_begin, q.row_begin);
        EXPECT_EQ(plan.slice(WeightRole::DownProj, r).col_begin,
                  plan.slice(WeightRole::GateProj, r).row_begin);
      }
    }
  }
}

TEST(ShardPlan, AxesOfEachRole) {
  const ShardPlan plan = plan_shards(load_model_config(data_path("tiny-llama")), 2);
  const std::map<WeightRole, ShardAxis> axes = {
      {WeightRole::Embedding, ShardAxis::Rows},
      {WeightRole::LmHead, ShardAxis::Rows},
      {WeightRole::QProj, ShardAxis::Rows},
      {WeightRole::KProj, ShardAxis::Rows},
      {WeightRole::VProj, ShardAxis::Rows},
      {WeightRole::GateProj, ShardAxis::Rows},
      {WeightRole::UpProj, ShardAxis::Rows},
      {WeightRole::OProj, ShardAxis::Columns},
      {WeightRole::DownProj, ShardAxis::Columns},
      {WeightRole::InputNorm, ShardAxis::Replicated},
      {WeightRole::FinalNorm, ShardAxis::Replicated},
      {WeightRole::QNorm, ShardAxis::Replicated},
      {WeightRole::OBias, ShardAxis::Replicated},
      {WeightRole::DownBias, ShardAxis::Replicated},
      {WeightRole::QBias, ShardAxis::Rows},
      {WeightRole::UpBias, ShardAxis::Rows},
  };
  for (const auto& [role, axis] : axes) EXPECT_EQ(plan.axis(role), axis) << weight_role_name(role);
  // One rank holds everything whole.
  const ShardPlan one = plan_shards(plan.config(), 1);
  for (const auto& [role, axis] : axes) EXPECT_EQ(one.axis(role), ShardAxis::Replicated);
}

TEST(ShardPlan, BadRankCounts) {
  const ModelConfig c = load_model_config(data_path("tiny-llama"));
  EXPECT_EQ(error_of([&] { plan_shards(c, 0); }), "--tensor-parallel 0 must be at least 1");
  EXPECT_EQ(error_of([&] { plan_shards(c, -2); }), "--tensor-parallel -2 must be at least 1");
  ModelConfig odd_vocab = c;
  odd_vocab.vocab_size = 1023;
  EXPECT_EQ(error_of([&] { plan_shards(odd_vocab, 2); }),
            "--tensor-parallel 2: vocab_size 1023 is not a multiple of 2");
  ModelConfig kv3 = c;
  kv3.num_heads = 12;
  kv3.num_kv_heads = 3;
  kv3.intermediate_size = 1024;
  EXPECT_EQ(error_of([&] { plan_shards(kv3, 2); }),
            "--tensor-parallel 2: num_key_value_heads 3 is not a multiple of 2");
  EXPECT_EQ(error_of([&] { plan_shards(kv3, 4); }),
            "--tensor-parallel 4: num_key_value_heads 3 is neither a multiple nor a divisor of 4");
  ModelConfig kv6 = kv3;
  kv6.num_kv_heads = 6;
  EXPECT_EQ(error_of([&] { plan_shards(kv6, 4); }),
            "--tensor-parallel 4: num_key_value_heads 6 is not a multiple of 4");
}

}  // namespace
}  // namespace fp8llm
