// `fp8llm inspect MODEL_DIR`: what a checkpoint holds and what quantizing it would do.
#include <memory>
#include <string>

#include "cli/commands.h"
#include "core/error.h"

namespace fp8llm::cli {

void add_inspect_command(CLI::App& app) {
  struct Options {
    std::string model_dir;
    std::string quantization = "fp8-block";
  };
  auto opts = std::make_shared<Options>();
  auto* cmd = app.add_subcommand("inspect", "Show a checkpoint's architecture, tensors and FP8 plan");
  cmd->add_option("model_dir", opts->model_dir, "Model directory (config.json + *.safetensors)")
      ->required();
  cmd->add_option("--quantization,-q", opts->quantization, "fp8-row | fp8-block | none")
      ->check(CLI::IsMember({"fp8-row", "fp8-block", "none"}));
  cmd->callback([opts] { fail("{}: inspect is not implemented yet", opts->model_dir); });
}

}  // namespace fp8llm::cli
