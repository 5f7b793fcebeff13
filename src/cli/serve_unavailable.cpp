// `fp8llm serve` in a build without the HTTP server (cpp-httplib was not found when it was
// configured): the command exists, so that asking for it says why it cannot run.
#include "cli/commands.h"
#include "core/error.h"

namespace fp8llm::cli {

void add_serve_command(CLI::App& app) {
  auto* cmd = app.add_subcommand("serve", "OpenAI-compatible HTTP server (not in this build)");
  cmd->allow_extras();
  cmd->callback([] {
    fail(
        "serve: this build has no HTTP server (cpp-httplib was not found; install "
        "libcpp-httplib-dev and pkg-config, then configure again)");
  });
}

}  // namespace fp8llm::cli
