// Writes an FP8 copy of a BF16/F16/F32 checkpoint directory: the same LoadPlan and stream as a
// load, into a FileSink instead of memory. The result is a complete model directory that loads
// as it is (never quantized twice):
//
//   block -> the fine-grained "fp8" layout (`<weight>_scale_inv`, weight_block_size [128, 128]);
//   row   -> compressed-tensors float-quantized, channel-wise weights (`<weight>_scale` [N, 1]),
//            dynamic per-token activations, lm_head ignored.
//
// config.json gains the quantization_config; the tokenizer, generation and chat-template files
// are copied. The directory is built as `<out>.fp8llm-tmp-<pid>-<hex>` next to `out` and renamed
// into place only when complete; on any failure it is removed, so `out` is never half-written.
#pragma once

#include <nlohmann/json.hpp>

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
// to it (permissions 0777 & ~umask, like mkdir), which is renamed to `out_dir` when `fill` returns,
// and removed if it throws. `out_dir` must not exist (check_output_directory). A process killed
// meanwhile (kill -9) leaves the temporary directory; the next build of the same `out_dir` removes
// it, once the pid in its name no longer runs and no process holds its lock, and says so.
void build_directory_atomically(const std::filesystem::path& out_dir,
                                const std::function<void(const std::filesystem::path&)>& fill);

// Throws Error unless `out_dir` can be created: it must not exist, and its parent must be an
// existing, writable directory. Cheap, so that a command can refuse before doing any work.
void check_output_directory(const std::filesystem::path& out_dir);

// Writes a complete model directory at `out_dir` (atomically, as above): `write_weights` writes
// the weight files into the directory it is given; the companion files of `source_dir` are copied;
// config.json is `source_dir`'s with `quantization_config` set to the given object, or removed
// when it is null.
void write_model_directory(const std::filesystem::path& source_dir,
                           const std::filesystem::path& out_dir,
                           const nlohmann::json& quantization_config,
                           const std::function<void(const std::filesystem::path&)>& write_weights);

}  // namespace fp8llm
