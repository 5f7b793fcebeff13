#include "formats/hf_config.h"

#include <gtest/gtest.h>

#include <fstream>
#include <string>

#include "core/error.h"
#include "test_util.h"

namespace fp8llm {
namespace {

using nlohmann::json;
using test::data_path;
using test::TempDir;

// The message parse_model_config throws for `config`, or "(no error)".
std::string error_of(const json& config) {
  try {
    parse_model_config(config, "config.json");
  } catch (const Error& e) {
    return e.what();
  }
  return "(no error)";
}

json with(json config, const std::string& key, json value) {
  config[key] = std::move(value);
  return config;
}

json without(json config, const std::string& key) {
  config.erase(key);
  return config;
}

ModelConfig parse(const json& config) {
  return parse_model_config(config, "config.json");
}

// Smallest complete configs of each supported type (sizes of the tiny fixtures).
json llama_json() {
  return json::parse(R"({
    "architectures": ["LlamaForCausalLM"], "model_type": "llama", "hidden_size": 256,
    "intermediate_size": 640, "num_hidden_layers": 2, "num_attention_heads": 4,
    "num_key_value_heads": 2, "vocab_size": 1024, "max_position_embeddings": 2048,
    "hidden_act": "silu", "rms_norm_eps": 1e-05, "rope_theta": 500000.0, "rope_scaling": null,
    "tie_word_embeddings": false, "torch_dtype": "bfloat16", "bos_token_id": 0, "eos_token_id": 4
  })");
}

json mistral_json() {
  return json::parse(R"({
    "architectures": ["MistralForCausalLM"], "model_type": "mistral", "hidden_size": 256,
    "intermediate_size": 640, "num_hidden_layers": 2, "num_attention_heads": 4,
    "num_key_value_heads": 2, "vocab_size": 1024, "max_position_embeddings": 32768,
    "hidden_act": "silu", "rms_norm_eps": 1e-05, "rope_theta": 1000000.0, "sliding_window": null,
    "tie_word_embeddings": false, "torch_dtype": "bfloat16", "bos_token_id": 1, "eos_token_id": 2
  })");
}

json qwen2_json() {
  return json::parse(R"({
    "architectures": ["Qwen2ForCausalLM"], "model_type": "qwen2", "hidden_size": 192,
    "intermediate_size": 200, "num_hidden_layers": 3, "num_attention_heads": 3,
    "num_key_value_heads": 1, "vocab_size": 1024, "max_position_embeddings": 4096,
    "hidden_act": "silu", "rms_norm_eps": 1e-06, "rope_theta": 1000000.0, "rope_scaling": null,
    "use_sliding_window": false, "sliding_window": 4096, "max_window_layers": 28,
    "tie_word_embeddings": false, "torch_dtype": "bfloat16", "bos_token_id": null, "eos_token_id": 2
  })");
}

json qwen3_json() {
  return json::parse(R"({
    "architectures": ["Qwen3ForCausalLM"], "model_type": "qwen3", "hidden_size": 256,
    "intermediate_size": 384, "num_hidden_layers": 2, "num_attention_heads": 4,
    "num_key_value_heads": 1, "head_dim": 128, "vocab_size": 1024,
    "max_position_embeddings": 4096, "hidden_act": "silu", "rms_norm_eps": 1e-06,
    "rope_parameters": {"rope_theta": 1000000.0, "rope_type": "default"},
    "attention_bias": false, "use_sliding_window": false, "sliding_window": null,
    "max_window_layers": 28, "layer_types": ["full_attention", "full_attention"],
    "tie_word_embeddings": true, "dtype": "bfloat16", "bos_token_id": null, "eos_token_id": 2
  })");
}

json llama3_rope() {
  return json::parse(R"({"rope_type": "llama3", "factor": 8.0, "low_freq_factor": 1.0,
                         "high_freq_factor": 4.0, "original_max_position_embeddings": 256})");
}

// --- The fixtures -------------------------------------------------------------------------------

TEST(HfConfig, TinyLlamaLegacySpellingWithLlama3Rope) {
  const ModelConfig c = load_model_config(data_path("tiny-llama"));
  EXPECT_EQ(c.model_type, "llama");
  EXPECT_EQ(c.architecture, "LlamaForCausalLM");
  EXPECT_EQ(c.hidden_size, 256);
  EXPECT_EQ(c.intermediate_size, 640);
  EXPECT_EQ(c.num_layers, 2);
  EXPECT_EQ(c.num_heads, 4);
  EXPECT_EQ(c.num_kv_heads, 2);
  EXPECT_EQ(c.head_dim, 64);
  EXPECT_EQ(c.vocab_size, 1024);
  EXPECT_EQ(c.max_position_embeddings, 2048);
  EXPECT_DOUBLE_EQ(c.rms_norm_eps, 1e-5);
  EXPECT_EQ(c.rope.type, RopeType::Llama3);
  EXPECT_DOUBLE_EQ(c.rope.theta, 500000.0);
  EXPECT_DOUBLE_EQ(c.rope.factor, 8.0);
  EXPECT_DOUBLE_EQ(c.rope.low_freq_factor, 1.0);
  EXPECT_DOUBLE_EQ(c.rope.high_freq_factor, 4.0);
  EXPECT_EQ(c.rope.original_max_position_embeddings, 256);
  EXPECT_FALSE(c.tie_word_embeddings);
  EXPECT_FALSE(c.qkv_bias);
  EXPECT_FALSE(c.o_bias);
  EXPECT_FALSE(c.mlp_bias);
  EXPECT_FALSE(c.qk_norm);
  EXPECT_EQ(c.dtype, "bfloat16");
  EXPECT_EQ(c.bos_token_id, std::optional<int64_t>(0));
  EXPECT_EQ(c.eos_token_ids, std::vector<int64_t>{4});
  EXPECT_FALSE(c.quantization_config.has_value());
}

