#include "model/weights.h"

#include <fmt/format.h>
#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include <algorithm>
#include <array>
#include <fstream>
#include <map>
#include <regex>
#include <set>
#include <stdexcept>
#include <string>
#include <vector>

#include "formats/hf_config.h"
#include "test_util.h"

namespace fp8llm {
namespace {

using nlohmann::json;
using test::data_path;

struct HeaderTensor {
  std::string dtype;
  Shape shape;
};
using TensorMap = std::map<std::string, HeaderTensor>;

// The tensor table of one safetensors file: an 8-byte little-endian header length, then the JSON
// header. Read here directly so that this test checks the weight list against the files alone.
TensorMap read_safetensors_header(const std::filesystem::path& path) {
  std::ifstream in(path, std::ios::binary);
  EXPECT_TRUE(in) << path;
  std::array<unsigned char, 8> len_bytes{};
  in.read(reinterpret_cast<char*>(len_bytes.data()), len_bytes.size());
  uint64_t len = 0;
  for (int i = 7; i >= 0; --i) len = (len << 8) | len_bytes[static_cast<size_t>(i)];
  std::string header(len, '\0');
  in.read(header.data(), static_cast<std::streamsize>(len));
  EXPECT_TRUE(in) << path;
  TensorMap tensors;
  const json table = json::parse(header);
  for (const auto& [name, info] : table.items()) {
    if (name == "__metadata__") continue;
    tensors[name] = {info.at("dtype").get<std::string>(), info.at("shape").get<Shape>()};
  }
  return tensors;
}

// Every tensor of a model directory's checkpoint: model.safetensors or its shards.
TensorMap read_checkpoint_headers(const std::filesystem::path& dir) {
  static const std::regex kWeightFile(R"(model(-\d{5}-of-\d{5})?\.safetensors)");
  TensorMap all;
  int files = 0;
  for (const auto& entry : std::filesystem::directory_iterator(dir)) {
    if (!std::regex_match(entry.path().filename().string(), kWeightFile)) continue;
    ++files;
    for (auto& [name, t] : read_safetensors_header(entry.path())) {
      EXPECT_TRUE(all.emplace(name, t).second) << name << " appears in two shards";
    }
  }
  EXPECT_GT(files, 0) << dir;
  return all;
}

std::map<std::string, Shape> shapes_of(const TensorMap& tensors) {
  std::map<std::string, Shape> shapes;
  for (const auto& [name, t] : tensors) shapes[name] = t.shape;
  return shapes;
}

std::map<std::string, Shape> shapes_of(const std::vector<WeightSpec>& specs) {
  std::map<std::string, Shape> shapes;
  for (const auto& s : specs) {
    EXPECT_TRUE(shapes.emplace(s.name, s.shape).second) << s.name << " listed twice";
  }
  return shapes;
}

int64_t ceil_div(int64_t a, int64_t b) {
  return (a + b - 1) / b;
}

// The tensors of the same checkpoint after FP8 quantization, as the reference files store them:
// each quantizable weight gains "<name>_scale" [N, 1] (row) or "<name>_scale_inv"
// [ceil(N/128), ceil(K/128)] (block).
std::map<std::string, Shape> with_fp8_scales(const std::vector<WeightSpec>& specs, bool block) {
  std::map<std::string, Shape> shapes = shapes_of(specs);
  for (const auto& s : specs) {
    if (!s.quantizable) continue;
    const int64_t n = s.shape[0];
    const int64_t k = s.shape[1];
    if (block) {
      shapes[s.name + "_scale_inv"] = {ceil_div(n, 128), ceil_div(k, 128)};
    } else {
      shapes[s.name + "_scale"] = {n, 1};
    }
  }
  return shapes;
}

// Quantizable tensors are the ones stored as FP8 in a quantized file; everything else keeps the
// checkpoint dtype (bf16) and scales are F32.
void expect_fp8_dtypes(const TensorMap& tensors, const std::vector<WeightSpec>& specs) {
  std::set<std::string> scales;
  for (const auto& s : specs) {
    ASSERT_TRUE(tensors.count(s.name)) << s.name;
    EXPECT_EQ(tensors.at(s.name).dtype, s.quantizable ? "F8_E4M3" : "BF16") << s.name;
  }
  for (const auto& [name, t] : tensors) {
    if (name.ends_with("_scale") || name.ends_with("_scale_inv")) {
      EXPECT_EQ(t.dtype, "F32") << name;
    }
  }
}

class FixtureWeights : public ::testing::TestWithParam<const char*> {};

TEST_P(FixtureWeights, ExpectedListEqualsTheCheckpointTensors) {
  const auto dir = data_path(GetParam());
  const ModelConfig config = load_model_config(dir);
  const std::vector<WeightSpec> specs = expected_weights(config);
  const TensorMap tensors = read_checkpoint_headers(dir);
  EXPECT_EQ(shapes_of(specs), shapes_of(tensors));
  for (const auto& [name, t] : tensors) EXPECT_EQ(t.dtype, "BF16") << name;
  EXPECT_EQ(expected_weight_count(config), static_cast<int64_t>(specs.size()));
}

INSTANTIATE_TEST_SUITE_P(HfCheckpoints, FixtureWeights,
                         ::testing::Values("tiny-llama", "tiny-qwen2", "tiny-qwen3"),
                         [](const auto& param_info) {
                           std::string name = param_info.param;
                           std::replace(name.begin(), name.end(), '-', '_');
                           return name;
                         });

TEST(ExpectedWeights, PreQuantizedBlockCheckpointIsTheListPlusBlockScales) {
  const auto dir = data_path("tiny-llama-fp8-block");
  const std::vector<WeightSpec> specs = expected_weights(load_model_config(dir));
  const TensorMap tensors = read_checkpoint_headers(dir);
  EXPECT_EQ(with_fp8_scales(specs, /*block=*/true), shapes_of(tensors));
  expect_fp8_dtypes(tensors, specs);
}

// The reference quantized checkpoints quantize exactly the tensors flagged quantizable.
TEST(ExpectedWeights, QuantizableFlagsMatchTheReferenceFp8Files) {
  for (const char* model : {"tiny-llama", "tiny-qwen2"}) {
    SCOPED_TRACE(model);
    const std::vector<WeightSpec> specs = expected_weights(load_model_config(data_path(model)));
    for (const bool block : {false, true}) {
      const TensorMap tensors =
          read_safetensors_header(data_path(model) / (block ? "expected_fp8_block.safetensors"
                                                            : "expected_fp8_row.safetensors"));
      EXPECT_EQ(with_fp8_scales(specs, block), shapes_of(tensors));
      expect_fp8_dtypes(tensors, specs);
    }
  }
}

ModelConfig config_from(const std::string& text) {
  return parse_model_config(json::parse(text), "t");
}

// roles of layer `layer`, in list order
std::vector<WeightRole> layer_roles(const std::vector<WeightSpec>& specs, int64_t layer) {
  std::vector<WeightRole> roles;
  for (const auto& s : specs) {
    if (s.layer == layer) roles.push_back(s.role);
  }
  return roles;
}

const WeightSpec& find(const std::vector<WeightSpec>& specs, const std::string& name) {
  for (const auto& s : specs) {
    if (s.name == name) return s;
  }
  throw std::runtime_error("no tensor " + name);
}

TEST(ExpectedWeights, StableOrderAndLayerIndices) {
  const std::vector<WeightSpec> specs =
      expected_weights(load_model_config(data_path("tiny-qwen2")));
  ASSERT_EQ(specs.size(), 1 + 3 * 12 + 2u);
  EXPECT_EQ(specs.front().name, "model.embed_tokens.weight");
  EXPECT_EQ(specs.front().role, WeightRole::Embedding);
  EXPECT_EQ(specs.front().layer, -1);
  EXPECT_EQ(specs[specs.size() - 2].name, "model.norm.weight");
  EXPECT_EQ(specs[specs.size() - 2].role, WeightRole::FinalNorm);
  EXPECT_EQ(specs.back().name, "lm_head.weight");
  EXPECT_EQ(specs.back().role, WeightRole::LmHead);
  EXPECT_EQ(specs.back().layer, -1);
  for (size_t i = 1; i + 2 < specs.size(); ++i) {
    const int64_t layer = static_cast<int64_t>((i - 1) / 12);
    EXPECT_EQ(specs[i].layer, layer) << specs[i].name;
    EXPECT_EQ(specs[i].name.rfind(fmt::format("model.layers.{}.", layer), 0), 0u) << specs[i].name;
  }
  const std::vector<WeightRole> qwen2_layer = {
      WeightRole::InputNorm,    WeightRole::QProj,    WeightRole::QBias,  WeightRole::KProj,
      WeightRole::KBias,        WeightRole::VProj,    WeightRole::VBias,  WeightRole::OProj,
      WeightRole::PostAttnNorm, WeightRole::GateProj, WeightRole::UpProj, WeightRole::DownProj};
  for (int64_t l = 0; l < 3; ++l) EXPECT_EQ(layer_roles(specs, l), qwen2_layer);
}

TEST(ExpectedWeights, Qwen3HasQkNormsAndNoLmHeadWhenTied) {
  const ModelConfig config = load_model_config(data_path("tiny-qwen3"));
  const std::vector<WeightSpec> specs = expected_weights(config);
  EXPECT_EQ(specs.back().name, "model.norm.weight");
  for (const auto& s : specs) EXPECT_NE(s.role, WeightRole::LmHead);
  const WeightSpec& q_norm = find(specs, "model.layers.1.self_attn.q_norm.weight");
  EXPECT_EQ(q_norm.role, WeightRole::QNorm);
  EXPECT_EQ(q_norm.shape, Shape{128});
  EXPECT_EQ(q_norm.layer, 1);
  EXPECT_FALSE(q_norm.quantizable);
  EXPECT_EQ(find(specs, "model.layers.0.self_attn.k_norm.weight").role, WeightRole::KNorm);
  EXPECT_EQ(find(specs, "model.layers.0.self_attn.q_proj.weight").shape, (Shape{512, 256}));
  EXPECT_EQ(find(specs, "model.layers.0.self_attn.o_proj.weight").shape, (Shape{256, 512}));
  EXPECT_EQ(find(specs, "model.layers.0.self_attn.k_proj.weight").shape, (Shape{128, 256}));
}

TEST(ExpectedWeights, LlamaAttentionAndMlpBiases) {
  const ModelConfig config = config_from(R"({
    "model_type": "llama", "hidden_size": 64, "intermediate_size": 96, "num_hidden_layers": 1,
    "num_attention_heads": 4, "num_key_value_heads": 2, "head_dim": 32, "vocab_size": 50,
    "attention_bias": true, "mlp_bias": true})");
  const std::vector<WeightSpec> specs = expected_weights(config);
  const std::map<std::string, Shape> expected = {
      {"model.embed_tokens.weight", {50, 64}},
      {"model.layers.0.input_layernorm.weight", {64}},
      {"model.layers.0.self_attn.q_proj.weight", {128, 64}},
      {"model.layers.0.self_attn.q_proj.bias", {128}},
      {"model.layers.0.self_attn.k_proj.weight", {64, 64}},
      {"model.layers.0.self_attn.k_proj.bias", {64}},
      {"model.layers.0.self_attn.v_proj.weight", {64, 64}},
      {"model.layers.0.self_attn.v_proj.bias", {64}},
      {"model.layers.0.self_attn.o_proj.weight", {64, 128}},
      {"model.layers.0.self_attn.o_proj.bias", {64}},
      {"model.layers.0.post_attention_layernorm.weight", {64}},
      {"model.layers.0.mlp.gate_proj.weight", {96, 64}},
      {"model.layers.0.mlp.gate_proj.bias", {96}},
      {"model.layers.0.mlp.up_proj.weight", {96, 64}},
      {"model.layers.0.mlp.up_proj.bias", {96}},
      {"model.layers.0.mlp.down_proj.weight", {64, 96}},
      {"model.layers.0.mlp.down_proj.bias", {64}},
      {"model.norm.weight", {64}},
      {"lm_head.weight", {50, 64}},
  };
  EXPECT_EQ(shapes_of(specs), expected);
  EXPECT_EQ(expected_weight_count(config), static_cast<int64_t>(specs.size()));
  EXPECT_EQ(find(specs, "model.layers.0.self_attn.o_proj.bias").role, WeightRole::OBias);
  EXPECT_EQ(find(specs, "model.layers.0.mlp.gate_proj.bias").role, WeightRole::GateBias);
  EXPECT_EQ(find(specs, "model.layers.0.mlp.up_proj.bias").role, WeightRole::UpBias);
  EXPECT_EQ(find(specs, "model.layers.0.mlp.down_proj.bias").role, WeightRole::DownBias);
}

TEST(ExpectedWeights, Qwen3AttentionBiasAddsFourBiases) {
  const ModelConfig config = config_from(R"({
    "model_type": "qwen3", "hidden_size": 64, "intermediate_size": 96, "num_hidden_layers": 1,
    "num_attention_heads": 2, "num_key_value_heads": 1, "head_dim": 16, "vocab_size": 50,
    "attention_bias": true, "tie_word_embeddings": true})");
  const std::vector<WeightSpec> specs = expected_weights(config);
  EXPECT_EQ(layer_roles(specs, 0),
            (std::vector<WeightRole>{
                WeightRole::InputNorm, WeightRole::QProj, WeightRole::QBias, WeightRole::KProj,
                WeightRole::KBias, WeightRole::VProj, WeightRole::VBias, WeightRole::OProj,
                WeightRole::OBias, WeightRole::QNorm, WeightRole::KNorm, WeightRole::PostAttnNorm,
                WeightRole::GateProj, WeightRole::UpProj, WeightRole::DownProj}));
  EXPECT_EQ(find(specs, "model.layers.0.self_attn.k_proj.bias").shape, Shape{16});
  EXPECT_EQ(find(specs, "model.layers.0.self_attn.o_proj.bias").shape, Shape{64});
  EXPECT_EQ(find(specs, "model.layers.0.self_attn.q_norm.weight").shape, Shape{16});
  EXPECT_EQ(expected_weight_count(config), static_cast<int64_t>(specs.size()));
}

