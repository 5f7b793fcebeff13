// Flags shared by the subcommands that load a model and generate (generate, run, chat, bench):
// where the model is, how to quantize it, and how to sample.
#pragma once

#include <fmt/format.h>
#include <CLI/CLI.hpp>

#include <memory>
#include <string>
#include <vector>

#include "fp8llm/engine.h"

namespace fp8llm::cli {

struct EngineFlags {
  std::string model_dir;
  std::string quantization = "auto";
  bool quantization_given = false;  // --quantization was on the command line
  // JSON text, or @path of a file holding it (src/loader/quantization_request.h).
  std::string quantization_config;
  std::string device = "cpu";
  std::string fp8_gemm = "tensor-core";
  int64_t max_context = 4096;
  // The batching engine and its paged KV cache (LoadOptions says what each does).
  std::string kv_cache_dtype = "auto";
  double kv_memory_gib = 0;
  int64_t block_size = 16;
  bool no_prefix_caching = false;
  int64_t max_batch_tokens = 0;
  int64_t max_seqs = 256;
  bool max_seqs_given = false;  // --max-seqs was on the command line
  bool no_cuda_graphs = false;
  int tensor_parallel = 1;
  // LoRA adapters: PATH (applied to every request) or NAME=PATH (requests pick them by name).
  std::vector<std::string> loras;
  int max_loras = 0;          // 0: as many as --lora gives
  int64_t max_lora_rank = 0;  // 0: the largest r of the --lora adapters, at least 16
  std::string registry;
  bool offline = false;
  bool quiet = false;
};

struct SamplingFlags {
  int max_tokens = 64;
  float temperature = 0.0f;
  int top_k = 0;
  float top_p = 1.0f;
  float min_p = 0.0f;
  float repetition_penalty = 1.0f;
  uint64_t seed = 0;
  std::vector<int32_t> stop_ids;

  GenerationOptions generation_options() const;
};

// Range checks for numeric flags. (CLI11's PositiveNumber and NonNegativeNumber print their bound
// as DBL_MAX in full: "not in range 0.000000 to 179769313486231570814527...".)
CLI::Validator positive_number();      // "must be positive (got X)"
CLI::Validator non_negative_number();  // "must be zero or more (got X)"

void add_engine_flags(CLI::App& cmd, EngineFlags& flags);
void add_sampling_flags(CLI::App& cmd, SamplingFlags& flags);

// The LoadOptions the flags ask for (the quantization config read and checked, the mode settled),
// without the progress display.
LoadOptions engine_load_options(const EngineFlags& flags);

// Loads the model with a progress line on stderr and a one-line summary after, and adds the
// --lora adapters.
std::unique_ptr<Engine> load_engine(const EngineFlags& flags);

// The adapter every request of a one-prompt command uses: "default" for one --lora PATH given
// without a name, else none.
std::string default_lora(const EngineFlags& flags);

// Status lines go to stderr so that stdout carries only results.
template <typename... Args>
void log_status(fmt::format_string<Args...> f, Args&&... args) {
  fmt::print(stderr, "{}\n", fmt::format(f, std::forward<Args>(args)...));
}

void print_generation_summary(size_t prompt_tokens, const GenerationResult& r);

}  // namespace fp8llm::cli
