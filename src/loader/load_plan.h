// The LoadPlan: every tensor to load — name, role, shape, where its bytes are, and whether it is
// quantized on the way in — built from config.json and the safetensors headers alone, before any
// weight byte is read. Building it validates the checkpoint against the architecture, so a
// missing, extra or misshapen tensor fails here, with its name, before work starts.
//
// A pre-quantized checkpoint (config.json has a quantization_config; see quantization_config.h)
// is planned as it is: its F8_E4M3 projections and their scale tensors are copied, never
// quantized again.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "formats/checkpoint.h"
#include "formats/hf_config.h"
#include "fp8llm/modes.h"
#include "loader/quantization_config.h"
#include "model/weights.h"
#include "quant/fp8_scheme.h"

namespace fp8llm {

struct PlannedTensor {
  WeightSpec spec;
  CheckpointTensor source;
  // Set when this tensor is quantized to FP8 while it streams in.
  std::optional<Fp8Scheme> quantize;
  // Bytes it occupies once loaded (FP8 weight + scales, or the source bytes).
  uint64_t resident_bytes = 0;
  // Set when the checkpoint already holds this projection in FP8 with this scheme: the tensor is
  // either the F8_E4M3 weight (`spec` is the projection's) or, with `is_weight_scale`, its scale.
  std::optional<Fp8Scheme> prequantized;
  // The scale of a pre-quantized projection: `spec` names the scale tensor, carries the
  // projection's role and layer, and its shape is the F32 scale shape the weights hold
  // (weight_scale_shape); the source may differ (BF16/F16 values, one per-tensor scale), in which
  // case the sink converts it.
  bool is_weight_scale = false;
};

struct LoadPlan {
  ModelConfig config;
  std::optional<Fp8Scheme> scheme;         // unset: --quantization none
  std::vector<PlannedTensor> tensors;      // in file order (the order to read them)
  uint64_t source_bytes = 0;               // bytes read from the checkpoint
  uint64_t resident_bytes = 0;             // bytes held after loading
  uint64_t largest_tensor_bytes = 0;       // the largest single source tensor (staging size)
  std::vector<std::string> ignored;        // checkpoint tensors deliberately not loaded
  std::optional<PrequantConfig> prequant;  // set: the checkpoint is already FP8

  const PlannedTensor* find(const std::string& name) const;
};

// Validates `checkpoint` against `config` and plans the load. `scheme` unset keeps the decoder
// projections in their checkpoint dtype. A pre-quantized checkpoint is loaded as it is: `scheme`
// is not applied to it (plan.scheme is the checkpoint's own; the caller warns about a mismatch).
LoadPlan build_load_plan(const Checkpoint& checkpoint, const ModelConfig& config,
                         std::optional<Fp8Scheme> scheme);

// A config.json with a quantization_config over a checkpoint without one F8_E4M3 projection
// contradicts itself (loading it "as stored" would run it unquantized): an Error naming
// config.json and a projection's dtype.
void check_prequantized_weights(const Checkpoint& checkpoint, const PrequantConfig& prequant);

// The scheme of a settled mode (unset for None); Auto is an Error (resolve_load settles it).
std::optional<Fp8Scheme> scheme_of(Quantization q);
// The mode of a scheme (None for unset).
Quantization quantization_of(std::optional<Fp8Scheme> scheme);

}  // namespace fp8llm
