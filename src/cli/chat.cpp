// `fp8llm chat --model DIR`: an interactive conversation through the model's chat template. The
// history is kept across turns, dropping the oldest exchanges when it outgrows the context;
// `/quit`, `/exit` or Ctrl-D (end of input) leaves, `/clear` starts over.
#include <unistd.h>

#include <algorithm>
#include <iostream>
#include <memory>
#include <string>
#include <utility>
#include <vector>

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

// Drops the oldest exchanges (never the system message, never the new user message) until the
// prompt leaves `reply_room` positions of the context for the reply; returns the prompt and how
// many messages went.
std::pair<std::vector<int32_t>, size_t> fit_history(const TextSession& session,
                                                    nlohmann::ordered_json& history,
                                                    int64_t context, int64_t reply_room) {
  std::vector<int32_t> prompt = session.encode_chat(history);
  size_t dropped = 0;
  const size_t first = !history.empty() && history[0]["role"] == "system" ? 1 : 0;
  while (static_cast<int64_t>(prompt.size()) + reply_room > context && history.size() > first + 1) {
    // A user message and the reply to it go together, so roles keep alternating.
    const size_t n =
        history.size() > first + 2 && history[first + 1]["role"] == "assistant" ? 2 : 1;
    history.erase(history.begin() + static_cast<std::ptrdiff_t>(first),
                  history.begin() + static_cast<std::ptrdiff_t>(first + n));
    dropped += n;
    prompt = session.encode_chat(history);
  }
  return {std::move(prompt), dropped};
}

void run_chat(const Options& o) {
  GenerationOptions gen = o.sampling.generation_options();
  gen.lora = default_lora(o.engine);
  Sampler{gen.sampling};
  TextSession session(o.engine.model_dir);
  session.render_chat(nlohmann::ordered_json::array({{{"role", "user"}, {"content", "hi"}}}));
  auto engine = load_engine(o.engine);
  const bool interactive = ::isatty(fileno(stdin));
  if (interactive) log_status("chat: type a message; /clear starts over; /quit or Ctrl-D leaves");
  const int64_t context = engine->max_context();
  // The reply needs room after the prompt: --max-tokens, but at most half the context so that a
  // long --max-tokens does not leave room for no history at all.
  const int64_t reply_room = std::max<int64_t>(1, std::min<int64_t>(gen.max_tokens, context / 2));

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
    if (line == "/quit" || line == "/exit") break;
    if (line == "/clear") {
      reset();
      log_status("chat: cleared; a new conversation starts");
      continue;
    }
    history.push_back({{"role", "user"}, {"content", line}});
    auto [prompt, dropped] = fit_history(session, history, context, reply_room);
    if (static_cast<int64_t>(prompt.size()) + reply_room > context) {
      log_status(
          "chat: this message makes a prompt of {} tokens, which leaves no room for a reply in "
          "the context of {} (--max-context); it was not sent",
          prompt.size(), context);
      history.erase(history.end() - 1);
      continue;
    }
    if (dropped > 0) {
      log_status(
          "chat: the conversation outgrew the context of {} tokens; the oldest {} message(s) "
          "were dropped",
          context, dropped);
    }
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
  auto* cmd = app.add_subcommand(
      "chat", "Interactive chat (history kept; /clear starts over; /quit or Ctrl-D leaves)");
  add_engine_flags(*cmd, opts->engine);
  add_sampling_flags(*cmd, opts->sampling);
  cmd->add_option("--system", opts->system, "System message");
  cmd->callback([opts] { run_chat(*opts); });
}

}  // namespace fp8llm::cli
