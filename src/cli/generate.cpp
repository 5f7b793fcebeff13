// `fp8llm generate --model DIR --prompt-ids 1,2,3`: generation on token ids (no tokenizer), and
// `--logits-out FILE` to save the fp32 logits of every prompt position for comparison with
// another engine.
#include <fmt/ranges.h>

#include <memory>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "cli/commands.h"
#include "cli/generate_batch.h"
#include "cli/load_options.h"
#include "core/error.h"
#include "engine/sampler.h"
#include "formats/generation_config.h"
#include "formats/hf_config.h"
#include "formats/safetensors.h"
#include "fp8llm/engine.h"

namespace fp8llm::cli {
namespace {

struct Options {
  EngineFlags engine;
  SamplingFlags sampling;
  BatchFlags batch;
  std::string prompt_ids;
  std::string logits_out;
  bool json = false;
};

std::vector<int32_t> parse_ids(const std::string& text, const std::string& flag) {
  std::vector<int32_t> ids;
  size_t pos = 0;
  while (pos <= text.size()) {
    const size_t comma = std::min(text.find(',', pos), text.size());
    const std::string item = text.substr(pos, comma - pos);
    size_t used = 0;
    long long v = -1;
    try {
      v = std::stoll(item, &used);
    } catch (const std::exception&) {
      used = 0;
    }
    FP8LLM_CHECK(used == item.size() && !item.empty() && v >= 0 && v <= INT32_MAX,
                 "{}: '{}' is not a token id (expected comma-separated non-negative integers)",
                 flag, item);
    ids.push_back(static_cast<int32_t>(v));
    pos = comma + 1;
  }
  return ids;
}

void run_generate(const Options& o) {
  FP8LLM_CHECK(o.prompt_ids.empty() != o.batch.prompts_file.empty(),
               "give one of --prompt-ids and --prompts-file");
  if (!o.batch.prompts_file.empty()) {
    FP8LLM_CHECK(o.logits_out.empty() && !o.json, "--logits-out and --json go with --prompt-ids");
    return run_generate_batch(o.engine, o.sampling, o.batch);
  }
  const std::vector<int32_t> prompt = parse_ids(o.prompt_ids, "--prompt-ids");
  GenerationOptions gen = o.sampling.generation_options();
  gen.lora = default_lora(o.engine);
  // Generation ends at the model's EOS tokens, as in run and chat.
  for (int32_t id : model_eos_token_ids(o.engine.model_dir)) gen.stop_token_ids.push_back(id);
  // Check what can be checked before the (long) load.
  Sampler{gen.sampling};
  const int64_t vocab = load_model_config(o.engine.model_dir).vocab_size;
  for (int32_t id : prompt)
    FP8LLM_CHECK(id < vocab, "--prompt-ids: token id {} is out of range (vocabulary of {})", id,
                 vocab);
  auto engine = load_engine(o.engine);

  if (!o.logits_out.empty()) {
    const std::vector<float> logits = engine->logits(prompt);
    const TensorView view{DType::F32,
                          {static_cast<int64_t>(prompt.size()), engine->vocab_size()},
                          reinterpret_cast<const std::byte*>(logits.data()),
                          logits.size() * sizeof(float)};
    write_safetensors(
        o.logits_out, {{"logits", view}},
        {{"format", "pt"},
         {"model", o.engine.model_dir},
         {"quantization", std::string(to_string(engine->load_report().quantization))}});
    log_status("wrote logits [{}, {}] to {}", prompt.size(), engine->vocab_size(), o.logits_out);
  }

  const GenerationResult r = engine->generate(prompt, gen);
  if (o.json) {
    nlohmann::json j{{"tokens", r.tokens},
                     {"logprobs", r.logprobs},
                     {"finish_reason", to_string(r.finish_reason)}};
    fmt::print("{}\n", j.dump());
  } else {
    fmt::print("{}\n", fmt::join(r.tokens, ","));
  }
  if (!o.engine.quiet) print_generation_summary(prompt.size(), r);
}

}  // namespace

void add_generate_command(CLI::App& app) {
  auto opts = std::make_shared<Options>();
  auto* cmd = app.add_subcommand(
      "generate", "Generate token ids from prompt token ids, or a file of requests at once");
  add_engine_flags(*cmd, opts->engine);
  add_sampling_flags(*cmd, opts->sampling);
  cmd->add_option("--prompt-ids", opts->prompt_ids, "Prompt token ids, comma-separated");
  cmd->add_option("--prompts-file", opts->batch.prompts_file,
                  "Requests, one JSON object a line: prompt (text) or prompt_token_ids, and "
                  "vLLM's sampling fields (n, max_tokens, temperature, top_p, top_k, min_p, seed, "
                  "stop, stop_token_ids, ignore_eos, logprobs, presence_penalty, "
                  "frequency_penalty, repetition_penalty); the sampling flags give the defaults. "
                  "All run together (continuous batching)");
  cmd->add_option("--out", opts->batch.out,
                  "With --prompts-file: where the results go, one JSON line per request in input "
                  "order (- for stdout)");
  cmd->add_option("--logits-out", opts->logits_out,
                  "Write the fp32 logits of every prompt position to this safetensors file "
                  "(tensor 'logits' [len, vocab])");
  cmd->add_flag("--json", opts->json, "Print tokens, log-probabilities and finish reason as JSON");
  cmd->callback([opts] { run_generate(*opts); });
}

}  // namespace fp8llm::cli
