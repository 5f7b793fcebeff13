// torchao's Float8DynamicActivationFloat8WeightConfig as users hand it to fp8llm
// (--quantization-config, LoadOptions::quantization_config): the JSON config_to_dict writes.
#pragma once

#include <nlohmann/json.hpp>

#include <string>

namespace fp8llm::test {

// config_to_dict(Float8DynamicActivationFloat8WeightConfig(granularity=PerRow())) as torchao 0.16
// and later write it: __post_init__ has made the granularity the [activation, weight] pair and
// filled mm_config; "version" is lifted out of _data into _version.
inline const std::string kTorchaoPerRow = R"({"_type": "Float8DynamicActivationFloat8WeightConfig",
 "_version": 2, "_data": {
  "activation_dtype": {"_type": "torch.dtype", "_data": "float8_e4m3fn"},
  "weight_dtype": {"_type": "torch.dtype", "_data": "float8_e4m3fn"},
  "granularity": [{"_type": "PerRow", "_version": 1, "_data": {"dim": -1}},
                  {"_type": "PerRow", "_version": 1, "_data": {"dim": -1}}],
  "packing_format": {"_type": "Float8PackingFormat", "_data": "PLAIN"},
  "mm_config": {"_type": "Float8MMConfig", "_version": 1,
                "_data": {"emulate": false, "use_fast_accum": true, "pad_inner_dim": false}},
  "activation_value_lb": null, "activation_value_ub": null,
  "kernel_preference": {"_type": "KernelPreference", "_data": "AUTO"},
  "set_inductor_config": true, "alg_id": 0}})";

inline nlohmann::json torchao_per_block_granularity(int rows, int cols) {
  return {{"_type", "PerBlock"}, {"_version", 1}, {"_data", {{"block_size", {rows, cols}}}}};
}

// The same config with granularity=[PerBlock([1, 128]), PerBlock([128, 128])] (activation groups
// of 128, weight tiles of 128x128) and use_fast_accum off.
inline nlohmann::json torchao_per_block() {
  nlohmann::json j = nlohmann::json::parse(kTorchaoPerRow);
  j["_data"]["granularity"] = {torchao_per_block_granularity(1, 128),
                               torchao_per_block_granularity(128, 128)};
  j["_data"]["mm_config"]["_data"]["use_fast_accum"] = false;
  return j;
}

// `config` as vLLM users pass it: hf_overrides={"quantization_config": {"quant_method":
// "torchao", "quant_type": {"default": config}}}.
inline nlohmann::json as_vllm_hf_overrides(const nlohmann::json& config) {
  return {{"quantization_config",
           {{"quant_method", "torchao"}, {"quant_type", {{"default", config}}}}}};
}

}  // namespace fp8llm::test
