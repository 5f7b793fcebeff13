// `fp8llm chat --model DIR`: an interactive conversation through the model's chat template. The
// history is kept across turns; Ctrl-D (end of input) leaves, `/clear` starts over.
#include <unistd.h>

#include <iostream>
#include <memory>
#include <string>

#include "cli/commands.h"
#include "cli/load_options.h"
#include "cli/text_session.h"
#include "engine/sampler.h"

namespace fp8llm::cli {
namespace {

struct Options {
  EngineFlags engine;
  SamplingFlags sampling;
  std::string system;
};

void run_chat(const Options& o) {
  GenerationOptions gen = o.sampling.generation_options();
  gen.lora = default_lora(o.engine);
  Sampler{gen.sampling};
  TextSession session(o.engine.model_dir);
  session.render_chat(nlohmann::ordered_json::array({{{"role", "user"}, {"content", "hi"}}}));
  auto engine = load_engine(o.engine);
  const bool interactive = ::isatty(fileno(stdin));
  if (interactive) log_status("chat: type a message; /clear starts over; Ctrl-D leaves");

  nlohmann::ordered_json history = nlohmann::ordered_json::array();
  auto reset = [&] {
    history = nlohmann::ordered_json::array();
    if (!o.system.empty()) history.push_back({{"role", "system"}, {"content", o.system}});
  };
  reset();
  std::string line;
  for (;;) {
    if (interactive) fmt::print(stderr, "> ");
    if (!std::getline(std::cin, line)) break;
    if (line.empty()) continue;
    if (line == "/clear") {
      reset();
      continue;
    }
    history.push_back({{"role", "user"}, {"content", line}});
    const std::vector<int32_t> prompt = session.encode_chat(history);
    const TextSession::Reply reply = session.generate(*engine, prompt, gen, {}, stdout);
    std::fputs("\n", stdout);
    std::fflush(stdout);
    history.push_back({{"role", "assistant"}, {"content", reply.text}});
    if (!o.engine.quiet) print_generation_summary(prompt.size(), reply.result);
  }
  if (interactive) fmt::print(stderr, "\n");
}

}  // namespace

void add_chat_command(CLI::App& app) {
  auto opts = std::make_shared<Options>();
  auto* cmd = app.add_subcommand("chat", "Interactive chat (history kept; Ctrl-D to leave)");
  add_engine_flags(*cmd, opts->engine);
  add_sampling_flags(*cmd, opts->sampling);
  cmd->add_option("--system", opts->system, "System message");
  cmd->callback([opts] { run_chat(*opts); });
}

}  // namespace fp8llm::cli
