// LoRA adapters in the PEFT layout: adapter_config.json (r, lora_alpha, target_modules,
// use_rslora, layers_to_transform) and the tensors of adapter_model.safetensors, named
// `base_model.model.model.layers.L.self_attn.q_proj.lora_A.weight` [r, in] and `...lora_B.weight`
// [out, r] (the `base_model.model.` prefix and an adapter name before `.weight`, as in an in-memory
// PEFT state dict, are optional). Anything the engine would apply wrongly is an error naming the
// file, field or tensor: DoRA, fan_in_fan_out, biases, modules_to_save, per-module rank or alpha
// patterns, targets outside q/k/v/o/gate/up/down, shapes that do not match the model, missing or
// unexpected tensors, non-finite values.
#pragma once

#include <filesystem>
#include <string>
#include <utility>
#include <vector>

#include "core/tensor.h"
#include "formats/hf_config.h"
#include "model/lora_weights.h"

namespace fp8llm {

// PEFT's names: the module of a projection ("q_proj"), and the saved name of one of its factors
// ("base_model.model.model.layers.3.self_attn.q_proj.lora_A.weight"; factor 'A' or 'B').
const char* peft_module_name(LinearKind kind);
std::string peft_factor_name(int64_t layer, LinearKind kind, char factor);

// Where each targeted module's factors are among `tensors`, with every check parse_peft_adapter
// makes except reading the values: for tensors in a device's memory, checked there.
struct PeftModule {
  static constexpr size_t kNone = static_cast<size_t>(-1);
  int64_t layer = 0;
  LinearKind kind = LinearKind::Q;
  size_t a = kNone, b = kNone;  // indices into the tensors
};
struct PeftLayout {
  int64_t rank = 0;
  float scale = 0;
  std::vector<PeftModule> modules;  // in (layer, kind) order, as parse_peft_adapter's
};
PeftLayout peft_layout(const ModelConfig& config, const std::string& config_json,
                       const std::vector<std::pair<std::string, TensorView>>& tensors,
                       const std::string& source);

// From the text of adapter_config.json and the named tensors; `source` names them in errors.
// Factors in F32 or F16 are rounded to bf16 (round to nearest even).
LoraAdapter parse_peft_adapter(const ModelConfig& config, const std::string& config_json,
                               const std::vector<std::pair<std::string, TensorView>>& tensors,
                               const std::string& source);

// From a PEFT adapter directory (adapter_config.json + adapter_model.safetensors).
LoraAdapter load_peft_adapter(const ModelConfig& config, const std::filesystem::path& dir);

}  // namespace fp8llm
