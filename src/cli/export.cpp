// `fp8llm export --model DIR --quantization MODE --out DIR [--dequantize] [--device cpu|cuda]`:
// loads the model as every command does (all the engine flags), then writes the weights the engine
// holds as a complete model directory (src/engine/export_checkpoint.h): FP8 codes and scales as
// stored, or dequantized to BF16 with --dequantize.
#include <filesystem>
#include <memory>
#include <string>

#include "cli/commands.h"
#include "cli/format.h"
#include "cli/load_options.h"
#include "core/error.h"
#include "engine/export_checkpoint.h"
#include "loader/quantize_checkpoint.h"

namespace fp8llm::cli {
namespace {

struct Options {
  EngineFlags engine;
  std::string out_dir;
  bool dequantize = false;
  int64_t max_shard_bytes = static_cast<int64_t>(kDefaultMaxShardBytes);
};

void run_export(const Options& o) {
  // Refuse bad flags and a bad output directory before spending time on the load.
  FP8LLM_CHECK(o.max_shard_bytes > 0, "--max-shard-bytes must be positive (got {})",
               o.max_shard_bytes);
  check_output_directory(o.out_dir);
  const std::unique_ptr<Engine> engine = load_engine(o.engine);
  const ExportSummary s =
      export_checkpoint(*engine, o.engine.model_dir, o.out_dir,
                        {.form = o.dequantize ? StateDictForm::Dequantized : StateDictForm::Stored,
                         .max_shard_bytes = static_cast<uint64_t>(o.max_shard_bytes)});
  if (!o.engine.quiet) {
    log_status("exported {} ({}{}) to {}: {} tensors, {} in {} file(s), quantization_config: {}",
               o.engine.model_dir, to_string(engine->load_report().quantization),
               o.dequantize ? ", dequantized to bf16" : "", o.out_dir, s.tensors,
               human_bytes(s.bytes_written), s.files.size(), to_string(s.quantization));
  }
}

}  // namespace

void add_export_command(CLI::App& app) {
  auto opts = std::make_shared<Options>();
  auto* cmd = app.add_subcommand(
      "export",
      "Write the weights a loaded model holds (FP8 as stored, or dequantized) as a model "
      "directory");
  add_engine_flags(*cmd, opts->engine);
  cmd->add_option("--out,-o", opts->out_dir, "Output model directory (must not exist)")->required();
  cmd->add_flag(
      "--dequantize", opts->dequantize,
      "Write the FP8 projections dequantized to BF16 (no scales, no quantization_config)");
  cmd->add_option("--max-shard-bytes", opts->max_shard_bytes,
                  "Largest safetensors shard (a larger single tensor gets a shard of its own)")
      ->capture_default_str();
  cmd->callback([opts] { run_export(*opts); });
}

}  // namespace fp8llm::cli
