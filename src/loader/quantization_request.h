// A quantization config handed to fp8llm as a request (`--quantization-config JSON|@file`,
// LoadOptions::quantization_config), read into the FP8 scheme it asks for. The forms read are the
// ones users of other engines already have at hand:
//
//   torchao, as `config_to_dict` writes it (vLLM `hf_overrides`, transformers TorchAoConfig):
//     {"_type": "Float8DynamicActivationFloat8WeightConfig", "_version": 2, "_data": {
//        "activation_dtype": {"_type": "torch.dtype", "_data": "float8_e4m3fn"}, "weight_dtype":
//        ..., "granularity": [{"_type": "PerRow", "_version": 1, "_data": {"dim": -1}}, <the
//        same>], ...}}
//       granularity PerRow or [PerRow, PerRow]                               -> fp8-row
//       granularity [PerBlock([1, 128]), PerBlock([128, 128])] (act, weight) -> fp8-block
//     bare, as {"default": <config>} (the quant_type wrapper), as a quantization_config
//     {"quant_method": "torchao", "quant_type": {"default": <config>}}, or as vLLM hf_overrides
//     {"quantization_config": {...}} / {"quantization_config_dict_json": "<config as a string>"};
//   fine-grained fp8: {"quant_method": "fp8", "weight_block_size": [128, 128]} -> fp8-block;
//   compressed-tensors FP8: one config group of 8-bit float weights, strategy "channel" with
//   dynamic
//     "token" input activations -> fp8-row; strategy "block" [128, 128] with dynamic "group" 128
//     input activations -> fp8-block.
//
// fp8llm's schemes are defined exactly (docs/FP8.md), so anything that would make the result
// differ from the scheme is an Error naming its JSON path: another config class, granularity
// (PerTensor, PerAxis, ...), dtype or block size, static activation scales, clamped activation
// amax, per-module configs, sparse packing, unquantized projections, and keys not known to be
// harmless. Kernel choices (mm_config, kernel_preference, set_inductor_config) are read past:
// fp8llm computes with its own kernels.
#pragma once

#include "fp8llm/modes.h"

#include <string>
#include <string_view>

#include "quant/fp8_scheme.h"

namespace fp8llm {

struct QuantizationRequest {
  Fp8Scheme scheme = Fp8Scheme::Block;
  // One phrase for the load line, e.g. "torchao Float8DynamicActivationFloat8WeightConfig,
  // granularity [PerRow, PerRow]".
  std::string description;
};

// Reads a quantization config from JSON text; `source` starts every error message.
QuantizationRequest parse_quantization_request(std::string_view json_text,
                                               const std::string& source = "quantization-config");

// Fp8Row | Fp8Block: the config's mode.
Quantization quantization_mode(const QuantizationRequest& request);

// The --quantization mode in effect when `request` comes with `quantization`: Auto (or the flag
// left out) takes the config's mode; the same mode is fine; anything else (None, the other mode)
// is an Error naming both.
Quantization quantization_with_request(Quantization quantization,
                                       const QuantizationRequest& request);

}  // namespace fp8llm