TEST(ExpectedWeights, MistralHasNoBiases) {
  const ModelConfig config = config_from(R"({
    "model_type": "mistral", "hidden_size": 64, "intermediate_size": 96, "num_hidden_layers": 2,
    "num_attention_heads": 4, "num_key_value_heads": 2, "vocab_size": 50,
    "max_position_embeddings": 4096, "sliding_window": null, "attention_bias": true})");
  const std::vector<WeightSpec> specs = expected_weights(config);
  EXPECT_EQ(specs.size(), 1 + 2 * 9 + 2u);
  EXPECT_EQ(expected_weight_count(config), static_cast<int64_t>(specs.size()));
  for (const auto& s : specs) EXPECT_FALSE(s.name.ends_with(".bias")) << s.name;
}

TEST(ExpectedWeights, OnlyDecoderProjectionsAreQuantizable) {
  const ModelConfig config = config_from(R"({
    "model_type": "llama", "hidden_size": 64, "intermediate_size": 96, "num_hidden_layers": 3,
    "num_attention_heads": 4, "vocab_size": 50, "attention_bias": true, "mlp_bias": true})");
  const std::set<WeightRole> projections = {
      WeightRole::QProj,    WeightRole::KProj,  WeightRole::VProj,   WeightRole::OProj,
      WeightRole::GateProj, WeightRole::UpProj, WeightRole::DownProj};
  int quantizable = 0;
  for (const auto& s : expected_weights(config)) {
    EXPECT_EQ(s.quantizable, projections.count(s.role) == 1) << s.name;
    if (s.quantizable) {
      ++quantizable;
      EXPECT_EQ(s.shape.size(), 2u) << s.name;
      EXPECT_TRUE(s.name.ends_with(".weight")) << s.name;
    }
  }
  EXPECT_EQ(quantizable, 3 * 7);
}

