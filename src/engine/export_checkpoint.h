// Writes a loaded Engine's state dict (include/fp8llm/state_dict.h) as a complete Hugging Face
// model directory, the way `fp8llm quantize` writes one (src/loader/quantize_checkpoint.h):
// sharded safetensors (with an index when there is more than one shard), the source's tokenizer,
// generation and chat-template files, and its config.json with the quantization_config of what
// was written. The directory is built under a temporary name and renamed into place when complete;
// a failure leaves nothing behind. One tensor at a time is held in memory.
//
//   Stored form, FP8 weights: block -> fine-grained "fp8" (`<weight>_scale_inv`); row ->
//       compressed-tensors, per channel (`<weight>_scale`). Projections the engine holds
//       unquantized are listed in modules_to_not_convert / ignore.
//   Dequantized form, or an engine without FP8 weights: no quantization_config.
#pragma once

#include <nlohmann/json.hpp>

#include <cstdint>
#include <filesystem>
#include <string>
#include <vector>

#include "fp8llm/engine.h"
#include "loader/quantize_checkpoint.h"

namespace fp8llm {

struct ExportOptions {
  StateDictForm form = StateDictForm::Stored;
  uint64_t max_shard_bytes = kDefaultMaxShardBytes;
};

struct ExportSummary {
  uint64_t tensors = 0;
  uint64_t bytes_written = 0;
  std::vector<std::string> files;                  // weight files written
  Quantization quantization = Quantization::None;  // what config.json says
};

// `source_dir` is the model directory the engine was loaded from (config.json and the companion
// files come from there); `out_dir` must not exist.
ExportSummary export_checkpoint(const Engine& engine, const std::filesystem::path& source_dir,
                                const std::filesystem::path& out_dir,
                                const ExportOptions& options = {});

// The quantization_config that describes `entries` (a state dict of `engine` in `form`), or null
// when they hold no FP8 weights.
nlohmann::json export_quantization_config(const Engine& engine,
                                          const std::vector<StateDictEntry>& entries,
                                          StateDictForm form);

}  // namespace fp8llm
