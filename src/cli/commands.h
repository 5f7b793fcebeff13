// Each subcommand of the `fp8llm` program lives in its own file and adds itself to the app here.
#pragma once

#include <CLI/CLI.hpp>

namespace fp8llm::cli {

void add_inspect_command(CLI::App& app);
void add_generate_command(CLI::App& app);
void add_synth_command(CLI::App& app);
void add_run_command(CLI::App& app);
void add_chat_command(CLI::App& app);
void add_tokenize_command(CLI::App& app);
void add_quantize_command(CLI::App& app);
void add_export_command(CLI::App& app);
void add_bench_command(CLI::App& app);
void add_perplexity_command(CLI::App& app);
void add_serve_command(CLI::App& app);

}  // namespace fp8llm::cli
