// Feeds arbitrary bytes to the two readers of quantization configs: --quantization-config (a
// torchao, fp8 or compressed-tensors config, bare or as vLLM hf_overrides) and a checkpoint's
// config.json quantization_config. Only fp8llm::Error may be thrown; anything else is a bug.
#include <cstddef>
#include <cstdint>
#include <string_view>

#include <nlohmann/json.hpp>

#include "core/error.h"
#include "loader/quantization_config.h"
#include "loader/quantization_request.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using namespace fp8llm;
  const std::string_view text(reinterpret_cast<const char*>(data), size);
  try {
    const QuantizationRequest r = parse_quantization_request(text, "fuzz");
    quantization_mode(r);
    quantization_with_request(Quantization::Auto, r);
  } catch (const Error&) {
  }
  nlohmann::json j;
  try {
    j = nlohmann::json::parse(text);
  } catch (const nlohmann::json::exception&) {
    return 0;
  }
  try {
    const PrequantConfig c = parse_quantization_config(j, "config.json");
    c.scale_name("model.layers.0.mlp.up_proj.weight");
  } catch (const Error&) {
  }
  return 0;
}
