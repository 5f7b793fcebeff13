// Decides where a model's FP8 weights come from, in this order:
//
//   1. the checkpoint is already FP8 (a quantization_config): load it as it is; a different
//      --quantization request is ignored, with a warning naming both;
//   2. --quantization none: load the weights unquantized;
//   3. a registered pre-quantized copy of this checkpoint for the mode (registry.h): load that;
//   4. quantize on the fly while loading (the CPU backend always can);
//   5. --offline: quantize once into the cache directory, then load the cached copy.
//
// `auto` asks for this order with the mode left open: an FP8 checkpoint loads as stored; a BF16
// one loads a registered copy of either mode (fp8-block first), else is quantized to fp8-block
// (the finer scales lose less).
// A quantization config (`quantization_config`, quantization_request.h: a torchao
// Float8DynamicActivationFloat8WeightConfig, an fp8 or compressed-tensors config) names the mode
// instead of --quantization: with `auto` the config decides, and a --quantization that says
// otherwise is an Error naming both.
// The choice and its reason (with the config's mapping, when one is given) are logged in one line
// ("load: ...").
#pragma once

#include <filesystem>
#include <optional>
#include <string>

#include "fp8llm/modes.h"
#include "quant/fp8_scheme.h"

namespace fp8llm {

struct ResolveRequest {
  std::filesystem::path model_dir;
  Quantization quantization = Quantization::Auto;
  std::filesystem::path registry;   // empty: default_registry_path()
  bool offline = false;             // quantize into `cache_dir` instead of on the fly
  std::filesystem::path cache_dir;  // empty: $XDG_CACHE_HOME/fp8llm (default ~/.cache/fp8llm)
  std::string quantization_config;  // JSON text of a requested config; empty: none
};

enum class LoadSource { AsStored, Unquantized, Registered, OnTheFly, Cached };

struct Resolution {
  LoadSource source;
  std::filesystem::path model_dir;  // the directory to load
  std::optional<Fp8Scheme> scheme;  // quantize on the fly with this (OnTheFly only)
  std::string reason;               // the line logged
};

Resolution resolve_load(const ResolveRequest& request);

}  // namespace fp8llm
