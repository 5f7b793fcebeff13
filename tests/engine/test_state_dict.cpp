// The state dict of a loaded engine: the same names as the checkpoint it stands for, the FP8
// weights and scales equal to the reference FP8 checkpoints byte for byte, the dequantized form
// equal to dequantizing those references, a pre-quantized checkpoint's bytes returned unchanged,
// and one-line errors for names and buffers that do not fit.
#include <gtest/gtest.h>

#include <algorithm>
#include <set>

#include "core/error.h"
#include "fp8llm/engine.h"
#include "state_dict_expect.h"
#include "test_util.h"

namespace fp8llm::test {
namespace {
namespace fs = std::filesystem;

std::unique_ptr<Engine> load(const std::string& model, const std::string& quantization) {
  return Engine::load({.model_dir = data_path(model),
                       .quantization = parse_quantization(quantization),
                       .registry = data_path("no-registry.json")});
}

using Case = ModelCase;

class OnTheFly : public ::testing::TestWithParam<Case> {};

TEST_P(OnTheFly, StoredEqualsTheReferenceFp8Checkpoint) {
  const Case& c = GetParam();
  const auto engine = load(c.model, c.quantization);
  const TensorMap want = tensors_of_file(data_path(expected_file(c.model, c.quantization)));
  expect_same_tensors(state_dict_of(*engine, StateDictForm::Stored), want);
}

TEST_P(OnTheFly, DequantizedEqualsTheReferenceDequantized) {
  const Case& c = GetParam();
  const auto engine = load(c.model, c.quantization);
  const TensorMap want =
      dequantized(tensors_of_file(data_path(expected_file(c.model, c.quantization))));
  expect_same_tensors(state_dict_of(*engine, StateDictForm::Dequantized), want);
}

// The listing is ordered: each scale right after its weight; and the visitor hands out exactly
// what reading by name gives, in that order.
TEST_P(OnTheFly, VisitorGivesTheListingInOrder) {
  const Case& c = GetParam();
  const auto engine = load(c.model, c.quantization);
  for (const StateDictForm form : {StateDictForm::Stored, StateDictForm::Dequantized}) {
    const std::vector<StateDictEntry> entries = engine->state_dict(form);
    size_t i = 0;
    engine->visit_state_dict(form, [&](const StateDictTensor& t) {
      ASSERT_LT(i, entries.size());
      EXPECT_EQ(t.entry.name, entries[i].name);
      EXPECT_EQ(t.entry.dtype, entries[i].dtype);
      EXPECT_EQ(t.entry.shape, entries[i].shape);
      EXPECT_EQ(t.bytes, engine->state_dict_tensor(t.entry.name, form).bytes) << t.entry.name;
      if (t.entry.name.ends_with("_scale") || t.entry.name.ends_with("_scale_inv")) {
        ASSERT_GT(i, 0u);
        EXPECT_TRUE(t.entry.name.starts_with(entries[i - 1].name)) << t.entry.name;
        EXPECT_EQ(entries[i - 1].dtype, "F8_E4M3");
      }
      ++i;
    });
    EXPECT_EQ(i, entries.size());
  }
}

INSTANTIATE_TEST_SUITE_P(StateDict, OnTheFly,
                         ::testing::Values(Case{"tiny-llama", "fp8-row"},
                                           Case{"tiny-llama", "fp8-block"},
                                           Case{"tiny-qwen2", "fp8-row"},
                                           Case{"tiny-qwen2", "fp8-block"}),
                         model_case_name);

std::set<std::string> names_of(const std::vector<StateDictEntry>& entries) {
  std::set<std::string> out;
  for (const auto& e : entries) out.insert(e.name);
  return out;
}

std::set<std::string> checkpoint_names(const fs::path& dir) {
  std::set<std::string> out;
  const Checkpoint checkpoint = Checkpoint::open(dir);
  for (const auto& t : checkpoint.tensors()) out.insert(t.info->name);
  return out;
}

// Unquantized, the state dict is the checkpoint: the same names (a tied lm_head is absent from
// both) and the same bytes; FP8 modes add one scale per projection.
TEST(StateDict, UnquantizedIsTheCheckpoint) {
  for (const std::string model : {"tiny-llama", "tiny-qwen2", "tiny-qwen3"}) {
    const auto engine = load(model, "none");
    const TensorMap got = state_dict_of(*engine, StateDictForm::Stored);
    expect_same_tensors(got, tensors_of_dir(data_path(model)));
    // Nothing to dequantize: both forms are the same.
    expect_same_tensors(state_dict_of(*engine, StateDictForm::Dequantized), got);
  }
  const auto qwen3 = load("tiny-qwen3", "fp8-block");
  const std::set<std::string> names = names_of(qwen3->state_dict());
  EXPECT_FALSE(names.contains("lm_head.weight"));
  std::set<std::string> want = checkpoint_names(data_path("tiny-qwen3"));
  size_t projections = 0;
  for (const std::string& n : std::set<std::string>(want)) {
    if (n.ends_with("_proj.weight")) {
      want.insert(n + "_scale_inv");
      ++projections;
    }
  }
  EXPECT_EQ(projections, 14u);
  EXPECT_EQ(names, want);
}

// A pre-quantized checkpoint loads as stored, and the state dict hands those bytes back.
TEST(StateDict, PrequantizedCheckpointAsStored) {
  const auto engine = load("tiny-llama-fp8-block", "fp8-row");
  EXPECT_EQ(to_string(engine->load_report().quantization), "fp8-block");
  const TensorMap stored = tensors_of_file(data_path("tiny-llama-fp8-block/model.safetensors"));
  expect_same_tensors(state_dict_of(*engine, StateDictForm::Stored), stored);
  expect_same_tensors(state_dict_of(*engine, StateDictForm::Dequantized), dequantized(stored));
}

TEST(StateDict, Entries) {
  const auto engine = load("tiny-qwen2", "fp8-row");
  const std::vector<StateDictEntry> entries = engine->state_dict();
  ASSERT_FALSE(entries.empty());
  EXPECT_EQ(entries.front().name, "model.embed_tokens.weight");
  EXPECT_EQ(entries.back().name, "lm_head.weight");
  for (const auto& e : entries) {
    if (e.name != "model.layers.0.self_attn.q_proj.weight_scale") continue;
    EXPECT_EQ(e.dtype, "F32");
    EXPECT_EQ(e.shape, (std::vector<int64_t>{192, 1}));
    EXPECT_EQ(e.nbytes, 192u * 4);
  }
  const std::vector<StateDictEntry> deq = engine->state_dict(StateDictForm::Dequantized);
  EXPECT_EQ(deq.size() + 21, entries.size());  // 3 layers x 7 projections, no scales
  for (const auto& e : deq) {
    if (e.name != "model.layers.2.mlp.down_proj.weight") continue;
    EXPECT_EQ(e.dtype, "BF16");
    EXPECT_EQ(e.shape, (std::vector<int64_t>{192, 200}));
    EXPECT_EQ(e.nbytes, 192u * 200 * 2);
  }
}

TEST(StateDict, ReadsIntoAnUnalignedBuffer) {
  const auto engine = load("tiny-qwen2", "fp8-block");
  const std::string name = "model.layers.1.mlp.up_proj.weight_scale_inv";
  const StateDictTensor want = engine->state_dict_tensor(name);
  ASSERT_EQ(want.bytes.size(), 2u * 2 * 4);
  std::vector<std::byte> buffer(want.bytes.size() + 1);
  engine->read_state_dict_tensor(name, StateDictForm::Stored,
                                 std::span<std::byte>(buffer).subspan(1));
  EXPECT_TRUE(std::equal(want.bytes.begin(), want.bytes.end(), buffer.begin() + 1));
}

TEST(StateDict, ErrorsNameTheTensor) {
  const auto engine = load("tiny-llama", "fp8-block");
  std::string err =
      error_of([&] { engine->state_dict_tensor("model.layers.9.mlp.up_proj.weight"); });
  EXPECT_EQ(err,
            "tensor 'model.layers.9.mlp.up_proj.weight' is not in the stored state dict of this "
            "fp8-block model (35 tensors)");
  err = error_of([&] {
    engine->state_dict_tensor("model.layers.0.mlp.up_proj.weight_scale_inv",
                              StateDictForm::Dequantized);
  });
  EXPECT_EQ(err,
            "tensor 'model.layers.0.mlp.up_proj.weight_scale_inv' is not in the dequantized state "
            "dict of this fp8-block model (21 tensors); scales are in the stored form only");
  // The row name of a block-quantized weight's scale is not there either.
  err = error_of([&] { engine->state_dict_tensor("model.layers.0.mlp.up_proj.weight_scale"); });
  EXPECT_NE(err.find("'model.layers.0.mlp.up_proj.weight_scale' is not in the stored state dict"),
            std::string::npos)
      << err;
  std::vector<std::byte> small(10);
  err = error_of(
      [&] { engine->read_state_dict_tensor("model.norm.weight", StateDictForm::Stored, small); });
  EXPECT_EQ(err, "model.norm.weight: a buffer of 10 bytes for a tensor of 512");
}

}  // namespace
}  // namespace fp8llm::test