TEST(ExpectedWeights, RoleNamesAreDistinct) {
  std::set<std::string_view> names;
  for (int r = static_cast<int>(WeightRole::Embedding); r <= static_cast<int>(WeightRole::DownBias);
       ++r) {
    const std::string_view name = weight_role_name(static_cast<WeightRole>(r));
    EXPECT_FALSE(name.empty());
    EXPECT_NE(name, "unknown");
    EXPECT_TRUE(names.insert(name).second) << name;
  }
  EXPECT_EQ(names.size(), 21u);
  EXPECT_EQ(weight_role_name(WeightRole::QProj), "q_proj");
  EXPECT_EQ(weight_role_name(WeightRole::LmHead), "lm_head");
  EXPECT_EQ(weight_role_name(WeightRole::PostAttnNorm), "post_attention_norm");
}

TEST(IgnorableTensor, RotaryBuffers) {
  EXPECT_TRUE(is_ignorable_tensor("model.layers.0.self_attn.rotary_emb.inv_freq"));
  EXPECT_TRUE(is_ignorable_tensor("model.rotary_emb.inv_freq"));
  EXPECT_TRUE(is_ignorable_tensor("rotary_emb.inv_freq"));
  EXPECT_TRUE(is_ignorable_tensor("model.layers.3.self_attn.rotary_emb.cos_cached"));
  EXPECT_TRUE(is_ignorable_tensor("model.layers.3.self_attn.rotary_emb.sin_cached"));
  EXPECT_FALSE(is_ignorable_tensor("model.layers.0.self_attn.q_proj.weight"));
  EXPECT_FALSE(is_ignorable_tensor("model.layers.0.self_attn.my_rotary_emb.inv_freq"));
  EXPECT_FALSE(is_ignorable_tensor("model.layers.0.self_attn.rotary_emb.inv_freq.extra"));
  EXPECT_FALSE(is_ignorable_tensor("lm_head.weight"));
  EXPECT_FALSE(is_ignorable_tensor(""));
}

TEST(IgnorableTensor, NoExpectedWeightIsIgnorable) {
  for (const char* model : {"tiny-llama", "tiny-qwen2", "tiny-qwen3"}) {
    for (const auto& s : expected_weights(load_model_config(data_path(model)))) {
      EXPECT_FALSE(is_ignorable_tensor(s.name)) << s.name;
    }
  }
}

}  // namespace
}  // namespace fp8llm
