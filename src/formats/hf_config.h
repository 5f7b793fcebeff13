// Hugging Face config.json -> one description of a Llama-family architecture.
//
// Supported model_type: llama, mistral, qwen2, qwen3. Both config spellings are read: legacy
// (`rope_theta`, `rope_scaling`, `torch_dtype`) and current (`rope_parameters`, `dtype`).
// Anything the engine would compute wrongly (another model_type, another RoPE type, a sliding
// window that is shorter than the context, hidden_act other than silu) is an Error that says what
// is supported.
//
// The file is read as transformers reads it: a field that is absent takes the default of that
// model_type's config class (e.g. Mistral's sliding_window 4096, Qwen3's head_dim 128), while the
// fields that fix the tensor shapes (hidden_size, intermediate_size, num_hidden_layers,
// num_attention_heads, vocab_size) must be present.
#pragma once

#include <nlohmann/json.hpp>

#include <filesystem>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace fp8llm {

enum class RopeType { Default, Llama3 };

struct RopeConfig {
  RopeType type = RopeType::Default;
  double theta = 10000.0;
  // llama3 scaling (rope_type "llama3") only:
  double factor = 1.0;
  double low_freq_factor = 1.0;
  double high_freq_factor = 4.0;
  int64_t original_max_position_embeddings = 8192;
};

struct ModelConfig {
  std::string model_type;    // "llama" | "mistral" | "qwen2" | "qwen3"
  std::string architecture;  // architectures[0], e.g. "LlamaForCausalLM"
  int64_t hidden_size = 0;
  int64_t intermediate_size = 0;
  int64_t num_layers = 0;
  int64_t num_heads = 0;
  int64_t num_kv_heads = 0;
  int64_t head_dim = 0;  // `head_dim`; if null, hidden_size / num_heads (absent: qwen3 128)
  int64_t vocab_size = 0;
  int64_t max_position_embeddings = 0;
  double rms_norm_eps = 1e-6;
  RopeConfig rope;
  bool tie_word_embeddings = false;
  // Biases, as transformers builds the modules: qwen2 always has q/k/v biases (never o);
  // llama and qwen3 `attention_bias` biases q, k, v and o; llama `mlp_bias` biases gate, up and
  // down. Mistral's modules have no biases whatever the config says.
  bool qkv_bias = false;
  bool o_bias = false;
  bool mlp_bias = false;
  bool qk_norm = false;  // qwen3: per-head RMSNorm on q and k before RoPE
  std::string dtype;     // "bfloat16", "float16", "float32" (dtype or torch_dtype); "" if unset
  std::optional<int64_t> bos_token_id;  // unset when null
  std::vector<int64_t> eos_token_ids;   // `eos_token_id` as an int or a list; empty when null
  // The raw `quantization_config` object if present (pre-quantized checkpoints).
  std::optional<nlohmann::json> quantization_config;
};

// `source` names the file in errors (e.g. "models/x/config.json").
ModelConfig parse_model_config(const nlohmann::json& config, const std::string& source);
// The text of a config.json (errors give the line and column of invalid JSON).
ModelConfig parse_model_config_text(std::string_view text, const std::string& source);
// Reads <model_dir>/config.json.
ModelConfig load_model_config(const std::filesystem::path& model_dir);

}  // namespace fp8llm
