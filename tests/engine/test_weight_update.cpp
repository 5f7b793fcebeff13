// Live weight updates on the CPU engine: writing back the dequantized state dict changes no bit;
// writing a modified checkpoint's tensors (as they are, in F32, or fused as qkv_proj and
// gate_up_proj) gives exactly what a fresh load of that checkpoint gives; a call with any bad
// tensor fails naming it and changes nothing; the prefix cache is cleared; views of the stored
// state dict are the memory the engine computes from.
#include <gtest/gtest.h>

#include <cmath>
#include <cstring>
#include <limits>

#include "core/dtype.h"
#include "core/error.h"
#include "formats/hf_config.h"
#include "formats/safetensors.h"
#include "fp8llm/engine.h"
#include "state_dict_expect.h"
#include "test_util.h"
#include "weight_update_util.h"

namespace fp8llm::test {
namespace {
namespace fs = std::filesystem;

const std::vector<int32_t> kPrompt = {0, 384, 950, 902, 17, 33, 640, 5};

std::unique_ptr<Engine> load(const fs::path& dir, const std::string& quantization) {
  return Engine::load({.model_dir = dir,
                       .quantization = parse_quantization(quantization),
                       .registry = data_path("no-registry.json"),
                       .max_context = 128});
}

std::map<std::string, StateDictTensor> state_dict_of(Engine& e, StateDictForm form) {
  std::map<std::string, StateDictTensor> out;
  e.visit_state_dict(form, [&](const StateDictTensor& t) { out.emplace(t.entry.name, t); });
  return out;
}

class WeightUpdate : public ::testing::TestWithParam<std::string> {};

TEST_P(WeightUpdate, DequantizedStateDictWrittenBackChangesNoBit) {
  const auto engine = load(data_path("tiny-llama"), GetParam());
  const std::vector<float> before = engine->logits(kPrompt);
  const auto stored = state_dict_of(*engine, StateDictForm::Stored);
  const auto deq = state_dict_of(*engine, StateDictForm::Dequantized);
  std::vector<WeightTensor> ts;
  for (const auto& [name, t] : deq)
    ts.push_back({name, t.entry.dtype, t.entry.shape, t.bytes.data()});
  const WeightUpdateReport r = engine->update_weights(ts);
  EXPECT_EQ(r.tensors, deq.size());
  EXPECT_EQ(r.quantized, GetParam() == "none" ? 0u : 14u);
  EXPECT_EQ(engine->logits(kPrompt), before);
  for (const auto& [name, t] : state_dict_of(*engine, StateDictForm::Stored))
    EXPECT_EQ(t.bytes, stored.at(name).bytes) << name;
}

TEST_P(WeightUpdate, ModifiedCheckpointGivesTheLogitsOfAFreshLoad) {
  const TensorMap changed = modified(tensors_of_dir(data_path("tiny-llama")));
  TempDir dir;
  write_model(dir, changed);
  const auto fresh = load(dir.path(), GetParam());
  const std::vector<float> want = fresh->logits(kPrompt);

  const auto engine = load(data_path("tiny-llama"), GetParam());
  ASSERT_NE(engine->logits(kPrompt), want);
  // Layer 0's q/k/v and layer 1's gate/up fused, the norms and lm_head in F32, the rest as BF16.
  const std::string l0 = "model.layers.0.self_attn.", l1 = "model.layers.1.mlp.";
  std::vector<HostTensor> keep;
  keep.reserve(changed.size() + 2);
  std::vector<WeightTensor> ts;
  keep.push_back(stacked({&changed.at(l0 + "q_proj.weight"), &changed.at(l0 + "k_proj.weight"),
                          &changed.at(l0 + "v_proj.weight")}));
  ts.push_back(tensor_of(l0 + "qkv_proj.weight", keep.back()));
  keep.push_back(
      stacked({&changed.at(l1 + "gate_proj.weight"), &changed.at(l1 + "up_proj.weight")}));
  ts.push_back(tensor_of(l1 + "gate_up_proj.weight", keep.back()));
  for (const auto& [name, t] : changed) {
    if (name == l0 + "q_proj.weight" || name == l0 + "k_proj.weight" ||
        name == l0 + "v_proj.weight" || name == l1 + "gate_proj.weight" ||
        name == l1 + "up_proj.weight")
      continue;
    if (name.find("norm") != std::string::npos || name == "lm_head.weight") {
      keep.push_back(as_f32(t));
      ts.push_back(tensor_of(name, keep.back()));
    } else {
      ts.push_back(tensor_of(name, t));
    }
  }
  EXPECT_EQ(engine->update_weights(ts).tensors, changed.size());
  EXPECT_EQ(engine->logits(kPrompt), want);
  const auto got = state_dict_of(*engine, StateDictForm::Stored);
  for (const auto& [name, t] : state_dict_of(*fresh, StateDictForm::Stored))
    EXPECT_EQ(got.at(name).bytes, t.bytes) << name;
}

// A partial update writes what it names and nothing else.
TEST_P(WeightUpdate, PartialUpdateWritesOnlyItsTensors) {
  const auto engine = load(data_path("tiny-llama"), GetParam());
  const auto before = state_dict_of(*engine, StateDictForm::Stored);
  const std::string name = "model.layers.1.self_attn.o_proj.weight";
  const TensorMap changed = modified(tensors_of_dir(data_path("tiny-llama")));
  const WeightTensor t = tensor_of(name, changed.at(name));
  engine->update_weights({&t, 1});
  for (const auto& [n, after] : state_dict_of(*engine, StateDictForm::Stored)) {
    const bool written = n.starts_with(name);  // the weight and its scale
    EXPECT_EQ(after.bytes != before.at(n).bytes, written) << n;
  }
}

TEST_P(WeightUpdate, ABadTensorFailsNamingItAndChangesNothing) {
  const auto engine = load(data_path("tiny-llama"), GetParam());
  const std::vector<float> before = engine->logits(kPrompt);
  const TensorMap changed = modified(tensors_of_dir(data_path("tiny-llama")));
  std::vector<WeightTensor> good;
  for (const auto& [name, t] : changed) good.push_back(tensor_of(name, t));
  const HostTensor& down = changed.at("model.layers.0.mlp.down_proj.weight");
  HostTensor nan_copy = as_f32(down);
  nan_copy.as<float>()[77] = std::numeric_limits<float>::quiet_NaN();
  HostTensor inf_copy = down;
  const uint16_t inf_bits = 0x7F80;
  std::memcpy(inf_copy.bytes.data() + 2 * 5, &inf_bits, 2);

  struct Bad {
    WeightTensor tensor;
    std::string message;
  };
  const std::string q = "model.layers.0.self_attn.q_proj.weight";
  const HostTensor& qt = changed.at(q);
  std::vector<Bad> bads = {
      {{"model.layers.9.self_attn.q_proj.weight", "BF16", qt.shape, qt.bytes.data()},
       "tensor 'model.layers.9.self_attn.q_proj.weight' is not a weight of this model"},
      {{q, "BF16", {qt.shape[1], qt.shape[0] / 2}, qt.bytes.data()},
       "tensor '" + q + "': shape [256, 128] where the model has [256, 256]"},
      {{q, "F64", qt.shape, qt.bytes.data()}, "tensor '" + q + "': dtype 'F64' cannot be written"},
      {{q, "F8_E4M3", qt.shape, qt.bytes.data()},
       "tensor '" + q + "': dtype 'F8_E4M3' cannot be written"},
      {{q + "_scale_inv", "F32", {2, 2}, qt.bytes.data()}, "scales are not written"},
      {{q, "BF16", qt.shape, qt.bytes.data(), Device::Cuda},
       "tensor '" + q + "' is in cuda memory, which an engine on the cpu does not read"},
      {{"model.layers.0.mlp.down_proj.weight", "F32", down.shape, nan_copy.bytes.data()},
       "tensor 'model.layers.0.mlp.down_proj.weight': element 77 is nan; nothing was written"},
      {{"model.layers.0.mlp.down_proj.weight", "BF16", down.shape, inf_copy.bytes.data()},
       "element 5 is inf"},
      {{"model.layers.0.self_attn.qkv_proj.weight", "BF16", {256, 256}, qt.bytes.data()},
       "shape [256, 256] where the model has [512, 256] (its parts stacked by rows)"},
      {{"model.layers.0.self_attn.qkv_proj.bias", "BF16", {512}, qt.bytes.data()},
       "this model has no 'model.layers.0.self_attn.q_proj.bias'"},
  };
  for (const Bad& bad : bads) {
    // Good tensors around the bad one (except one of its name, which would be a second write of
    // the same weight): those before it would have been written already if writes began early.
    std::vector<WeightTensor> others = good;
    std::erase_if(others, [&](const WeightTensor& t) { return t.name == bad.tensor.name; });
    for (const bool last : {true, false}) {
      std::vector<WeightTensor> call = others;
      call.insert(last ? call.end() : call.begin() + static_cast<std::ptrdiff_t>(call.size() / 2),
                  bad.tensor);
      const std::string err = error_of([&] { engine->update_weights(call); });
      EXPECT_NE(err.find(bad.message), std::string::npos) << err;
      EXPECT_EQ(engine->logits(kPrompt), before) << bad.message;
    }
  }
  std::vector<WeightTensor> twice = good;
  twice.push_back(good.front());
  EXPECT_NE(error_of([&] { engine->update_weights(twice); }).find("is given twice"),
            std::string::npos);
  EXPECT_EQ(engine->logits(kPrompt), before);
}

TEST_P(WeightUpdate, StateDictViewsAreTheLiveMemory) {
  const auto engine = load(data_path("tiny-llama"), GetParam());
  const std::vector<StateDictView> views = engine->state_dict_views();
  const std::vector<StateDictEntry> listing = engine->state_dict();
  ASSERT_EQ(views.size(), listing.size());
  for (size_t i = 0; i < views.size(); ++i) {
    const StateDictView& v = views[i];
    EXPECT_EQ(v.entry.name, listing[i].name);
    EXPECT_EQ(v.device, Device::Cpu);
    ASSERT_EQ(v.strides.size(), v.entry.shape.size());
    EXPECT_EQ(v.strides.back(), 1);
    const StateDictTensor t = engine->state_dict_tensor(v.entry.name);
    EXPECT_EQ(std::memcmp(v.data, t.bytes.data(), t.bytes.size()), 0) << v.entry.name;
  }
  // An update writes where the views point.
  const TensorMap changed = modified(tensors_of_dir(data_path("tiny-llama")));
  std::vector<WeightTensor> ts;
  for (const auto& [name, t] : changed) ts.push_back(tensor_of(name, t));
  engine->update_weights(ts);
  const std::vector<StateDictView> after = engine->state_dict_views();
  for (size_t i = 0; i < views.size(); ++i) {
    EXPECT_EQ(after[i].data, views[i].data) << views[i].entry.name;
    const StateDictTensor t = engine->state_dict_tensor(views[i].entry.name);
    EXPECT_EQ(std::memcmp(views[i].data, t.bytes.data(), t.bytes.size()), 0);
  }
}

INSTANTIATE_TEST_SUITE_P(Modes, WeightUpdate, ::testing::Values("fp8-row", "fp8-block", "none"),
                         [](const auto& p) {
                           std::string n = p.param;
                           std::replace(n.begin(), n.end(), '-', '_');
                           return n;
                         });

TEST(WeightUpdateRules, RefusedWhileRequestsRunAndClearsThePrefixCache) {
  const auto engine = load(data_path("tiny-llama"), "fp8-block");
  std::vector<int32_t> prompt(40);
  for (size_t i = 0; i < prompt.size(); ++i) prompt[i] = static_cast<int32_t>(7 + 11 * i % 900);
  GenerationRequest request{prompt, {.seed = 1, .max_tokens = 4}};
  engine->generate({request});
  ASSERT_EQ(engine->generate({request}).at(0).cached_prompt_tokens, 32);
  const TensorMap changed = modified(tensors_of_dir(data_path("tiny-llama")));
  std::vector<WeightTensor> ts;
  for (const auto& [name, t] : changed) ts.push_back(tensor_of(name, t));

  engine->add_request(request);
  EXPECT_NE(error_of([&] { engine->update_weights(ts); }).find("requests are queued or running"),
            std::string::npos);
  while (engine->has_unfinished()) engine->step();
  // The prefix is cached now; after the update none of it may be reused.
  engine->update_weights(ts);
  const RequestOutput out = engine->generate({request}).at(0);
  EXPECT_EQ(out.cached_prompt_tokens, 0);
  TempDir dir;
  write_model(dir, changed);
  const auto fresh = load(dir.path(), "fp8-block");
  EXPECT_EQ(out.outputs.at(0).token_ids, fresh->generate({request}).at(0).outputs.at(0).token_ids);
}

// On a model with tied embeddings, lm_head.weight (as a PyTorch state_dict lists it) writes the
// embedding table; given with the embedding itself, it is the same tensor and skipped.
TEST(WeightUpdateRules, TiedLmHeadNamesTheEmbedding) {
  const auto engine = load(data_path("tiny-qwen3"), "fp8-row");
  ASSERT_TRUE(engine->config().tie_word_embeddings);
  const StateDictTensor embed = engine->state_dict_tensor("model.embed_tokens.weight");
  HostTensor doubled(DType::F32, embed.entry.shape);
  to_f32(*dtype_from_name(embed.entry.dtype), embed.bytes.data(), doubled.as<float>(),
         static_cast<size_t>(doubled.numel()));
  for (int64_t i = 0; i < doubled.numel(); ++i) doubled.as<float>()[i] *= 2;
  const WeightTensor head = tensor_of("lm_head.weight", doubled);
  engine->update_weights({&head, 1});
  const StateDictTensor after = engine->state_dict_tensor("model.embed_tokens.weight");
  std::vector<float> got(static_cast<size_t>(doubled.numel()));
  to_f32(*dtype_from_name(after.entry.dtype), after.bytes.data(), got.data(), got.size());
  EXPECT_EQ(got[3], doubled.as<float>()[3]);
  EXPECT_NE(after.bytes, embed.bytes);
  const std::vector<WeightTensor> both = {tensor_of("model.embed_tokens.weight", doubled), head};
  EXPECT_EQ(engine->update_weights(both).tensors, 1u);
}

}  // namespace
}  // namespace fp8llm::test
