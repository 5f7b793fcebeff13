// The `quantization_config` of a pre-quantized Hugging Face checkpoint, read into what the loader
// needs: which FP8 scheme the stored weights follow and where their scales are. Two layouts are
// read (and written by `fp8llm quantize`):
//
//   fine-grained "fp8" (quant_method "fp8", fmt "e4m3", weight_block_size [128, 128]):
//     `<weight>` F8_E4M3 [N, K] + `<weight>_scale_inv` [ceil(N/128), ceil(K/128)] -> Block.
//   compressed-tensors (quant_method "compressed-tensors", format "float-quantized" or
//   "naive-quantized", one config group of 8-bit symmetric float weights):
//     strategy "channel": `<weight>` F8_E4M3 + `<weight>_scale` [N, 1] -> Row;
//     strategy "tensor":  `<weight>` F8_E4M3 + `<weight>_scale` [] or [1] -> Row (the one scale
//                         repeated for every row);
//     strategy "block" (block_structure [128, 128]): `<weight>_scale` as fine-grained -> Block.
//
// Activations always use the engine's dynamic scales (per token, or per token per 128 columns);
// static activation scales (`input_scale`) are read past, with one log line saying so. Any other
// quant_method (gptq, awq, bitsandbytes, mxfp4, ...) is an Error that names it and what is read.
#pragma once

#include <nlohmann/json.hpp>

#include <string>
#include <string_view>
#include <vector>

#include "quant/fp8_scheme.h"

namespace fp8llm {

enum class PrequantFormat { FineGrainedFp8, CompressedTensors };

struct PrequantConfig {
  PrequantFormat format = PrequantFormat::FineGrainedFp8;
  Fp8Scheme scheme = Fp8Scheme::Block;
  // compressed-tensors strategy "tensor": one scale per weight, expanded to one per row.
  bool per_tensor_weight_scale = false;
  // The checkpoint carries static activation scales (`input_scale`); the engine does not use them.
  bool static_activation_scales = false;
  // Modules left unquantized (compressed-tensors `ignore`, fine-grained
  // `modules_to_not_convert`): names or "re:<regex>" patterns.
  std::vector<std::string> ignore;
  // One phrase for logs: "fine-grained fp8, block 128x128", "compressed-tensors fp8, per channel".
  std::string description;

  // Name of the scale tensor stored with `weight_name`.
  std::string scale_name(std::string_view weight_name) const;
};

// Reads a config.json `quantization_config`; `source` names the file in errors.
PrequantConfig parse_quantization_config(const nlohmann::json& qc, const std::string& source);

// The `quantization_config` fp8llm writes for a checkpoint quantized with `scheme`: block ->
// fine-grained "fp8"; row -> compressed-tensors, channel-wise weights, dynamic per-token
// activations, lm_head ignored.
nlohmann::json quantization_config_for(Fp8Scheme scheme);

}  // namespace fp8llm
