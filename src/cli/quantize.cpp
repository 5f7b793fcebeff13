// `fp8llm quantize --model DIR --mode block|row --out DIR [--register]`: writes an FP8 copy of a
// BF16 checkpoint as a complete model directory (see src/loader/quantize_checkpoint.h), which
// loads as it is. --register records it in the registry of pre-quantized copies, so that loading
// the original with that mode loads the copy instead of quantizing again.
#include <filesystem>
#include <memory>
#include <string>

#include "cli/commands.h"
#include "cli/format.h"
#include "cli/load_options.h"
#include "core/error.h"
#include "loader/quantize_checkpoint.h"
#include "loader/registry.h"

namespace fp8llm::cli {
namespace {

struct Options {
  std::string model_dir;
  std::string mode;
  std::string out_dir;
  bool register_copy = false;
  std::string registry;
  uint64_t max_shard_bytes = kDefaultMaxShardBytes;
};

void run_quantize(const Options& o) {
  const std::optional<Fp8Scheme> scheme = parse_fp8_scheme(o.mode);
  FP8LLM_CHECK(scheme.has_value(), "--mode '{}' is not one of: block, row", o.mode);
  const std::filesystem::path registry =
      o.registry.empty() ? default_registry_path() : std::filesystem::path(o.registry);
  const QuantizeSummary s = quantize_checkpoint(o.model_dir, *scheme, o.out_dir, o.max_shard_bytes);
  log_status("quantized {} to fp8-{} in {}: read {}, wrote {} in {} file(s), {} tensors quantized",
             o.model_dir, fp8_scheme_name(*scheme), o.out_dir, human_bytes(s.bytes_read),
             human_bytes(s.bytes_written), s.files.size(), s.quantized_tensors);
  if (o.register_copy) {
    const std::string mode = fmt::format("fp8-{}", fp8_scheme_name(*scheme));
    register_copy(registry, o.model_dir, mode, o.out_dir);
    log_status("registered {} as the {} copy of {} in {}", o.out_dir, mode, o.model_dir,
               registry.string());
  }
}

}  // namespace

void add_quantize_command(CLI::App& app) {
  auto opts = std::make_shared<Options>();
  auto* cmd = app.add_subcommand("quantize", "Write an FP8 copy of a BF16 checkpoint directory");
  cmd->add_option("--model,-m", opts->model_dir, "BF16 model directory")->required();
  cmd->add_option(
         "--mode", opts->mode,
         "block (fine-grained fp8, 128x128 tiles) or row (compressed-tensors, per channel)")
      ->required();
  cmd->add_option("--out,-o", opts->out_dir, "Output model directory (must not exist)")->required();
  cmd->add_flag("--register", opts->register_copy,
                "Record the copy in the registry, to be loaded in place of the original");
  cmd->add_option("--registry", opts->registry,
                  "Registry file (default: $FP8LLM_REGISTRY or "
                  "$XDG_CONFIG_HOME/fp8llm/registry.json)");
  cmd->add_option("--max-shard-bytes", opts->max_shard_bytes, "Largest safetensors shard")
      ->capture_default_str()
      ->check(positive_number());
  cmd->callback([opts] { run_quantize(*opts); });
}

}  // namespace fp8llm::cli