TEST(HfConfig, TinyQwen2HasQkvBiasAndNullRopeScaling) {
  const ModelConfig c = load_model_config(data_path("tiny-qwen2"));
  EXPECT_EQ(c.model_type, "qwen2");
  EXPECT_EQ(c.architecture, "Qwen2ForCausalLM");
  EXPECT_EQ(c.hidden_size, 192);
  EXPECT_EQ(c.intermediate_size, 200);
  EXPECT_EQ(c.num_layers, 3);
  EXPECT_EQ(c.num_heads, 3);
  EXPECT_EQ(c.num_kv_heads, 1);
  EXPECT_EQ(c.head_dim, 64);
  EXPECT_EQ(c.vocab_size, 1024);
  EXPECT_EQ(c.max_position_embeddings, 4096);
  EXPECT_DOUBLE_EQ(c.rms_norm_eps, 1e-6);
  EXPECT_EQ(c.rope.type, RopeType::Default);
  EXPECT_DOUBLE_EQ(c.rope.theta, 1000000.0);
  EXPECT_FALSE(c.tie_word_embeddings);
  EXPECT_TRUE(c.qkv_bias);
  EXPECT_FALSE(c.o_bias);
  EXPECT_FALSE(c.mlp_bias);
  EXPECT_FALSE(c.qk_norm);
  EXPECT_EQ(c.dtype, "bfloat16");
  EXPECT_FALSE(c.bos_token_id.has_value());
  EXPECT_EQ(c.eos_token_ids, std::vector<int64_t>{2});
  EXPECT_FALSE(c.quantization_config.has_value());
}

TEST(HfConfig, TinyQwen3CurrentSpellingExplicitHeadDimTied) {
  const ModelConfig c = load_model_config(data_path("tiny-qwen3"));
  EXPECT_EQ(c.model_type, "qwen3");
  EXPECT_EQ(c.architecture, "Qwen3ForCausalLM");
  EXPECT_EQ(c.hidden_size, 256);
  EXPECT_EQ(c.intermediate_size, 384);
  EXPECT_EQ(c.num_layers, 2);
  EXPECT_EQ(c.num_heads, 4);
  EXPECT_EQ(c.num_kv_heads, 1);
  EXPECT_EQ(c.head_dim, 128);  // not hidden_size / num_heads = 64
  EXPECT_EQ(c.vocab_size, 1024);
  EXPECT_EQ(c.max_position_embeddings, 4096);
  EXPECT_EQ(c.rope.type, RopeType::Default);
  EXPECT_DOUBLE_EQ(c.rope.theta, 1000000.0);
  EXPECT_TRUE(c.tie_word_embeddings);
  EXPECT_FALSE(c.qkv_bias);
  EXPECT_FALSE(c.o_bias);
  EXPECT_TRUE(c.qk_norm);
  EXPECT_EQ(c.dtype, "bfloat16");
  EXPECT_FALSE(c.bos_token_id.has_value());
  EXPECT_EQ(c.eos_token_ids, std::vector<int64_t>{2});
}

TEST(HfConfig, TinyLlamaFp8BlockKeepsQuantizationConfig) {
  const ModelConfig c = load_model_config(data_path("tiny-llama-fp8-block"));
  EXPECT_EQ(c.model_type, "llama");
  EXPECT_EQ(c.rope.type, RopeType::Llama3);
  ASSERT_TRUE(c.quantization_config.has_value());
  const json& q = *c.quantization_config;
  EXPECT_EQ(q.at("quant_method"), "fp8");
  EXPECT_EQ(q.at("fmt"), "e4m3");
  EXPECT_EQ(q.at("activation_scheme"), "dynamic");
  EXPECT_EQ(q.at("weight_block_size"), json::parse("[128, 128]"));
}

// --- Spellings and defaults ---------------------------------------------------------------------

TEST(HfConfig, SyntheticBaseConfigsParse) {
  EXPECT_EQ(parse(llama_json()).model_type, "llama");
  EXPECT_EQ(parse(mistral_json()).model_type, "mistral");
  EXPECT_EQ(parse(qwen2_json()).model_type, "qwen2");
  EXPECT_EQ(parse(qwen3_json()).model_type, "qwen3");
}

