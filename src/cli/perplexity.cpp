// `fp8llm perplexity --model DIR --file TEXT`: the model's perplexity over a text, scored in
// overlapping windows (src/eval/windows.h; the same definition as scripts/train/reference.py),
// as llama.cpp's llama-perplexity does. `--save-logits FILE` keeps the log-probabilities of every
// scored position (cli/logprob_file.h); `--baseline-logits FILE` compares this run with such a
// file: the KL divergence from the baseline per position (mean, p99, max) and the share of
// positions whose top token is the baseline's.
#include <fmt/format.h>

#include <chrono>
#include <cmath>
#include <cstring>
#include <filesystem>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "cli/commands.h"
#include "cli/load_options.h"
#include "cli/logprob_file.h"
#include "cli/progress.h"
#include "core/error.h"
#include "core/file_util.h"
#include "eval/statistics.h"
#include "eval/windows.h"
#include "formats/hf_config.h"
#include "fp8llm/engine.h"
#include "text/tokenizer.h"

namespace fp8llm::cli {
namespace {

struct Options {
  EngineFlags engine;
  std::string file;
  int64_t context = 512;
  int64_t stride = 0;
  bool stride_given = false;
  std::string save_logits;
  std::string baseline_logits;
  bool json = false;
};

std::string read_text_flag(const std::string& path) {
  std::error_code ec;
  FP8LLM_CHECK(std::filesystem::exists(path, ec), "--file {}: no such file", path);
  FP8LLM_CHECK(std::filesystem::is_regular_file(path, ec), "--file {}: not a regular file", path);
  std::string text;
  try {
    text = read_text_file(path);
  } catch (const Error& e) {
    fail("--file {}", e.what());
  }
  FP8LLM_CHECK(!text.empty(), "--file {}: the file is empty", path);
  return text;
}

std::vector<int32_t> tokenize_flag(const Tokenizer& tokenizer, const std::string& text,
                                   const std::string& path, int64_t vocab) {
  std::vector<int32_t> ids;
  try {
    ids = tokenizer.encode(text, /*add_special_tokens=*/true);
  } catch (const Error& e) {
    fail("--file {}: {}", path, e.what());
  }
  FP8LLM_CHECK(ids.size() >= 2, "--file {}: {} token(s); at least 2 are needed to score one", path,
               ids.size());
  for (int32_t id : ids)
    FP8LLM_CHECK(id >= 0 && id < vocab,
                 "--file {}: token id {} is outside the model's vocabulary of {} (tokenizer.json "
                 "and config.json disagree)",
                 path, id, vocab);
  return ids;
}

// Scores every window; the log-probabilities are computed only when saved or compared.
struct Scores {
  eval::NllSum nll;
  eval::NllSum baseline_nll;
  eval::DivergenceStats divergence;
  int64_t tokens_run = 0;
  double seconds = 0;
};

Scores score(Engine& engine, std::span<const int32_t> ids, std::span<const eval::Window> plan,
             LogprobWriter* writer, const BaselineLogprobs* baseline, bool quiet) {
  const int64_t vocab = engine.vocab_size();
  const auto v = static_cast<size_t>(vocab);
  Scores s;
  std::vector<float> logprobs(v);
  ProgressLine progress("scoring", !quiet);
  const auto start = std::chrono::steady_clock::now();
  int64_t i = 0;  // index of the scored position, in scoring order
  for (size_t w = 0; w < plan.size(); ++w) {
    const eval::Window& win = plan[w];
    const std::vector<float> logits = engine.logits(
        ids.subspan(static_cast<size_t>(win.begin), static_cast<size_t>(win.end - win.begin)));
    s.tokens_run += win.end - win.begin;
    for (int64_t t = win.first_target; t < win.end; ++t, ++i) {
      const std::span<const float> row(logits.data() + static_cast<size_t>(t - 1 - win.begin) * v,
                                       v);
      const int32_t target = ids[static_cast<size_t>(t)];
      s.nll.add(eval::negative_log_likelihood(row, target));
      if (!writer && !baseline) continue;
      eval::log_softmax(row, logprobs);
      if (writer) writer->write_row(logprobs);
      if (baseline) {
        const std::span<const float> base = baseline->row(i);
        s.baseline_nll.add(-static_cast<double>(base[static_cast<size_t>(target)]));
        s.divergence.add(eval::kl_divergence(base, logprobs),
                         eval::argmax(base) == eval::argmax(logprobs));
      }
    }
    progress.update(
        w + 1, plan.size(),
        fmt::format("{}/{} windows, perplexity {:.4f}", w + 1, plan.size(), s.nll.perplexity()));
  }
  s.seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  return s;
}

void print_text(const nlohmann::ordered_json& r) {
  fmt::print("file: {} ({} bytes, {} tokens)\n", r["file"].get<std::string>(),
             r["bytes"].get<int64_t>(), r["tokens"].get<int64_t>());
  fmt::print("windows: {} (context {}, stride {}); {} positions scored\n",
             r["windows"].get<int64_t>(), r["context"].get<int64_t>(), r["stride"].get<int64_t>(),
             r["scored"].get<int64_t>());
  fmt::print("model: {} ({} on {}{})\n", r["model"].get<std::string>(),
             r["quantization"].get<std::string>(), r["device"].get<std::string>(),
             r["device"] == "cuda" ? ", --fp8-gemm " + r["fp8_gemm"].get<std::string>() : "");
  fmt::print("perplexity: {:.4f} (mean NLL {:.6f})\n", r["perplexity"].get<double>(),
             r["mean_nll"].get<double>());
  if (!r.contains("baseline")) return;
  const auto& b = r["baseline"];
  fmt::print("baseline: {} ({}): perplexity {:.4f}; relative change of this run {:+.3f}%\n",
             b["file"].get<std::string>(), b["quantization"].get<std::string>(),
             b["perplexity"].get<double>(), 100 * b["perplexity_change"].get<double>());
  fmt::print("KL divergence from the baseline: mean {:.6g}, p99 {:.6g}, max {:.6g}\n",
             b["kl_mean"].get<double>(), b["kl_p99"].get<double>(), b["kl_max"].get<double>());
  fmt::print("top token agrees with the baseline: {:.2f}% ({} of {} positions)\n",
             100 * b["top_agreement"].get<double>(), b["top_agree"].get<int64_t>(),
             r["scored"].get<int64_t>());
}

void run_perplexity(const Options& o) {
  // Everything that can be checked is checked before the load, so a mistake costs nothing.
  FP8LLM_CHECK(o.context >= 2, "--context {}: at least 2 tokens are needed", o.context);
  const int64_t stride = o.stride_given ? o.stride : std::max<int64_t>(1, o.context / 2);
  FP8LLM_CHECK(stride >= 1 && stride <= o.context,
               "--stride {}: must be between 1 and --context ({})", stride, o.context);
  const ModelConfig config = load_model_config(o.engine.model_dir);
  FP8LLM_CHECK(o.context <= config.max_position_embeddings,
               "--context {}: the model holds at most {} positions (max_position_embeddings)",
               o.context, config.max_position_embeddings);
  const std::string text = read_text_flag(o.file);
  const Tokenizer tokenizer = Tokenizer::load(o.engine.model_dir);
  const std::vector<int32_t> ids = tokenize_flag(tokenizer, text, o.file, config.vocab_size);
  const auto n = static_cast<int64_t>(ids.size());
  const std::vector<eval::Window> plan = eval::plan_windows(n, o.context, stride);

  ScoredPositions scored{.vocab = config.vocab_size, .context = o.context, .stride = stride};
  for (const eval::Window& w : plan) {
    for (int64_t t = w.first_target; t < w.end; ++t) {
      scored.positions.push_back(static_cast<int32_t>(t));
      scored.targets.push_back(ids[static_cast<size_t>(t)]);
    }
  }
  std::optional<BaselineLogprobs> baseline;
  if (!o.baseline_logits.empty()) baseline = BaselineLogprobs::open(o.baseline_logits, scored);
  if (!o.save_logits.empty()) LogprobWriter::check_target(o.save_logits, "--save-logits");

  EngineFlags flags = o.engine;
  flags.max_context = std::min(o.context, n);  // the KV cache holds one window
  const auto engine = load_engine(flags);
  const std::string quantization(to_string(engine->load_report().quantization));

  std::optional<LogprobWriter> writer;
  if (!o.save_logits.empty()) {
    writer.emplace(o.save_logits, scored,
                   std::map<std::string, std::string>{{"format", "pt"},
                                                      {"model", o.engine.model_dir},
                                                      {"quantization", quantization},
                                                      {"device", flags.device},
                                                      {"fp8_gemm", flags.fp8_gemm},
                                                      {"text", o.file},
                                                      {"tokens", std::to_string(n)},
                                                      {"context", std::to_string(o.context)},
                                                      {"stride", std::to_string(stride)}});
  }
  const Scores s = score(*engine, ids, plan, writer ? &*writer : nullptr,
                         baseline ? &*baseline : nullptr, flags.quiet);
  if (writer) {
    writer->finish();
    if (!flags.quiet)
      log_status("wrote the log-probabilities of {} positions to {}", scored.targets.size(),
                 o.save_logits);
  }
  if (!flags.quiet)
    log_status("scored {} windows ({} tokens) in {:.2f} s ({:.1f} tokens/s)", plan.size(),
               s.tokens_run, s.seconds, s.seconds > 0 ? s.tokens_run / s.seconds : 0.0);

  nlohmann::ordered_json r{
      {"file", o.file},
      {"bytes", text.size()},
      {"tokens", n},
      {"context", o.context},
      {"stride", stride},
      {"windows", plan.size()},
      {"scored", s.nll.count()},
      {"model", o.engine.model_dir},
      {"quantization", quantization},
      {"device", flags.device},
      {"fp8_gemm", flags.fp8_gemm},
      {"nll_sum", s.nll.sum()},
      {"mean_nll", s.nll.mean()},
      {"perplexity", s.nll.perplexity()},
      {"seconds", s.seconds},
  };
  if (!o.save_logits.empty()) r["saved_logits"] = o.save_logits;
  if (baseline) {
    const eval::Divergence d = s.divergence.summary();
    const auto& meta = baseline->metadata();
    const auto quant = meta.find("quantization");
    r["baseline"] = {
        {"file", o.baseline_logits},
        {"quantization", quant == meta.end() ? "unknown" : quant->second},
        {"mean_nll", s.baseline_nll.mean()},
        {"perplexity", s.baseline_nll.perplexity()},
        {"perplexity_change", s.nll.perplexity() / s.baseline_nll.perplexity() - 1},
        {"kl_mean", d.kl_mean},
        {"kl_p99", d.kl_p99},
        {"kl_max", d.kl_max},
        {"top_agree", d.top_agree},
        {"top_agreement", d.top_agreement()},
    };
  }
  if (o.json) {
    fmt::print("{}\n", r.dump());
  } else {
    print_text(r);
  }
}

}  // namespace

void add_perplexity_command(CLI::App& app) {
  auto opts = std::make_shared<Options>();
  auto* cmd = app.add_subcommand(
      "perplexity",
      "Perplexity of the model over a text file, scored in overlapping windows; with "
      "--baseline-logits, the KL divergence from another run and how often the top tokens agree");
  add_engine_flags(*cmd, opts->engine);
  cmd->add_option("--file,-f", opts->file, "The text to score (UTF-8)")->required();
  cmd->add_option("--context,-c", opts->context,
                  "Tokens per window (a fresh sequence each; the KV cache is sized to it, so "
                  "--max-context is not used)")
      ->capture_default_str();
  cmd->add_option("--stride,-s", opts->stride,
                  "Tokens between window starts; each window after the first scores its last "
                  "STRIDE tokens (default: half the context)")
      ->each([o = opts.get()](const std::string&) { o->stride_given = true; });
  cmd->add_option("--save-logits", opts->save_logits,
                  "Write the log-probabilities of every scored position to this safetensors file "
                  "(F32 [positions, vocab]: 16 KiB per position for a 4096-token vocabulary), for "
                  "a later --baseline-logits");
  cmd->add_option("--baseline-logits", opts->baseline_logits,
                  "A file written by --save-logits on the same text, context and stride (e.g. "
                  "with --quantization none): report KL(baseline || this run) and top-token "
                  "agreement");
  cmd->add_flag("--json", opts->json, "Print the results as one JSON object");
  cmd->callback([opts] { run_perplexity(*opts); });
}

}  // namespace fp8llm::cli
