// Every rank's shard of a tensor-parallel load equals its rectangle of the one-rank load bit for
// bit: FP8 codes, scales (the whole rows' and tiles' where a shard edge cuts them), and the
// tensors kept as they are; for quantization on the fly and for a pre-quantized checkpoint.
#include "loader/shard_sink.h"

#include <gtest/gtest.h>

#include <cstring>
#include <optional>
#include <string>

#include "formats/checkpoint.h"
#include "formats/hf_config.h"
#include "loader/host_sink.h"
#include "loader/load_plan.h"
#include "model/layer_members.h"
#include "quant/region_quantizer.h"
#include "test_util.h"

namespace fp8llm::test {
namespace {

void expect_slice(const HostTensor& part, const HostTensor& whole, const TensorSlice& slice,
                  const std::string& name) {
  const HostTensor want = slice_tensor(whole.view(), slice);
  ASSERT_EQ(part.dtype, want.dtype) << name;
  ASSERT_EQ(part.shape, want.shape) << name;
  EXPECT_EQ(std::memcmp(part.bytes.data(), want.bytes.data(), want.bytes.size()), 0)
      << name << " differs from its rectangle of the one-rank load";
}

void check_shards(const std::string& model, std::optional<Fp8Scheme> scheme, int ranks) {
  SCOPED_TRACE(model + " x " + std::to_string(ranks));
  const auto dir = data_path(model);
  const ModelConfig config = load_model_config(dir);
  const Checkpoint checkpoint = Checkpoint::open(dir);
  const LoadPlan plan = build_load_plan(checkpoint, config, scheme);
  const HostWeights whole = load_host_weights(plan);
  const ShardPlan shards = plan_shards(config, ranks);
  const std::vector<HostWeights> parts = load_sharded_host_weights(plan, shards);
  ASSERT_EQ(parts.size(), static_cast<size_t>(ranks));
  size_t cut_scales = 0;
  for (const WeightSpec& spec : expected_weights(config)) {
    for (int r = 0; r < ranks; ++r) {
      const HostWeights& part = parts[static_cast<size_t>(r)];
      const TensorSlice slice = shards.slice(spec.role, r);
      const std::string name = spec.name + " rank " + std::to_string(r);
      expect_slice(*host_slot(part, spec), *host_slot(whole, spec), slice, name);
      const HostLinear* lin = host_linear(whole, spec);
      if (lin == nullptr || !lin->scheme || is_bias_role(spec.role)) continue;
      const HostLinear* plin = host_linear(part, spec);
      ASSERT_EQ(plin->scheme, lin->scheme) << name;
      const TensorSlice grid = region_scale_grid(*lin->scheme, slice);
      expect_slice(plin->scale, lin->scale, grid, name + " scales");
      // Tiles shared with another rank (block) or whole rows over split columns (row): the
      // scale of all of it on both.
      const bool cuts = *lin->scheme == Fp8Scheme::Block
                            ? (slice.row_begin % 128 != 0 || slice.col_begin % 128 != 0 ||
                               (slice.row_end % 128 != 0 && slice.row_end != spec.shape[0]) ||
                               (slice.col_end % 128 != 0 && slice.col_end != spec.shape[1]))
                            : slice.cols() != spec.shape[1];
      cut_scales += cuts;
    }
  }
  // The shards of these fixtures do cut tiles (and rows), so the exact scales are exercised.
  if (scheme || plan.prequant) {
    EXPECT_GT(cut_scales, 0u);
  }
}

TEST(ShardSink, TinyLlamaShardsAreRectanglesOfTheOneRankLoad) {
  for (const int ranks : {2, 4}) {
    check_shards("tiny-llama", Fp8Scheme::Block, ranks);
    check_shards("tiny-llama", Fp8Scheme::Row, ranks);
    check_shards("tiny-llama", std::nullopt, ranks);
  }
}

TEST(ShardSink, TinyQwen3ShardsAreRectanglesOfTheOneRankLoad) {
  for (const int ranks : {2, 4}) {
    check_shards("tiny-qwen3", Fp8Scheme::Block, ranks);
    check_shards("tiny-qwen3", Fp8Scheme::Row, ranks);
  }
}

TEST(ShardSink, PrequantizedCheckpointIsCutTheSameWay) {
  for (const int ranks : {2, 4}) check_shards("tiny-llama-fp8-block", std::nullopt, ranks);
}

}  // namespace
}  // namespace fp8llm::test
