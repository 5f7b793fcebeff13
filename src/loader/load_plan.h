// The LoadPlan: every tensor to load — name, role, shape, where its bytes are, and whether it is
// quantized on the way in — built from config.json and the safetensors headers alone, before any
// weight byte is read. Building it validates the checkpoint against the architecture, so a
// missing, extra or misshapen tensor fails here, with its name, before work starts.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "formats/checkpoint.h"
#include "formats/hf_config.h"
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
};

struct LoadPlan {
  ModelConfig config;
  std::optional<Fp8Scheme> scheme;     // unset: --quantization none
  std::vector<PlannedTensor> tensors;  // in file order (the order to read them)
  uint64_t source_bytes = 0;           // bytes read from the checkpoint
  uint64_t resident_bytes = 0;         // bytes held after loading
  uint64_t largest_tensor_bytes = 0;   // the largest single source tensor (staging size)
  std::vector<std::string> ignored;    // checkpoint tensors deliberately not loaded

  const PlannedTensor* find(const std::string& name) const;
};

// Validates `checkpoint` against `config` and plans the load. `scheme` unset keeps the decoder
// projections in their checkpoint dtype.
LoadPlan build_load_plan(const Checkpoint& checkpoint, const ModelConfig& config,
                         std::optional<Fp8Scheme> scheme);

// "fp8-row" | "fp8-block" | "none" -> scheme (unset for none); anything else is an Error.
std::optional<Fp8Scheme> parse_quantization_flag(const std::string& text);

}  // namespace fp8llm