TEST(HfConfig, RopeScalingTypeKeyIsTheLegacyNameOfRopeType) {
  json rope = llama3_rope();
  rope.erase("rope_type");
  rope["type"] = "llama3";
  const ModelConfig c = parse(with(llama_json(), "rope_scaling", rope));
  EXPECT_EQ(c.rope.type, RopeType::Llama3);
  EXPECT_DOUBLE_EQ(c.rope.factor, 8.0);

  rope["rope_type"] = "llama3";  // both keys, same value
  EXPECT_EQ(parse(with(llama_json(), "rope_scaling", rope)).rope.type, RopeType::Llama3);

  const json default_rope = json::parse(R"({"type": "default"})");
  EXPECT_EQ(parse(with(llama_json(), "rope_scaling", default_rope)).rope.type, RopeType::Default);
}

TEST(HfConfig, RopeParametersLlama3) {
  json rope = llama3_rope();
  rope["rope_theta"] = 500000.0;
  const ModelConfig c = parse(
      with(without(without(llama_json(), "rope_theta"), "rope_scaling"), "rope_parameters", rope));
  EXPECT_EQ(c.rope.type, RopeType::Llama3);
  EXPECT_DOUBLE_EQ(c.rope.theta, 500000.0);
  EXPECT_DOUBLE_EQ(c.rope.factor, 8.0);
  EXPECT_DOUBLE_EQ(c.rope.low_freq_factor, 1.0);
  EXPECT_DOUBLE_EQ(c.rope.high_freq_factor, 4.0);
  EXPECT_EQ(c.rope.original_max_position_embeddings, 256);
}

TEST(HfConfig, RopeParametersWithoutTypeOrThetaTakeDefaults) {
  // transformers fills in rope_type "default" and the top-level rope_theta.
  json config = with(qwen3_json(), "rope_parameters", json::object());
  EXPECT_EQ(parse(config).rope.type, RopeType::Default);
  EXPECT_DOUBLE_EQ(parse(config).rope.theta, 10000.0);
  config["rope_theta"] = 5e6;
  EXPECT_DOUBLE_EQ(parse(config).rope.theta, 5e6);
}

TEST(HfConfig, RopeDefaultsWhenNothingIsSaid) {
  const ModelConfig c = parse(without(without(llama_json(), "rope_theta"), "rope_scaling"));
  EXPECT_EQ(c.rope.type, RopeType::Default);
  EXPECT_DOUBLE_EQ(c.rope.theta, 10000.0);
}

TEST(HfConfig, RopeScalingAndRopeParametersThatAgreeAreAccepted) {
  json params = llama3_rope();
  params["rope_theta"] = 500000.0;
  const json config =
      with(with(llama_json(), "rope_scaling", llama3_rope()), "rope_parameters", params);
  EXPECT_EQ(parse(config).rope.type, RopeType::Llama3);
}

TEST(HfConfig, DtypeSpellings) {
  EXPECT_EQ(parse(llama_json()).dtype, "bfloat16");  // torch_dtype
  EXPECT_EQ(parse(qwen3_json()).dtype, "bfloat16");  // dtype
  EXPECT_EQ(parse(with(llama_json(), "torch_dtype", "float16")).dtype, "float16");
  EXPECT_EQ(parse(with(llama_json(), "torch_dtype", "float32")).dtype, "float32");
  // The current name wins when both are written.
  EXPECT_EQ(parse(with(llama_json(), "dtype", "float32")).dtype, "float32");
  EXPECT_EQ(parse(without(llama_json(), "torch_dtype")).dtype, "");
  EXPECT_EQ(parse(with(llama_json(), "torch_dtype", nullptr)).dtype, "");
}

TEST(HfConfig, HeadDimMissingOrNullIsDerived) {
  EXPECT_EQ(parse(without(llama_json(), "head_dim")).head_dim, 64);
  EXPECT_EQ(parse(with(llama_json(), "head_dim", nullptr)).head_dim, 64);
  EXPECT_EQ(parse(with(llama_json(), "head_dim", 32)).head_dim, 32);
  EXPECT_EQ(parse(with(qwen3_json(), "head_dim", nullptr)).head_dim, 64);
  EXPECT_EQ(parse(without(mistral_json(), "head_dim")).head_dim, 64);
  EXPECT_EQ(parse(without(qwen2_json(), "head_dim")).head_dim, 64);
}

TEST(HfConfig, Qwen3HeadDimDefaultsTo128LikeTransformers) {
  EXPECT_EQ(parse(without(qwen3_json(), "head_dim")).head_dim, 128);
}

