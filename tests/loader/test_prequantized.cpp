// Pre-quantized FP8 checkpoints load as they are: the F8_E4M3 weights and their scales are copied
// (never quantized twice), in the fine-grained "fp8" layout and in compressed-tensors. Every
// malformed variant fails with one line naming the tensor or field.
#include <gtest/gtest.h>

#include <nlohmann/json.hpp>

#include <cstring>
#include <functional>
#include <mutex>

#include "core/error.h"
#include "core/file_util.h"
#include "core/log.h"
#include "formats/checkpoint.h"
#include "formats/hf_config.h"
#include "formats/safetensors.h"
#include "loader/host_sink.h"
#include "loader/load_plan.h"
#include "loader/quantization_config.h"
#include "test_util.h"

namespace fp8llm::test {
namespace {

using Tensors = std::vector<std::pair<std::string, TensorView>>;

struct Loaded {
  LoadPlan plan;
  HostWeights weights;
};

Loaded load(const std::filesystem::path& dir, std::optional<Fp8Scheme> requested = Fp8Scheme::Row) {
  const ModelConfig config = load_model_config(dir);
  const Checkpoint checkpoint = Checkpoint::open(dir);
  Loaded l{build_load_plan(checkpoint, config, requested), {}};
  l.weights = load_host_weights(l.plan);
  return l;
}

std::string load_error(const std::filesystem::path& dir) {
  try {
    load(dir);
  } catch (const Error& e) {
    const std::string msg = e.what();
    EXPECT_EQ(msg.find('\n'), std::string::npos) << msg;
    return msg;
  }
  return "";
}

void expect_same_bytes(const HostTensor& got, const TensorView& want, const std::string& name) {
  ASSERT_EQ(got.dtype, want.dtype) << name;
  ASSERT_EQ(got.shape, want.shape) << name;
  ASSERT_EQ(got.bytes.size(), want.nbytes) << name;
  EXPECT_EQ(std::memcmp(got.bytes.data(), want.data, want.nbytes), 0) << name << " differs";
}

// Every projection of `w` equals the FP8 weight and scale in `expected`; returns how many.
int expect_weights_equal(HostWeights& w, const ModelConfig& config, const SafetensorsFile& expected,
                         Fp8Scheme scheme) {
  int n = 0;
  for (const WeightSpec& s : expected_weights(config)) {
    if (!s.quantizable) {
      expect_same_bytes(*host_slot(w, s), expected.view(s.name), s.name);
      continue;
    }
    HostLinear* lin = host_linear(w, s);
    EXPECT_EQ(lin->scheme, scheme) << s.name;
    expect_same_bytes(lin->weight, expected.view(s.name), s.name);
    expect_same_bytes(lin->scale, expected.view(weight_scale_name(scheme, s.name)), s.name);
    ++n;
  }
  return n;
}

// A model directory: tiny-llama's config (with `qc`) and tokenizer, and the given tensors.
void write_model(const std::filesystem::path& dir, const nlohmann::json& qc,
                 const Tensors& tensors) {
  copy_dir(data_path("tiny-llama"), dir);
  for (const char* f : {"expected_fp8_block.safetensors", "expected_fp8_row.safetensors",
                        "reference_logits.safetensors", "model.safetensors"})
    std::filesystem::remove(dir / f);
  nlohmann::json config = nlohmann::json::parse(read_text_file(dir / "config.json"));
  config["quantization_config"] = qc;
  write_text_file_atomically(dir / "config.json", config.dump(2));
  write_safetensors(dir / "model.safetensors", tensors);
}

// The tensors of a file, optionally edited.
Tensors tensors_of(const SafetensorsFile& f) {
  Tensors ts;
  for (const auto& t : f.tensors()) ts.emplace_back(t.name, f.view(t));
  return ts;
}

std::vector<std::string>& captured() {
  static std::vector<std::string> lines;
  return lines;
}
void capture(LogLevel, std::string_view line) {
  captured().emplace_back(line);
}

const std::string kQProj = "model.layers.0.self_attn.q_proj.weight";

WeightSpec spec_of(const ModelConfig& config, const std::string& name) {
  for (const auto& s : expected_weights(config))
    if (s.name == name) return s;
  throw std::runtime_error("no spec " + name);
}

TEST(Prequantized, FineGrainedFp8LoadsAsStored) {
  const auto dir = data_path("tiny-llama-fp8-block");
  Loaded l = load(dir, Fp8Scheme::Row);  // the request is not applied to an FP8 checkpoint
  ASSERT_TRUE(l.plan.prequant.has_value());
  EXPECT_EQ(l.plan.prequant->format, PrequantFormat::FineGrainedFp8);
  EXPECT_EQ(l.plan.scheme, Fp8Scheme::Block);
  for (const auto& t : l.plan.tensors) EXPECT_FALSE(t.quantize.has_value()) << t.spec.name;
  const auto expected =
      SafetensorsFile::open(data_path("tiny-llama/expected_fp8_block.safetensors"));
  EXPECT_EQ(expect_weights_equal(l.weights, l.plan.config, *expected, Fp8Scheme::Block), 14);
}

TEST(Prequantized, CompressedTensorsChannelLoadsAsStored) {
  TempDir tmp;
  const auto expected = SafetensorsFile::open(data_path("tiny-llama/expected_fp8_row.safetensors"));
  write_model(tmp.path(), quantization_config_for(Fp8Scheme::Row), tensors_of(*expected));
  Loaded l = load(tmp.path(), Fp8Scheme::Block);
  EXPECT_EQ(l.plan.prequant->format, PrequantFormat::CompressedTensors);
  EXPECT_EQ(l.plan.scheme, Fp8Scheme::Row);
  EXPECT_EQ(expect_weights_equal(l.weights, l.plan.config, *expected, Fp8Scheme::Row), 14);
}

TEST(Prequantized, Bf16ScalesAreConvertedExactly) {
  TempDir tmp;
  const auto expected =
      SafetensorsFile::open(data_path("tiny-llama/expected_fp8_block.safetensors"));
  Tensors ts = tensors_of(*expected);
  std::vector<std::vector<uint16_t>> keep;
  for (auto& [name, view] : ts) {
    if (!name.ends_with("_scale_inv")) continue;
    std::vector<uint16_t>& b = keep.emplace_back();
    for (int64_t i = 0; i < view.numel(); ++i) b.push_back(f32_to_bf16(view.as<float>()[i]));
    view = TensorView{DType::BF16, view.shape, reinterpret_cast<const std::byte*>(b.data()),
                      b.size() * 2};
  }
  write_model(tmp.path(), quantization_config_for(Fp8Scheme::Block), ts);
  Loaded l = load(tmp.path());
  const WeightSpec q = spec_of(l.plan.config, kQProj);
  const HostLinear* lin = host_linear(l.weights, q);
  const TensorView want = expected->view(kQProj + "_scale_inv");
  ASSERT_EQ(lin->scale.numel(), want.numel());
  for (int64_t i = 0; i < want.numel(); ++i)
    EXPECT_EQ(lin->scale.as<float>()[i], bf16_to_f32(f32_to_bf16(want.as<float>()[i])));
}

TEST(Prequantized, PerTensorScaleIsRepeatedPerRowAndStaticInputScalesAreLogged) {
  TempDir tmp;
  const auto expected = SafetensorsFile::open(data_path("tiny-llama/expected_fp8_row.safetensors"));
  Tensors ts = tensors_of(*expected);
  const float half = 0.5f, input = 0.25f;
  const auto* half_bytes = reinterpret_cast<const std::byte*>(&half);
  const auto* input_bytes = reinterpret_cast<const std::byte*>(&input);
  for (auto& [name, view] : ts)
    if (name.ends_with("_proj.weight_scale")) view = TensorView{DType::F32, {1}, half_bytes, 4};
  for (const auto& s : expected_weights(load_model_config(data_path("tiny-llama"))))
    if (s.quantizable)
      ts.emplace_back(s.name.substr(0, s.name.size() - 6) + "input_scale",
                      TensorView{DType::F32, {1}, input_bytes, 4});
  nlohmann::json qc = quantization_config_for(Fp8Scheme::Row);
  qc["config_groups"]["group_0"]["weights"]["strategy"] = "tensor";
  qc["config_groups"]["group_0"]["input_activations"]["strategy"] = "tensor";
  qc["config_groups"]["group_0"]["input_activations"]["dynamic"] = false;
  write_model(tmp.path(), qc, ts);
  captured().clear();
  set_log_sink(capture);
  Loaded l = load(tmp.path());
  set_log_sink(nullptr);
  EXPECT_TRUE(l.plan.prequant->per_tensor_weight_scale);
  EXPECT_EQ(l.plan.ignored.size(), 14u);
  const WeightSpec q = spec_of(l.plan.config, kQProj);
  const HostLinear* lin = host_linear(l.weights, q);
  ASSERT_EQ(lin->scale.shape, (Shape{q.shape[0], 1}));
  for (int64_t i = 0; i < lin->scale.numel(); ++i) EXPECT_EQ(lin->scale.as<float>()[i], 0.5f);
  ASSERT_EQ(captured().size(), 1u);
  EXPECT_NE(captured()[0].find("static activation scales (input_scale); they are not used"),
            std::string::npos)
      << captured()[0];
}

// Rewrites the fine-grained fixture with `edit` applied to its tensors and config.
std::string error_after(const std::function<void(Tensors&)>& edit,
                        const std::function<void(nlohmann::json&)>& edit_qc = {}) {
  TempDir tmp;
  const auto file = SafetensorsFile::open(data_path("tiny-llama-fp8-block/model.safetensors"));
  Tensors ts = tensors_of(*file);
  edit(ts);
  nlohmann::json qc = quantization_config_for(Fp8Scheme::Block);
  if (edit_qc) edit_qc(qc);
  write_model(tmp.path(), qc, ts);
  return load_error(tmp.path());
}

TEST(Prequantized, MissingScaleIsNamed) {
  const std::string err = error_after([](Tensors& ts) {
    std::erase_if(ts, [](const auto& t) { return t.first == kQProj + "_scale_inv"; });
  });
  EXPECT_NE(err.find("'" + kQProj + "_scale_inv' is missing (the scale of the FP8 weight"),
            std::string::npos)
      << err;
}

TEST(Prequantized, MisshapenScaleIsNamed) {
  const std::string err = error_after([](Tensors& ts) {
    for (auto& [name, view] : ts)
      if (name == kQProj + "_scale_inv") view.shape = {4, 1};
  });
  EXPECT_NE(err.find("'" + kQProj +
                     "_scale_inv' has shape [4, 1] but a fine-grained fp8, block "
                     "128x128 scale of a [256, 256] weight is [2, 2]"),
            std::string::npos)
      << err;
}

TEST(Prequantized, IntegerScaleIsRefused) {
  const std::string err = error_after([](Tensors& ts) {
    for (auto& [name, view] : ts)
      if (name == kQProj + "_scale_inv") view.dtype = DType::I32;
  });
  EXPECT_NE(err.find("'" + kQProj + "_scale_inv' has dtype I32; a weight scale must be F32"),
            std::string::npos)
      << err;
}

TEST(Prequantized, NaNScaleIsRefused) {
  std::vector<float> bad(4, 1.0f);
  bad[3] = std::numeric_limits<float>::quiet_NaN();
  const std::string err = error_after([&](Tensors& ts) {
    for (auto& [name, view] : ts)
      if (name == kQProj + "_scale_inv") view.data = reinterpret_cast<const std::byte*>(bad.data());
  });
  EXPECT_EQ(err, kQProj + "_scale_inv: scale nan at [1, 1] is not a finite positive number");
}

TEST(Prequantized, Fp8WeightWithoutQuantizationConfigIsRefused) {
  TempDir tmp;
  copy_dir(data_path("tiny-llama-fp8-block"), tmp.path());
  nlohmann::json config = nlohmann::json::parse(read_text_file(tmp / "config.json"));
  config.erase("quantization_config");
  write_text_file_atomically(tmp / "config.json", config.dump(2));
  const std::string err = load_error(tmp.path());
  EXPECT_NE(err.find("is F8_E4M3 but config.json has no quantization_config"), std::string::npos)
      << err;
}

TEST(Prequantized, WrongConfigForTheStoredLayoutIsNamed) {
  // Fine-grained tensors (`_scale_inv`) under a compressed-tensors config: the scale is missing.
  const std::string err = error_after(
      [](Tensors&) {}, [](nlohmann::json& qc) { qc = quantization_config_for(Fp8Scheme::Row); });
  EXPECT_NE(err.find("_proj.weight_scale' is missing"), std::string::npos) << err;
}

std::string config_error(const nlohmann::json& qc) {
  try {
    parse_quantization_config(qc, "m/config.json");
  } catch (const Error& e) {
    return e.what();
  }
  return "";
}

TEST(Prequantized, UnsupportedMethodsAreNamed) {
  for (const char* m : {"gptq", "awq", "bitsandbytes", "mxfp4", "fbgemm_fp8"}) {
    const std::string err = config_error({{"quant_method", m}});
    EXPECT_NE(err.find(fmt::format("m/config.json: quantization_config.quant_method: \"{}\" is not "
                                   "supported",
                                   m)),
              std::string::npos)
        << err;
    EXPECT_NE(err.find("fine-grained \"fp8\""), std::string::npos) << err;
  }
  EXPECT_NE(config_error({{"load_in_4bit", true}}).find("quant_method: null is not supported"),
            std::string::npos);
}

TEST(Prequantized, UnsupportedFieldsAreNamed) {
  auto with = [](Fp8Scheme s, const std::function<void(nlohmann::json&)>& f) {
    nlohmann::json qc = quantization_config_for(s);
    f(qc);
    return config_error(qc);
  };
  auto has = [](const std::string& err, const std::string& want) {
    EXPECT_NE(err.find(want), std::string::npos) << err;
  };
  has(with(Fp8Scheme::Block,
           [](auto& q) {
             q["weight_block_size"] = {64, 64};
           }),
      "quantization_config.weight_block_size: [64,64] is not supported");
  has(with(Fp8Scheme::Block, [](auto& q) { q["fmt"] = "e5m2"; }),
      "quantization_config.fmt: \"e5m2\" is not supported");
  has(with(Fp8Scheme::Block, [](auto& q) { q["activation_scheme"] = "weird"; }),
      "quantization_config.activation_scheme: \"weird\" is not one of");
  has(with(Fp8Scheme::Row, [](auto& q) { q["format"] = "pack-quantized"; }),
      "quantization_config.format: \"pack-quantized\" is not supported");
  has(with(Fp8Scheme::Row, [](auto& q) { q["quantization_status"] = "frozen"; }),
      "quantization_config.quantization_status: \"frozen\" is not supported");
  has(with(Fp8Scheme::Row,
           [](auto& q) { q["config_groups"]["group_0"]["weights"]["num_bits"] = 4; }),
      "config_groups.group_0.weights: num_bits 4 type \"float\" is not supported");
  has(with(Fp8Scheme::Row,
           [](auto& q) { q["config_groups"]["group_0"]["weights"]["strategy"] = "group"; }),
      "config_groups.group_0.weights.strategy: \"group\" is not supported");
  has(with(Fp8Scheme::Row,
           [](auto& q) { q["config_groups"]["group_0"]["weights"]["symmetric"] = false; }),
      "config_groups.group_0.weights.symmetric: false is not supported");
  has(with(Fp8Scheme::Row,
           [](auto& q) {
             q["kv_cache_scheme"] = {{"num_bits", 8}};
           }),
      "quantization_config.kv_cache_scheme");
  has(with(Fp8Scheme::Row, [](auto& q) { q["config_groups"] = nlohmann::json::object(); }),
      "quantization_config.config_groups: expected a non-empty object");
}

TEST(Prequantized, CompressedTensorsVariantsAreRead) {
  nlohmann::json qc = quantization_config_for(Fp8Scheme::Row);
  qc["format"] = "naive-quantized";
  qc["config_groups"]["group_0"]["weights"]["strategy"] = "block";
  qc["config_groups"]["group_0"]["weights"]["block_structure"] = {128, 128};
  const PrequantConfig c = parse_quantization_config(qc, "m");
  EXPECT_EQ(c.scheme, Fp8Scheme::Block);
  EXPECT_EQ(c.scale_name("x.weight"), "x.weight_scale");
  EXPECT_EQ(c.ignore, std::vector<std::string>{"lm_head"});
  EXPECT_FALSE(c.static_activation_scales);
}

}  // namespace
}  // namespace fp8llm::test
