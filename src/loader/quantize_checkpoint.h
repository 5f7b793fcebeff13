// Writes an FP8 copy of a BF16/F16/F32 checkpoint directory: the same LoadPlan and stream as a
// load, into a FileSink instead of memory. The result is a complete model directory that loads
// as it is (never quantized twice):
//
//   block -> the fine-grained "fp8" layout (`<weight>_scale_inv`, weight_block_size [128, 128]);
//   row   -> compressed-tensors float-quantized, channel-wise weights (`<weight>_scale` [N, 1]),
//            dynamic per-token activations, lm_head ignored.
//
// config.json gains the quantization_config; the tokenizer, generation and chat-template files
// are copied. The directory is built as `<out>.tmp-XXXXXX` next to `out` and renamed into place
// only when complete; on any failure it is removed, so `out` is never half-written.
#pragma once

#include <cstdint>
#include <filesystem>
#include <functional>
#include <string>
#include <vector>

#include "loader/weight_stream.h"
#include "quant/fp8_scheme.h"

namespace fp8llm {

inline constexpr uint64_t kDefaultMaxShardBytes = 5ull << 30;

struct QuantizeSummary {
  uint64_t bytes_read = 0;
  uint64_t bytes_written = 0;
  uint64_t quantized_tensors = 0;
  std::vector<std::string> files;  // weight files written
};

QuantizeSummary quantize_checkpoint(const std::filesystem::path& model_dir, Fp8Scheme scheme,
                                    const std::filesystem::path& out_dir,
                                    uint64_t max_shard_bytes = kDefaultMaxShardBytes,
                                    const StreamProgress& progress = {});

// The files besides weights and config.json that a model directory's users read (tokenizer,
// generation config, chat template); copied into every directory fp8llm writes.
std::vector<std::filesystem::path> companion_files(const std::filesystem::path& model_dir);

// Builds a directory at `out_dir` atomically: `fill` writes into a fresh temporary directory next
// to it, which is renamed to `out_dir` when `fill` returns, and removed if it throws. `out_dir`
// must not exist.
void build_directory_atomically(const std::filesystem::path& out_dir,
                                const std::function<void(const std::filesystem::path&)>& fill);

}  // namespace fp8llm