TEST(HfConfig, KvHeadsDefaultToTheConfigClassDefault) {
  // LlamaConfig: num_attention_heads; MistralConfig: 8; Qwen2Config / Qwen3Config: 32.
  EXPECT_EQ(parse(without(llama_json(), "num_key_value_heads")).num_kv_heads, 4);
  EXPECT_EQ(parse(with(llama_json(), "num_key_value_heads", nullptr)).num_kv_heads, 4);
  json mistral =
      with(with(without(mistral_json(), "num_key_value_heads"), "num_attention_heads", 32),
           "hidden_size", 2048);
  EXPECT_EQ(parse(mistral).num_kv_heads, 8);
  EXPECT_EQ(parse(with(mistral, "num_key_value_heads", nullptr)).num_kv_heads, 32);
  json qwen2 = with(with(without(qwen2_json(), "num_key_value_heads"), "num_attention_heads", 64),
                    "hidden_size", 4096);
  EXPECT_EQ(parse(qwen2).num_kv_heads, 32);
  EXPECT_EQ(parse(with(qwen2, "num_key_value_heads", nullptr)).num_kv_heads, 64);
}

TEST(HfConfig, OptionalFieldsTakeTheConfigClassDefaults) {
  json llama = llama_json();
  for (const char* key : {"architectures", "max_position_embeddings", "rms_norm_eps", "hidden_act",
                          "tie_word_embeddings", "bos_token_id", "eos_token_id"}) {
    llama.erase(key);
  }
  const ModelConfig c = parse(llama);
  EXPECT_EQ(c.architecture, "LlamaForCausalLM");
  EXPECT_EQ(c.max_position_embeddings, 2048);
  EXPECT_DOUBLE_EQ(c.rms_norm_eps, 1e-6);
  EXPECT_FALSE(c.tie_word_embeddings);
  EXPECT_EQ(c.bos_token_id, std::optional<int64_t>(1));
  EXPECT_EQ(c.eos_token_ids, std::vector<int64_t>{2});

  json qwen2 = without(without(without(qwen2_json(), "max_position_embeddings"), "bos_token_id"),
                       "eos_token_id");
  const ModelConfig q = parse(qwen2);
  EXPECT_EQ(q.max_position_embeddings, 32768);
  EXPECT_FALSE(q.bos_token_id.has_value());
  EXPECT_TRUE(q.eos_token_ids.empty());

  EXPECT_EQ(parse(without(qwen3_json(), "architectures")).architecture, "Qwen3ForCausalLM");
  EXPECT_EQ(parse(with(mistral_json(), "architectures", json::array())).architecture,
            "MistralForCausalLM");
}

TEST(HfConfig, SwishIsSilu) {
  EXPECT_NO_THROW(parse(with(llama_json(), "hidden_act", "swish")));
}

TEST(HfConfig, TokenIds) {
  const ModelConfig c = parse(with(llama_json(), "eos_token_id", json::parse("[128001, 128009]")));
  EXPECT_EQ(c.eos_token_ids, (std::vector<int64_t>{128001, 128009}));
  EXPECT_TRUE(parse(with(llama_json(), "eos_token_id", nullptr)).eos_token_ids.empty());
  EXPECT_FALSE(parse(with(llama_json(), "bos_token_id", nullptr)).bos_token_id.has_value());
  EXPECT_EQ(parse(with(llama_json(), "bos_token_id", 128000)).bos_token_id,
            std::optional<int64_t>(128000));
}

TEST(HfConfig, QuantizationConfigNullIsAbsent) {
  EXPECT_FALSE(
      parse(with(llama_json(), "quantization_config", nullptr)).quantization_config.has_value());
}

// --- Biases and norms ---------------------------------------------------------------------------

TEST(HfConfig, LlamaAttentionBiasBiasesQkvAndO) {
  const ModelConfig c = parse(with(llama_json(), "attention_bias", true));
  EXPECT_TRUE(c.qkv_bias);
  EXPECT_TRUE(c.o_bias);
  EXPECT_FALSE(c.mlp_bias);
  const ModelConfig m = parse(with(llama_json(), "mlp_bias", true));
  EXPECT_FALSE(m.qkv_bias);
  EXPECT_FALSE(m.o_bias);
  EXPECT_TRUE(m.mlp_bias);
}

TEST(HfConfig, Qwen3AttentionBiasBiasesQkvAndO) {
  const ModelConfig c = parse(with(qwen3_json(), "attention_bias", true));
  EXPECT_TRUE(c.qkv_bias);
  EXPECT_TRUE(c.o_bias);
  EXPECT_TRUE(c.qk_norm);
  EXPECT_FALSE(c.mlp_bias);
}

TEST(HfConfig, Qwen2AlwaysHasQkvBiasAndNeverOBias) {
  const ModelConfig c = parse(without(with(qwen2_json(), "attention_bias", false), "mlp_bias"));
  EXPECT_TRUE(c.qkv_bias);
  EXPECT_FALSE(c.o_bias);
  EXPECT_FALSE(c.mlp_bias);
}

TEST(HfConfig, MistralModulesHaveNoBiasesWhateverTheConfigSays) {
  // transformers' MistralAttention and MistralMLP are built with bias=False.
  const ModelConfig c = parse(with(with(mistral_json(), "attention_bias", true), "mlp_bias", true));
  EXPECT_FALSE(c.qkv_bias);
  EXPECT_FALSE(c.o_bias);
  EXPECT_FALSE(c.mlp_bias);
  EXPECT_FALSE(c.qk_norm);
}

