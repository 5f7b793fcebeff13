// The device arena's layout (arena_layout.h), checked on the host: no two parts overlap and all
// fit the arena; a layer's q, k and v codes lie back to back, and so do their scales (own, or a
// pre-quantized checkpoint's scale tensors), in every mode. Needs no GPU.
#include <gtest/gtest.h>

#include <algorithm>
#include <map>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "backend/cuda/loading/arena_layout.h"
#include "formats/checkpoint.h"
#include "formats/hf_config.h"
#include "loader/load_plan.h"
#include "test_util.h"

namespace fp8llm::cuda {
namespace {

struct Part {
  uint64_t begin = 0, end = 0;
  std::string name;
};

void expect_disjoint_and_inside(const LoadPlan& plan, const ArenaLayout& layout) {
  std::vector<Part> parts;
  for (size_t i = 0; i < plan.tensors.size(); ++i) {
    const TensorFootprint f = footprint_of(plan.tensors[i]);
    const ArenaLayout::Place& p = layout.tensors[i];
    parts.push_back({p.data, p.data + f.data, plan.tensors[i].spec.name});
    if (f.scales > 0) parts.push_back({p.scales, p.scales + f.scales, plan.tensors[i].spec.name});
  }
  std::sort(parts.begin(), parts.end(),
            [](const Part& a, const Part& b) { return a.begin < b.begin; });
  for (size_t i = 0; i < parts.size(); ++i) {
    EXPECT_EQ(parts[i].begin % 16, 0u) << parts[i].name;
    EXPECT_LE(parts[i].end, layout.bytes) << parts[i].name;
    if (i > 0) {
      EXPECT_LE(parts[i - 1].end, parts[i].begin) << parts[i - 1].name << " / " << parts[i].name;
    }
  }
}

// Codes of q, k, v back to back, then their scales back to back (when quantized).
void expect_attention_inputs_joined(const LoadPlan& plan, const ArenaLayout& layout) {
  std::map<std::pair<int64_t, WeightRole>, size_t> weight, scale;
  for (size_t i = 0; i < plan.tensors.size(); ++i) {
    const PlannedTensor& t = plan.tensors[i];
    (t.is_weight_scale ? scale : weight)[{t.spec.layer, t.spec.role}] = i;
  }
  for (int64_t l = 0; l < plan.config.num_layers; ++l) {
    SCOPED_TRACE("layer " + std::to_string(l));
    std::optional<uint64_t> code_end, scale_end;
    for (const WeightRole r : {WeightRole::QProj, WeightRole::KProj, WeightRole::VProj}) {
      const size_t w = weight.at({l, r});
      const TensorFootprint f = footprint_of(plan.tensors[w]);
      if (code_end) {
        EXPECT_EQ(layout.tensors[w].data, *code_end) << plan.tensors[w].spec.name;
      }
      code_end = layout.tensors[w].data + f.data;
      std::optional<std::pair<uint64_t, uint64_t>> s;  // the scales' offset and bytes
      if (f.scales > 0) s = {{layout.tensors[w].scales, f.scales}};
      if (const auto it = scale.find({l, r}); it != scale.end())
        s = {{layout.tensors[it->second].data, footprint_of(plan.tensors[it->second]).data}};
      if (!s) continue;
      if (scale_end) {
        EXPECT_EQ(s->first, *scale_end) << plan.tensors[w].spec.name;
      }
      scale_end = s->first + s->second;
    }
  }
}

TEST(ArenaLayout, AttentionInputsLieBackToBack) {
  for (const char* model : {"tiny-llama", "tiny-qwen2", "tiny-llama-fp8-block"}) {
    const auto dir = test::data_path(model);
    const Checkpoint checkpoint = Checkpoint::open(dir);
    for (const std::optional<Fp8Scheme> scheme :
         {std::optional<Fp8Scheme>(), std::optional(Fp8Scheme::Row),
          std::optional(Fp8Scheme::Block)}) {
      SCOPED_TRACE(std::string(model) + ", " +
                   (scheme ? (*scheme == Fp8Scheme::Row ? "row" : "block") : "none"));
      const LoadPlan plan = build_load_plan(checkpoint, load_model_config(dir), scheme);
      const ArenaLayout layout = layout_arena(plan);
      ASSERT_EQ(layout.tensors.size(), plan.tensors.size());
      expect_disjoint_and_inside(plan, layout);
      expect_attention_inputs_joined(plan, layout);
    }
  }
}

}  // namespace
}  // namespace fp8llm::cuda
