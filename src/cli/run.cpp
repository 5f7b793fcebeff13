// `fp8llm run --model DIR --prompt TEXT`: one prompt in, generated text streamed out. `--chat`
// wraps the prompt in the model's chat template as a user message.
#include <memory>
#include <string>
#include <vector>

#include "cli/commands.h"
#include "cli/load_options.h"
#include "cli/text_session.h"
#include "core/error.h"
#include "engine/sampler.h"

namespace fp8llm::cli {
namespace {

struct Options {
  EngineFlags engine;
  SamplingFlags sampling;
  std::string prompt;
  bool chat = false;
  std::string system;
  std::vector<std::string> stop;
};

void run_run(const Options& o) {
  FP8LLM_CHECK(o.system.empty() || o.chat,
               "--system needs --chat (a system message is part of the chat template)");
  GenerationOptions gen = o.sampling.generation_options();
  gen.lora = default_lora(o.engine);
  Sampler{gen.sampling};  // reject bad sampling flags before the load
  TextSession session(o.engine.model_dir);
  std::vector<int32_t> prompt;
  if (o.chat) {
    nlohmann::ordered_json messages = nlohmann::ordered_json::array();
    if (!o.system.empty()) messages.push_back({{"role", "system"}, {"content", o.system}});
    messages.push_back({{"role", "user"}, {"content", o.prompt}});
    prompt = session.encode_chat(messages);
  } else {
    prompt = session.encode_text(o.prompt);
  }
  auto engine = load_engine(o.engine);
  const TextSession::Reply reply = session.generate(*engine, prompt, gen, o.stop, stdout);
  std::fputs("\n", stdout);
  std::fflush(stdout);
  if (!o.engine.quiet) print_generation_summary(prompt.size(), reply.result);
}

}  // namespace

void add_run_command(CLI::App& app) {
  auto opts = std::make_shared<Options>();
  auto* cmd = app.add_subcommand("run", "Generate text from a prompt, streamed as it is produced");
  add_engine_flags(*cmd, opts->engine);
  add_sampling_flags(*cmd, opts->sampling);
  cmd->add_option("--prompt,-p", opts->prompt, "The prompt text")->required();
  cmd->add_flag("--chat", opts->chat,
                "Apply the model's chat template (the prompt is a user turn)");
  cmd->add_option("--system", opts->system, "System message (with --chat)");
  cmd->add_option("--stop", opts->stop, "Stop when the output contains this text (repeatable)");
  cmd->callback([opts] { run_run(*opts); });
}

}  // namespace fp8llm::cli
