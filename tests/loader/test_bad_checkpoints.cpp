// A corrupt or inconsistent checkpoint fails while the LoadPlan is built — before any weight
// byte is read — with one line naming the tensor or field.
#include <gtest/gtest.h>

#include <nlohmann/json.hpp>

#include <cmath>
#include <cstring>
#include <fstream>
#include <functional>

#include "core/error.h"
#include "core/file_util.h"
#include "formats/checkpoint.h"
#include "formats/hf_config.h"
#include "loader/host_sink.h"
#include "loader/load_plan.h"
#include "test_util.h"

namespace fp8llm::test {
namespace {

// Plans (and loads) the model in `dir`; returns the error message, or "" if it loaded.
std::string load_error(const std::filesystem::path& dir, const std::string& q = "fp8-block") {
  try {
    const ModelConfig config = load_model_config(dir);
    const Checkpoint checkpoint = Checkpoint::open(dir);
    const LoadPlan plan = build_load_plan(checkpoint, config, scheme_of(parse_quantization(q)));
    load_host_weights(plan);
  } catch (const Error& e) {
    const std::string msg = e.what();
    EXPECT_EQ(msg.find('\n'), std::string::npos) << "multi-line error: " << msg;
    return msg;
  }
  return "";
}

void edit_config(const std::filesystem::path& dir, const std::function<void(nlohmann::json&)>& f) {
  nlohmann::json j = nlohmann::json::parse(read_text_file(dir / "config.json"));
  f(j);
  write_text_file_atomically(dir / "config.json", j.dump(2));
}

// Rewrites a single-file checkpoint with one tensor renamed, dropped or added.
void rewrite_tensors(
    const std::filesystem::path& dir,
    const std::function<void(std::vector<std::pair<std::string, TensorView>>&)>& f) {
  std::vector<std::pair<std::string, TensorView>> tensors;
  const auto file = SafetensorsFile::open(dir / "model.safetensors");
  for (const auto& t : file->tensors()) tensors.emplace_back(t.name, file->view(t));
  f(tensors);
  write_safetensors(dir / "model.rewritten", tensors);
  std::filesystem::rename(dir / "model.rewritten", dir / "model.safetensors");
}

// Overwrites `bytes` at byte `offset` of tensor `name` in a single-file checkpoint.
void poison(const std::filesystem::path& dir, const std::string& name, size_t offset,
            const std::vector<uint8_t>& bytes) {
  std::vector<std::byte> poisoned;
  bool found = false;
  rewrite_tensors(dir, [&](auto& ts) {
    for (auto& [tensor, view] : ts) {
      if (tensor != name) continue;
      poisoned.assign(view.data, view.data + view.nbytes);
      std::memcpy(poisoned.data() + offset, bytes.data(), bytes.size());
      view.data = poisoned.data();
      found = true;
    }
  });
  ASSERT_TRUE(found) << name;
}

std::vector<uint8_t> f32_bytes(float v) {
  std::vector<uint8_t> b(4);
  std::memcpy(b.data(), &v, 4);
  return b;
}

TEST(BadCheckpoint, FixturesLoad) {
  for (const char* m : {"tiny-llama", "tiny-qwen2", "tiny-qwen3"})
    EXPECT_EQ(load_error(data_path(m)), "") << m;
}

TEST(BadCheckpoint, MissingTensor) {
  TempDir tmp;
  copy_dir(data_path("tiny-llama"), tmp.path());
  rewrite_tensors(tmp.path(), [](auto& ts) {
    std::erase_if(ts, [](const auto& t) { return t.first == "model.layers.1.mlp.up_proj.weight"; });
  });
  const std::string err = load_error(tmp.path());
  EXPECT_NE(err.find("'model.layers.1.mlp.up_proj.weight' is missing"), std::string::npos) << err;
}

TEST(BadCheckpoint, UnknownTensor) {
  TempDir tmp;
  copy_dir(data_path("tiny-llama"), tmp.path());
  rewrite_tensors(tmp.path(), [](auto& ts) {
    auto extra = ts.front();
    extra.first = "model.layers.0.mlp.extra_proj.weight";
    ts.push_back(extra);
  });
  const std::string err = load_error(tmp.path());
  EXPECT_NE(err.find("'model.layers.0.mlp.extra_proj.weight' is not part of"), std::string::npos)
      << err;
}

TEST(BadCheckpoint, ConfigSizesDisagreeWithTensors) {
  TempDir tmp;
  copy_dir(data_path("tiny-llama"), tmp.path());
  edit_config(tmp.path(), [](nlohmann::json& j) { j["intermediate_size"] = 512; });
  const std::string err = load_error(tmp.path());
  EXPECT_NE(err.find("model.layers.0.mlp.gate_proj.weight' has shape [640, 256] but config.json "
                     "implies [512, 256]"),
            std::string::npos)
      << err;
}

TEST(BadCheckpoint, MoreLayersInConfigThanInFile) {
  TempDir tmp;
  copy_dir(data_path("tiny-qwen3"), tmp.path());
  edit_config(tmp.path(), [](nlohmann::json& j) {
    j["num_hidden_layers"] = 3;
    j.erase("layer_types");
  });
  const std::string err = load_error(tmp.path());
  EXPECT_NE(err.find("'model.layers.2."), std::string::npos) << err;
  EXPECT_NE(err.find("is missing"), std::string::npos) << err;
}

TEST(BadCheckpoint, AbsurdLayerCountFailsBeforeAllocating) {
  TempDir tmp;
  copy_dir(data_path("tiny-llama"), tmp.path());
  // A list of a billion layers' tensors would take hundreds of gigabytes.
  edit_config(tmp.path(), [](nlohmann::json& j) { j["num_hidden_layers"] = 1000000000; });
  EXPECT_EQ(load_error(tmp.path()),
            tmp.path().string() +
                ": config.json has num_hidden_layers 1000000000, which needs 9000000003 tensors, "
                "but the checkpoint holds 21 (tensor 'model.layers.2.input_layernorm.weight' is "
                "missing)");
}

TEST(BadCheckpoint, NaNWeightIsRefused) {
  TempDir tmp;
  copy_dir(data_path("tiny-llama"), tmp.path());
  std::vector<std::byte> poisoned;
  rewrite_tensors(tmp.path(), [&](auto& ts) {
    for (auto& [name, view] : ts) {
      if (name != "model.layers.0.self_attn.k_proj.weight") continue;
      poisoned.assign(view.data, view.data + view.nbytes);
      const uint16_t nan = 0x7FC0;
      std::memcpy(poisoned.data() + 2 * 37, &nan, 2);
      view.data = poisoned.data();
    }
  });
  const std::string err = load_error(tmp.path(), "fp8-row");
  EXPECT_NE(err.find("model.layers.0.self_attn.k_proj.weight"), std::string::npos) << err;
  EXPECT_NE(err.find("NaN"), std::string::npos) << err;
}

// One rule for every tensor (loader/value_checks.h): non-finite values are an error naming the
// tensor, in every mode, whether or not the tensor is quantized.
struct BadValue {
  std::string name;
  std::string fixture;
  std::string tensor;
  size_t offset;  // bytes into the tensor
  std::vector<uint8_t> bytes;
  std::string message;  // the whole error, after the tensor name
};

class BadValues : public ::testing::TestWithParam<BadValue> {};

TEST_P(BadValues, AreRefusedInEveryMode) {
  const BadValue& c = GetParam();
  TempDir tmp;
  copy_dir(data_path(c.fixture), tmp.path());
  poison(tmp.path(), c.tensor, c.offset, c.bytes);
  for (const char* q : {"fp8-block", "fp8-row", "none"}) {
    EXPECT_EQ(load_error(tmp.path(), q), c.tensor + ": " + c.message) << q;
  }
}

INSTANTIATE_TEST_SUITE_P(
    All, BadValues,
    ::testing::Values(BadValue{"NaNInEmbedding",
                               "tiny-llama",
                               "model.embed_tokens.weight",
                               2 * 300,
                               {0xC0, 0x7F},
                               "contains NaN at [1, 44]"},
                      BadValue{"InfInLmHead",
                               "tiny-llama",
                               "lm_head.weight",
                               2 * 5,
                               {0x80, 0xFF},
                               "contains Inf at [0, 5]"},
                      BadValue{"NaNInNorm",
                               "tiny-qwen3",
                               "model.layers.1.self_attn.q_norm.weight",
                               0,
                               {0xC1, 0xFF},
                               "contains NaN at [0]"},
                      BadValue{"NaNInFinalNorm",
                               "tiny-llama",
                               "model.norm.weight",
                               2 * 255,
                               {0x81, 0x7F},
                               "contains NaN at [255]"},
                      BadValue{"NaNCodeInFp8Weight",
                               "tiny-llama-fp8-block",
                               "model.layers.0.self_attn.v_proj.weight",
                               256 + 3,
                               {0x7F},
                               "contains the F8_E4M3 NaN code 0x7f at [1, 3]"},
                      BadValue{"NegativeNaNCodeInFp8Weight",
                               "tiny-llama-fp8-block",
                               "model.layers.1.mlp.down_proj.weight",
                               0,
                               {0xFF},
                               "contains the F8_E4M3 NaN code 0xff at [0, 0]"},
                      BadValue{"ZeroScale", "tiny-llama-fp8-block",
                               "model.layers.0.self_attn.q_proj.weight_scale_inv", 4,
                               f32_bytes(0.0f),
                               "scale 0 at [0, 1] is not a finite positive number"},
                      BadValue{"NegativeScale", "tiny-llama-fp8-block",
                               "model.layers.1.mlp.up_proj.weight_scale_inv", 0, f32_bytes(-0.5f),
                               "scale -0.5 at [0, 0] is not a finite positive number"},
                      BadValue{"NaNScale", "tiny-llama-fp8-block",
                               "model.layers.0.mlp.down_proj.weight_scale_inv", 36, f32_bytes(NAN),
                               "scale nan at [1, 4] is not a finite positive number"},
                      BadValue{"InfScale", "tiny-llama-fp8-block",
                               "model.layers.0.mlp.gate_proj.weight_scale_inv", 8,
                               f32_bytes(INFINITY),
                               "scale inf at [1, 0] is not a finite positive number"}),
    [](const auto& p) { return p.param.name; });

TEST(BadCheckpoint, NaNInAnUnquantizedProjection) {
  TempDir tmp;
  copy_dir(data_path("tiny-llama"), tmp.path());
  poison(tmp.path(), "model.layers.1.mlp.gate_proj.weight", 2 * 258, {0xC0, 0x7F});
  EXPECT_EQ(load_error(tmp.path(), "none"),
            "model.layers.1.mlp.gate_proj.weight: contains NaN at [1, 2]");
}

TEST(BadCheckpoint, Fp8ConfigOverBf16WeightsIsAContradiction) {
  TempDir tmp;
  copy_dir(data_path("tiny-llama"), tmp.path());
  edit_config(tmp.path(), [](nlohmann::json& j) {
    j["quantization_config"] = {{"quant_method", "fp8"},
                                {"fmt", "e4m3"},
                                {"activation_scheme", "dynamic"},
                                {"weight_block_size", {128, 128}}};
  });
  EXPECT_EQ(load_error(tmp.path()),
            (tmp / "config.json").string() +
                ": quantization_config says the weights are FP8 (fine-grained fp8, block "
                "128x128), but no projection is F8_E4M3 (tensor "
                "'model.layers.0.mlp.down_proj.weight' is BF16); remove the quantization_config to "
                "quantize the BF16 weights on the fly");
}

TEST(BadCheckpoint, TruncatedShard) {
  TempDir tmp;
  copy_dir(data_path("tiny-qwen2"), tmp.path());
  const auto shard = tmp / "model-00003-of-00006.safetensors";
  std::filesystem::resize_file(shard, std::filesystem::file_size(shard) - 100);
  const std::string err = load_error(tmp.path());
  EXPECT_NE(err.find("model-00003-of-00006.safetensors"), std::string::npos) << err;
}

TEST(BadCheckpoint, PreQuantizedFp8CheckpointLoads) {
  EXPECT_EQ(load_error(data_path("tiny-llama-fp8-block")), "");
}

TEST(BadCheckpoint, UnsupportedQuantizationMethodIsNamed) {
  TempDir tmp;
  copy_dir(data_path("tiny-llama-fp8-block"), tmp.path());
  edit_config(tmp.path(), [](nlohmann::json& j) {
    j["quantization_config"] = {{"quant_method", "gptq"}, {"bits", 4}};
  });
  const std::string err = load_error(tmp.path());
  EXPECT_NE(err.find("quantization_config.quant_method: \"gptq\" is not supported"),
            std::string::npos)
      << err;
  EXPECT_NE(err.find("compressed-tensors"), std::string::npos) << err;
}

TEST(BadCheckpoint, UnknownQuantizationFlag) {
  EXPECT_THROW(scheme_of(parse_quantization("int4")), Error);
}

}  // namespace
}  // namespace fp8llm::test
