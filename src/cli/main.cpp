// The `fp8llm` program: parses the command line and runs one subcommand. User errors (bad flags,
// bad files) print one line and exit with code 2.
#include <cerrno>
#include <cstdio>
#include <cstring>
#include <exception>
#include <string>
#include <system_error>

#include "cli/commands.h"
#include "core/error.h"

int main(int argc, char** argv) {
  CLI::App app{"fp8llm: run Hugging Face LLM checkpoints with FP8 weights quantized on the fly"};
  app.require_subcommand(1);
  app.set_version_flag("--version", "fp8llm 0.1.0");
  fp8llm::cli::add_run_command(app);
  fp8llm::cli::add_chat_command(app);
  fp8llm::cli::add_generate_command(app);
  fp8llm::cli::add_tokenize_command(app);
  fp8llm::cli::add_inspect_command(app);
  fp8llm::cli::add_synth_command(app);
  fp8llm::cli::add_quantize_command(app);
  fp8llm::cli::add_export_command(app);
  fp8llm::cli::add_bench_command(app);
  fp8llm::cli::add_perplexity_command(app);
  fp8llm::cli::add_serve_command(app);
  try {
    if (argc > 1 && argv[1][0] != '-') {
      // Name an unknown command instead of CLI11's "A subcommand is required".
      std::string known;
      bool found = false;
      for (const CLI::App* sub : app.get_subcommands({})) {
        known += (known.empty() ? "" : ", ") + sub->get_name();
        found = found || sub->get_name() == argv[1];
      }
      if (!found) {
        std::fprintf(stderr, "error: unknown command '%s' (commands: %s)\n", argv[1], known.c_str());
        return 2;
      }
    }
    app.parse(argc, argv);
    // Results go to stdout through its buffer: a write that failed (a full disk, /dev/full) may
    // only show now, and a command whose output was lost has failed.
    if (std::fflush(stdout) != 0 || std::ferror(stdout)) {
      std::fprintf(stderr, "error: standard output: write failed: %s\n", std::strerror(errno));
      return 2;
    }
  } catch (const CLI::CallForHelp& e) {
    return app.exit(e);
  } catch (const CLI::CallForAllHelp& e) {
    return app.exit(e);
  } catch (const CLI::CallForVersion& e) {
    return app.exit(e);
  } catch (const CLI::ParseError& e) {
    std::fprintf(stderr, "error: %s (see --help)\n", e.what());
    return 2;
  } catch (const fp8llm::Error& e) {
    std::fprintf(stderr, "error: %s\n", e.what());
    return 2;
  } catch (const std::system_error& e) {
    // fmt::print throws this when a write to stdout fails (its buffer was full).
    if (std::ferror(stdout)) {
      std::fprintf(stderr, "error: standard output: write failed: %s\n",
                   e.code().message().c_str());
      return 2;
    }
    std::fprintf(stderr, "internal error: %s\n", e.what());
    return 1;
  } catch (const std::exception& e) {
    std::fprintf(stderr, "internal error: %s\n", e.what());
    return 1;
  }
  return 0;
}
