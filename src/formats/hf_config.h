// Hugging Face config.json -> one description of a Llama-family architecture.
//
// Supported model_type: llama, mistral, qwen2, qwen3. Both config spellings are read: legacy
// (`rope_theta`, `rope_scaling`, `torch_dtype`) and current (`rope_parameters`, `dtype`).
// Anything the engine would compute wrongly (another model_type, another RoPE type, a sliding
// window that is shorter than the context, hidden_act other than silu) is an Error that says what
// is supported.
#pragma once

#include <nlohmann/json.hpp>

#include <filesystem>
#include <optional>
#include <string>
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
  int64_t head_dim = 0;  // explicit `head_dim`, else hidden_size / num_heads
  int64_t vocab_size = 0;
  int64_t max_position_embeddings = 0;
  double rms_norm_eps = 1e-6;
  RopeConfig rope;
  bool tie_word_embeddings = false;
  bool qkv_bias = false;     // qwen2 always; llama/mistral when attention_bias
  bool o_bias = false;       // llama/mistral attention_bias also biases o_proj
  bool mlp_bias = false;     // llama mlp_bias
  bool qk_norm = false;      // qwen3: per-head RMSNorm on q and k before RoPE
  std::string dtype;         // "bfloat16", "float16", "float32" (torch_dtype or dtype)
  std::optional<int64_t> bos_token_id;
  std::vector<int64_t> eos_token_ids;
  // The raw `quantization_config` object if present (pre-quantized checkpoints).
  std::optional<nlohmann::json> quantization_config;
};

// `source` names the file in errors (e.g. "models/x/config.json").
ModelConfig parse_model_config(const nlohmann::json& config, const std::string& source);
// Reads <model_dir>/config.json.
ModelConfig load_model_config(const std::filesystem::path& model_dir);

}  // namespace fp8llm