// --- Sliding windows ----------------------------------------------------------------------------

TEST(HfConfig, MistralSlidingWindowNullOrNotShorterThanContextIsIgnored) {
  EXPECT_NO_THROW(parse(mistral_json()));  // null
  EXPECT_NO_THROW(parse(with(mistral_json(), "sliding_window", 32768)));
  EXPECT_NO_THROW(parse(with(mistral_json(), "sliding_window", 65536)));
}

TEST(HfConfig, MistralSmallSlidingWindowIsAnError) {
  EXPECT_EQ(error_of(with(mistral_json(), "sliding_window", 4096)),
            "config.json: sliding-window attention is not supported (sliding_window 4096 is "
            "shorter than max_position_embeddings 32768)");
}

TEST(HfConfig, MistralSlidingWindowAbsentTakesTheDefault4096) {
  EXPECT_EQ(error_of(without(mistral_json(), "sliding_window")),
            "config.json: sliding-window attention is not supported (sliding_window 4096 is "
            "shorter than max_position_embeddings 32768; 4096 is the mistral default)");
  EXPECT_NO_THROW(
      parse(with(without(mistral_json(), "sliding_window"), "max_position_embeddings", 4096)));
}

TEST(HfConfig, LlamaIgnoresSlidingWindowFields) {
  EXPECT_NO_THROW(parse(with(llama_json(), "sliding_window", 16)));
}

