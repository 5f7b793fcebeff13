#include "cli/generate_batch.h"

#include <fmt/format.h>

#include <fstream>
#include <nlohmann/json.hpp>
#include <set>

#include "cli/format.h"
#include "cli/progress.h"
#include "core/error.h"
#include "core/file_util.h"
#include "core/json_depth.h"
#include "serving/text_generation.h"

namespace fp8llm::cli {
namespace {

using nlohmann::json;

struct Line {
  int number = 0;
  json object;
};

std::vector<Line> read_lines(const std::string& path) {
  std::ifstream in(path);
  FP8LLM_CHECK(in.is_open(), "--prompts-file {}: cannot open it", path);
  std::vector<Line> lines;
  std::string text;
  int number = 0;
  while (std::getline(in, text)) {
    ++number;
    if (text.find_first_not_of(" \t\r") == std::string::npos) continue;
    json j = json::parse(text, nullptr, false);
    FP8LLM_CHECK(!j.is_discarded(), "{}:{}: not valid JSON", path, number);
    check_json_depth(j, fmt::format("{}:{}", path, number));
    FP8LLM_CHECK(j.is_object(), "{}:{}: expected a JSON object", path, number);
    lines.push_back({number, std::move(j)});
  }
  FP8LLM_CHECK(!in.bad(), "--prompts-file {}: cannot read it", path);
  FP8LLM_CHECK(!lines.empty(), "--prompts-file {}: no requests in it", path);
  return lines;
}

// A line's request: its prompt (text through the tokenizer, or ids) and sampling.
TextRequest request_of(const Line& line, const std::string& path, const TextModel& text,
                       const SamplingParams& defaults, const std::string& lora) {
  const std::string where = fmt::format("{}:{}", path, line.number);
  static const std::set<std::string> own = {"prompt", "prompt_token_ids", "lora"};
  for (const auto& [key, value] : line.object.items()) {
    const auto& fields = sampling_fields();
    FP8LLM_CHECK(
        own.count(key) || std::find(fields.begin(), fields.end(), key) != fields.end(),
        "{}: {}: not a request field (prompt, prompt_token_ids, lora, or a sampling field)", where,
        key);
  }
  TextRequest r;
  r.sampling = parse_sampling(line.object, where, defaults);
  r.lora = lora;
  if (line.object.contains("lora") && !line.object["lora"].is_null()) {
    FP8LLM_CHECK(line.object["lora"].is_string(), "{}: lora: expected an adapter's name", where);
    r.lora = line.object["lora"].get<std::string>();
  }
  const bool has_text = line.object.contains("prompt");
  const bool has_ids = line.object.contains("prompt_token_ids");
  FP8LLM_CHECK(has_text != has_ids, "{}: give one of prompt and prompt_token_ids", where);
  if (has_text) {
    FP8LLM_CHECK(line.object["prompt"].is_string(), "{}: prompt: expected a string", where);
    r.prompt = text.encode(line.object["prompt"].get<std::string>());
  } else {
    const json& ids = line.object["prompt_token_ids"];
    FP8LLM_CHECK(ids.is_array() && !ids.empty(),
                 "{}: prompt_token_ids: expected a non-empty list of token ids", where);
    for (const json& id : ids) {
      FP8LLM_CHECK(id.is_number_integer() && id.get<int64_t>() >= 0 &&
                       id.get<int64_t>() < text.tokenizer().vocab_size(),
                   "{}: prompt_token_ids: {} is not a token id of this model", where, id.dump());
      r.prompt.push_back(id.get<int32_t>());
    }
  }
  return r;
}

json logprobs_json(const std::vector<TokenLogprob>& lps) {
  json out = json::array();
  for (const TokenLogprob& t : lps) {
    json entry{{"token_id", t.id}, {"logprob", t.logprob}};
    if (!t.top.empty()) {
      json top = json::array();
      for (const auto& [id, lp] : t.top) top.push_back({{"token_id", id}, {"logprob", lp}});
      entry["top_logprobs"] = std::move(top);
    }
    out.push_back(std::move(entry));
  }
  return out;
}

}  // namespace

void run_generate_batch(const EngineFlags& engine_flags, const SamplingFlags& flags,
                        const BatchFlags& batch) {
  FP8LLM_CHECK(!batch.out.empty(), "--prompts-file needs --out (a file, or - for stdout)");
  const TextModel text = TextModel::load(engine_flags.model_dir);
  SamplingParams defaults;
  defaults.temperature = flags.temperature;
  defaults.top_k = flags.top_k;
  defaults.top_p = flags.top_p;
  defaults.min_p = flags.min_p;
  defaults.repetition_penalty = flags.repetition_penalty;
  defaults.max_tokens = flags.max_tokens > 0 ? flags.max_tokens : 16;
  defaults.stop_token_ids = flags.stop_ids;
  // Every line is checked before the (long) load.
  std::vector<TextRequest> requests;
  for (const Line& line : read_lines(batch.prompts_file))
    requests.push_back(
        request_of(line, batch.prompts_file, text, defaults, default_lora(engine_flags)));

  auto engine = load_engine(engine_flags);
  ProgressLine progress("generating", !engine_flags.quiet);
  const auto start = std::chrono::steady_clock::now();
  const std::vector<TextResult> results =
      generate_text(*engine, text, requests, [&](size_t done, size_t total) {
        progress.update(done, total, fmt::format("{} of {} requests", done, total));
      });
  const double seconds =
      std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();

  std::string out;
  size_t prompt_tokens = 0, generated = 0;
  for (size_t i = 0; i < results.size(); ++i) {
    const TextResult& r = results[i];
    json outputs = json::array();
    for (const TextCompletion& c : r.outputs) {
      json o{{"index", c.index},
             {"token_ids", c.token_ids},
             {"text", c.text},
             {"finish_reason", std::string(to_string(c.finish_reason))}};
      o["logprobs"] = c.logprobs.empty() ? json(nullptr) : logprobs_json(c.logprobs);
      outputs.push_back(std::move(o));
      generated += c.token_ids.size();
    }
    prompt_tokens += r.prompt.size();
    json line{{"prompt_token_ids", r.prompt}};
    // As vLLM's RequestOutput.prompt_logprobs: null for the first token, which has no context.
    if (requests[i].sampling.params.prompt_logprobs >= 0) {
      json scored = json::array({nullptr});
      for (json& entry : logprobs_json(r.prompt_logprobs)) scored.push_back(std::move(entry));
      line["prompt_logprobs"] = std::move(scored);
    }
    line["outputs"] = std::move(outputs);
    out += line.dump(-1, ' ', false, json::error_handler_t::replace) + "\n";
  }
  if (batch.out == "-") {
    std::fwrite(out.data(), 1, out.size(), stdout);
    std::fflush(stdout);
  } else {
    write_text_file_atomically(batch.out, out);
  }
  if (!engine_flags.quiet) {
    const EngineStats s = engine->stats();
    log_status(
        "{} requests: {} prompt tokens ({} from the prefix cache), {} generated in {:.2f} s "
        "({:.1f} tok/s generated, {:.1f} tok/s in all); {} preemptions",
        results.size(), prompt_tokens, s.prefix_hit_tokens, generated, seconds,
        seconds > 0 ? static_cast<double>(generated) / seconds : 0.0,
        seconds > 0 ? static_cast<double>(prompt_tokens + generated) / seconds : 0.0,
        s.preemptions);
  }
}

}  // namespace fp8llm::cli