TEST(HfConfig, QwenSlidingWindowOnlyMattersWhenALayerUsesIt) {
  // use_sliding_window false (the fixture's 4096 window is not used).
  EXPECT_NO_THROW(parse(with(qwen2_json(), "sliding_window", 1024)));
  // Used, but only from layer 28 on, and there are 3 layers.
  json used = with(with(qwen2_json(), "use_sliding_window", true), "sliding_window", 1024);
  EXPECT_NO_THROW(parse(used));
  // Used, and as long as the context.
  EXPECT_NO_THROW(parse(with(with(used, "max_window_layers", 1), "sliding_window", 4096)));
  // layer_types all full attention.
  EXPECT_NO_THROW(parse(with(used, "layer_types",
                             json::parse(
                                 R"(["full_attention", "full_attention",
                                                          "full_attention"])"))));
  // A sliding layer with no window: nothing to apply.
  EXPECT_NO_THROW(parse(with(
      with(qwen3_json(), "layer_types", json::parse(R"(["full_attention", "sliding_attention"])")),
      "sliding_window", nullptr)));
}

TEST(HfConfig, QwenSlidingLayersFromMaxWindowLayersAreAnError) {
  json config = with(with(with(qwen2_json(), "use_sliding_window", true), "sliding_window", 1024),
                     "max_window_layers", 1);
  EXPECT_EQ(error_of(config),
            "config.json: sliding-window attention is not supported (sliding_window 1024 is "
            "shorter than max_position_embeddings 4096; 2 layers use it, the first is layer 1)");
  // max_window_layers absent: 28 (Qwen2Config default), and there are 3 layers.
  EXPECT_NO_THROW(parse(without(config, "max_window_layers")));
}

TEST(HfConfig, QwenSlidingLayersFromLayerTypesAreAnError) {
  const json config = with(
      with(qwen3_json(), "layer_types", json::parse(R"(["full_attention", "sliding_attention"])")),
      "sliding_window", 512);
  EXPECT_EQ(error_of(config),
            "config.json: sliding-window attention is not supported (sliding_window 512 is "
            "shorter than max_position_embeddings 4096; layer 1 uses it)");
}

TEST(HfConfig, LayerTypesMustBeValid) {
  EXPECT_EQ(error_of(with(qwen3_json(), "layer_types", json::parse(R"(["full_attention"])"))),
            "config.json: layer_types: has 1 entries but num_hidden_layers is 2");
  EXPECT_EQ(error_of(with(qwen3_json(), "layer_types",
                          json::parse(R"(["full_attention", "linear_attention"])"))),
            "config.json: layer_types[1]: 'linear_attention' is not supported (supported: "
            "full_attention, sliding_attention)");
  EXPECT_EQ(error_of(with(qwen3_json(), "layer_types", json::parse(R"(["full_attention", 1])"))),
            "config.json: layer_types[1]: expected a string, got 1");
  EXPECT_EQ(error_of(with(qwen3_json(), "layer_types", "full_attention")),
            "config.json: layer_types: expected a list of strings, got \"full_attention\"");
}

TEST(HfConfig, SlidingWindowFieldTypes) {
  EXPECT_EQ(error_of(with(mistral_json(), "sliding_window", 0)),
            "config.json: sliding_window: expected a positive integer, got 0");
  EXPECT_EQ(error_of(with(qwen2_json(), "sliding_window", "4096")),
            "config.json: sliding_window: expected a positive integer, got \"4096\"");
  EXPECT_EQ(error_of(with(qwen2_json(), "use_sliding_window", 1)),
            "config.json: use_sliding_window: expected true or false, got 1");
  EXPECT_EQ(error_of(with(qwen2_json(), "max_window_layers", -1)),
            "config.json: max_window_layers: expected a non-negative integer below 2^31, got -1");
}

// --- Errors -------------------------------------------------------------------------------------

TEST(HfConfig, UnsupportedModelType) {
  EXPECT_EQ(error_of(with(llama_json(), "model_type", "gemma2")),
            "config.json: model_type 'gemma2' is not supported (supported: llama, mistral, "
            "qwen2, qwen3)");
  EXPECT_EQ(error_of(without(llama_json(), "model_type")), "config.json: model_type: missing");
  EXPECT_EQ(error_of(with(llama_json(), "model_type", 7)),
            "config.json: model_type: expected a string, got 7");
}

TEST(HfConfig, UnsupportedArchitecture) {
  EXPECT_EQ(error_of(with(qwen2_json(), "architectures",
                          json::parse(R"(["Qwen2ForSequenceClassification"])"))),
            "config.json: architecture 'Qwen2ForSequenceClassification' is not supported "
            "(supported: *ForCausalLM, e.g. Qwen2ForCausalLM)");
  EXPECT_EQ(error_of(with(qwen2_json(), "architectures", "Qwen2ForCausalLM")),
            "config.json: architectures: expected a list of strings, got \"Qwen2ForCausalLM\"");
}

TEST(HfConfig, RequiredSizesMustBePresent) {
  for (const char* key : {"hidden_size", "intermediate_size", "num_hidden_layers",
                          "num_attention_heads", "vocab_size"}) {
    EXPECT_EQ(error_of(without(llama_json(), key)), fmt::format("config.json: {}: missing", key));
    EXPECT_EQ(error_of(with(llama_json(), key, nullptr)),
              fmt::format("config.json: {}: missing", key));
  }
}

TEST(HfConfig, SizesMustBePositiveIntegers) {
  for (const char* key :
       {"hidden_size", "intermediate_size", "num_hidden_layers", "num_attention_heads",
        "num_key_value_heads", "vocab_size", "max_position_embeddings", "head_dim"}) {
    for (const json& bad : {json(0), json(-4), json(256.5), json("256"), json(true)}) {
      EXPECT_EQ(
          error_of(with(llama_json(), key, bad)),
          fmt::format("config.json: {}: expected a positive integer, got {}", key, bad.dump()));
    }
  }
  EXPECT_EQ(error_of(with(llama_json(), "vocab_size", int64_t{1} << 40)),
            "config.json: vocab_size: out of range (got 1099511627776, at most "
            "2147483647)");
  EXPECT_EQ(error_of(with(llama_json(), "vocab_size", uint64_t{1} << 63)),
            "config.json: vocab_size: out of range (got 9223372036854775808, at most "
            "2147483647)");
}

TEST(HfConfig, HeadDimMustDivideOrBeGiven) {
  const json config = with(with(llama_json(), "hidden_size", 250), "head_dim", nullptr);
  EXPECT_EQ(error_of(config),
            "config.json: hidden_size 250 is not divisible by num_attention_heads 4 (and "
            "'head_dim' is not set)");
  EXPECT_EQ(parse(with(config, "head_dim", 64)).head_dim, 64);
  EXPECT_EQ(error_of(with(llama_json(), "head_dim", 63)),
            "config.json: head_dim 63 is odd; rotary embeddings need an even head_dim");
}

TEST(HfConfig, KvHeadsMustDivideHeads) {
  EXPECT_EQ(error_of(with(llama_json(), "num_key_value_heads", 3)),
            "config.json: num_attention_heads 4 is not divisible by num_key_value_heads 3");
  EXPECT_EQ(error_of(with(llama_json(), "num_key_value_heads", 8)),
            "config.json: num_attention_heads 4 is not divisible by num_key_value_heads 8");
  EXPECT_EQ(error_of(without(mistral_json(), "num_key_value_heads")),
            "config.json: num_attention_heads 4 is not divisible by num_key_value_heads 8 (the "
            "mistral default)");
}

TEST(HfConfig, HiddenActMustBeSilu) {
  EXPECT_EQ(error_of(with(llama_json(), "hidden_act", "gelu")),
            "config.json: hidden_act: 'gelu' is not supported (supported: silu)");
  EXPECT_EQ(error_of(with(llama_json(), "hidden_act", 1)),
            "config.json: hidden_act: expected a string, got 1");
}

TEST(HfConfig, UnsupportedRopeTypes) {
  for (const char* type : {"yarn", "linear", "dynamic", "longrope", "mrope"}) {
    json rope = llama3_rope();
    rope["rope_type"] = type;
    EXPECT_EQ(error_of(with(llama_json(), "rope_scaling", rope)),
              fmt::format("config.json: rope_scaling.rope_type: '{}' is not supported "
                          "(supported: default, llama3)",
                          type));
    EXPECT_EQ(error_of(with(qwen3_json(), "rope_parameters", rope)),
              fmt::format("config.json: rope_parameters.rope_type: '{}' is not supported "
                          "(supported: default, llama3)",
                          type));
  }
  // Qwen2.5-style YaRN through the legacy `type` key.
  EXPECT_EQ(
      error_of(with(qwen2_json(), "rope_scaling", json::parse(R"({"type": "yarn", "factor": 4.0,
                                          "original_max_position_embeddings": 32768})"))),
      "config.json: rope_scaling.type: 'yarn' is not supported (supported: default, llama3)");
}

TEST(HfConfig, RopeScalingErrors) {
  EXPECT_EQ(error_of(with(llama_json(), "rope_scaling", json::parse(R"({"factor": 8.0})"))),
            "config.json: rope_scaling.rope_type: missing");
  EXPECT_EQ(error_of(with(llama_json(), "rope_scaling", "llama3")),
            "config.json: rope_scaling: expected an object, got \"llama3\"");
  EXPECT_EQ(error_of(with(llama_json(), "rope_scaling",
                          json::parse(R"({"rope_type": "llama3", "type": "linear"})"))),
            "config.json: fields 'rope_scaling.rope_type' ('llama3') and 'rope_scaling.type' "
            "('linear') disagree");
  EXPECT_EQ(error_of(with(llama_json(), "rope_scaling", json::parse(R"({"rope_type": 3})"))),
            "config.json: rope_scaling.rope_type: expected a string, got 3");
  for (const char* key :
       {"factor", "low_freq_factor", "high_freq_factor", "original_max_position_embeddings"}) {
    json rope = llama3_rope();
    rope.erase(key);
    EXPECT_EQ(error_of(with(llama_json(), "rope_scaling", rope)),
              fmt::format("config.json: rope_scaling.{}: missing", key));
  }
  json rope = llama3_rope();
  rope["factor"] = -8.0;
  EXPECT_EQ(error_of(with(llama_json(), "rope_scaling", rope)),
            "config.json: rope_scaling.factor: expected a positive number, got -8.0");
  rope = llama3_rope();
  rope["original_max_position_embeddings"] = 256.5;
  EXPECT_EQ(error_of(with(llama_json(), "rope_scaling", rope)),
            "config.json: rope_scaling.original_max_position_embeddings: expected a positive "
            "integer, got 256.5");
  rope = llama3_rope();
  rope["high_freq_factor"] = 1.0;
  EXPECT_EQ(error_of(with(llama_json(), "rope_scaling", rope)),
            "config.json: rope_scaling.high_freq_factor: 1 must be greater than "
            "'rope_scaling.low_freq_factor' (1)");
}

TEST(HfConfig, RopeThetaErrors) {
  EXPECT_EQ(error_of(with(llama_json(), "rope_theta", 0)),
            "config.json: rope_theta: expected a positive number, got 0");
  EXPECT_EQ(error_of(with(llama_json(), "rope_theta", "1e6")),
            "config.json: rope_theta: expected a positive number, got \"1e6\"");
  EXPECT_EQ(error_of(with(qwen3_json(), "rope_parameters",
                          json::parse(R"({"rope_type": "default", "rope_theta": -1})"))),
            "config.json: rope_parameters.rope_theta: expected a positive number, got -1");
  EXPECT_EQ(error_of(with(qwen3_json(), "rope_theta", 10000.0)),
            "config.json: fields 'rope_theta' (10000) and 'rope_parameters.rope_theta' (1000000) "
            "disagree");
}

TEST(HfConfig, RopeParametersErrors) {
  EXPECT_EQ(error_of(with(qwen3_json(), "rope_parameters", 1000000.0)),
            "config.json: rope_parameters: expected an object, got 1000000.0");
  EXPECT_EQ(error_of(with(qwen3_json(), "rope_parameters", json::parse(R"({
              "full_attention": {"rope_type": "default", "rope_theta": 1000000.0}})"))),
            "config.json: rope_parameters.full_attention: per-layer-type RoPE parameters are not "
            "supported");
  EXPECT_EQ(
      error_of(with(with(qwen3_json(), "rope_scaling", llama3_rope()), "rope_theta", 1000000.0)),
      "config.json: fields 'rope_parameters' and 'rope_scaling' describe different RoPE "
      "settings");
}

TEST(HfConfig, PartialRotaryIsAnError) {
  EXPECT_EQ(error_of(with(llama_json(), "partial_rotary_factor", 0.5)),
            "config.json: partial_rotary_factor: partial rotary embeddings (0.5) are not "
            "supported (supported: 1.0)");
  EXPECT_EQ(error_of(with(qwen3_json(), "rope_parameters", json::parse(R"({
              "rope_type": "default", "rope_theta": 1e6, "partial_rotary_factor": 0.25})"))),
            "config.json: rope_parameters.partial_rotary_factor: partial rotary embeddings (0.25) "
            "are not supported (supported: 1.0)");
  EXPECT_NO_THROW(parse(with(llama_json(), "partial_rotary_factor", 1.0)));
}

TEST(HfConfig, RmsNormEpsMustBePositive) {
  EXPECT_EQ(error_of(with(llama_json(), "rms_norm_eps", 0)),
            "config.json: rms_norm_eps: expected a positive number, got 0");
  EXPECT_EQ(error_of(with(llama_json(), "rms_norm_eps", "1e-5")),
            "config.json: rms_norm_eps: expected a positive number, got \"1e-5\"");
}

TEST(HfConfig, BooleanFlags) {
  for (const char* key : {"tie_word_embeddings", "attention_bias", "mlp_bias"}) {
    EXPECT_EQ(error_of(with(llama_json(), key, "true")),
              fmt::format("config.json: {}: expected true or false, got \"true\"", key));
  }
}

TEST(HfConfig, UnsupportedDtype) {
  EXPECT_EQ(error_of(with(llama_json(), "torch_dtype", "int8")),
            "config.json: torch_dtype: 'int8' is not supported (supported: bfloat16, float16, "
            "float32)");
  EXPECT_EQ(error_of(with(qwen3_json(), "dtype", 16)),
            "config.json: dtype: expected a string, got 16");
}

TEST(HfConfig, TokenIdErrors) {
  EXPECT_EQ(error_of(with(llama_json(), "eos_token_id", "2")),
            "config.json: eos_token_id: expected an integer, a list of integers or null, got "
            "\"2\"");
  EXPECT_EQ(error_of(with(llama_json(), "eos_token_id", json::parse("[1, \"x\"]"))),
            "config.json: eos_token_id[1]: expected a non-negative integer below 2^31, got \"x\"");
  EXPECT_EQ(error_of(with(llama_json(), "eos_token_id", -1)),
            "config.json: eos_token_id: expected a non-negative integer below 2^31, got -1");
  EXPECT_EQ(error_of(with(llama_json(), "bos_token_id", json::parse("[1]"))),
            "config.json: bos_token_id: expected an integer or null, got [1]");
  EXPECT_EQ(error_of(with(llama_json(), "bos_token_id", -3)),
            "config.json: bos_token_id: expected a non-negative integer below 2^31, got -3");
}

TEST(HfConfig, QuantizationConfigMustBeAnObject) {
  EXPECT_EQ(error_of(with(llama_json(), "quantization_config", "fp8")),
            "config.json: quantization_config: expected an object, got \"fp8\"");
}

TEST(HfConfig, TopLevelMustBeAnObject) {
  EXPECT_EQ(error_of(json::parse("[1, 2]")),
            "config.json: expected a JSON object at the top level (got array)");
}

// --- Reading the file ---------------------------------------------------------------------------

void write_text(const std::filesystem::path& p, const std::string& text) {
  std::ofstream out(p, std::ios::binary);
  out << text;
}

TEST(HfConfig, LoadMissingFileNamesThePath) {
  TempDir dir;
  const std::string path = (dir.path() / "config.json").string();
  try {
    load_model_config(dir.path());
    FAIL() << "no error";
  } catch (const Error& e) {
    EXPECT_EQ(std::string(e.what()),
              path + ": not found (a model directory must hold the Hugging Face config.json)");
  }
}

TEST(HfConfig, LoadInvalidJsonNamesTheFileAndPosition) {
  TempDir dir;
  write_text(dir / "config.json", "{\n  \"model_type\": \"llama\",\n  \"hidden_size\": 25 6\n}\n");
  try {
    load_model_config(dir.path());
    FAIL() << "no error";
  } catch (const Error& e) {
    const std::string msg = e.what();
    // The stray "6" is the 21st character of line 3.
    EXPECT_EQ(msg, (dir.path() / "config.json").string() +
                       ": invalid JSON at line 3, column 21: syntax error while parsing object - "
                       "unexpected number literal; expected '}'");
  }
}

TEST(HfConfig, LoadTruncatedJsonNamesTheEnd) {
  TempDir dir;
  write_text(dir / "config.json", "{\"model_type\": \"llama\",\n");
  try {
    load_model_config(dir.path());
    FAIL() << "no error";
  } catch (const Error& e) {
    EXPECT_EQ(std::string(e.what()), (dir.path() / "config.json").string() +
                                         ": invalid JSON at line 2, column 1: syntax error while "
                                         "parsing object key - unexpected end of input; "
                                         "expected string literal");
  }
}

TEST(HfConfig, LoadErrorsNameTheFile) {
  TempDir dir;
  write_text(dir / "config.json", with(llama_json(), "model_type", "gemma2").dump());
  try {
    load_model_config(dir.path());
    FAIL() << "no error";
  } catch (const Error& e) {
    EXPECT_EQ(std::string(e.what()),
              (dir.path() / "config.json").string() +
                  ": model_type 'gemma2' is not supported (supported: llama, mistral, qwen2, "
                  "qwen3)");
  }
}

TEST(HfConfig, LoadWrittenConfigRoundTrips) {
  TempDir dir;
  write_text(dir / "config.json", qwen2_json().dump(2));
  const ModelConfig c = load_model_config(dir.path());
  EXPECT_EQ(c.model_type, "qwen2");
  EXPECT_TRUE(c.qkv_bias);
}

}  // namespace
}  // namespace fp8llm
