#include "cli/bench_serving.h"

#include <fmt/format.h>
#include <fmt/ranges.h>

#include <algorithm>
#include <chrono>
#include <random>
#include <string>
#include <vector>

#include "core/error.h"
#include "engine/warm_up.h"
#include "formats/hf_config.h"

namespace fp8llm::cli {
namespace {

using Clock = std::chrono::steady_clock;

double ms_between(Clock::time_point a, Clock::time_point b) {
  return std::chrono::duration<double, std::milli>(b - a).count();
}

double percentile(std::vector<double> v, double p) {
  if (v.empty()) return 0;
  std::sort(v.begin(), v.end());
  const auto i = static_cast<size_t>(p / 100.0 * static_cast<double>(v.size() - 1) + 0.5);
  return v[std::min(i, v.size() - 1)];
}

struct Flight {
  Clock::time_point added, last;
  bool first = true;
};

// The steps of one kind (with prompt tokens, or decode only): where a run's time goes between
// prefill and decode.
struct StepTally {
  int64_t steps = 0;
  double ms = 0;
  int64_t prompt_tokens = 0;
  int64_t sampled_tokens = 0;

  void add(double step_ms, const EngineStats& before, const EngineStats& after) {
    ++steps;
    ms += step_ms;
    prompt_tokens += after.prompt_tokens - before.prompt_tokens;
    sampled_tokens += after.generated_tokens - before.generated_tokens;
  }
  double ms_per_step() const { return steps > 0 ? ms / static_cast<double>(steps) : 0.0; }
};

}  // namespace

void run_serving_bench(Engine& engine, const ServingBench& b) {
  FP8LLM_CHECK(
      b.concurrency >= 1 && b.num_prompts >= 1 && b.input_len >= 1 && b.output_len >= 1 &&
          b.prefix_len >= 0 && b.prefix_len < b.input_len && b.warmup >= 0,
      "bench: --concurrency, --num-prompts, --input-len and --output-len must be positive, "
      "--prefix-len below --input-len and --warmup 0 or more");
  const ModelConfig& c = engine.config();
  std::mt19937_64 rng(b.seed);
  std::uniform_int_distribution<int32_t> pick(0, static_cast<int32_t>(c.vocab_size - 1));
  std::vector<int32_t> prefix(static_cast<size_t>(b.prefix_len));
  for (int32_t& id : prefix) id = pick(rng);
  // With adapters loaded (--lora), the requests take them in turn: a batch mixes them all.
  const std::vector<std::string> loras = engine.lora_names();
  std::vector<GenerationRequest> requests;
  for (int64_t i = 0; i < b.num_prompts; ++i) {
    GenerationRequest r;
    if (!loras.empty()) r.lora = loras[static_cast<size_t>(i) % loras.size()];
    r.prompt = prefix;
    while (static_cast<int64_t>(r.prompt.size()) < b.input_len) r.prompt.push_back(pick(rng));
    r.params.max_tokens = static_cast<int>(b.output_len);
    r.params.ignore_eos = true;
    r.output = OutputKind::FinalOnly;  // the callback times the tokens; only the end is read
    requests.push_back(std::move(r));
  }

  if (b.warmup > 0) {
    const double seconds = warm_up(engine, b.warmup, b.input_len);
    fmt::print("warm-up    {} request(s) of {} tokens in {:.3f} s (not counted)\n", b.warmup,
               b.input_len, seconds);
  }
  const EngineStats before = engine.stats();
  std::vector<Flight> flights(requests.size());
  std::vector<double> ttft, itl;
  size_t next = 0, done = 0;
  int64_t in_flight = 0, max_blocks = 0, steps = 0;
  const auto start = Clock::now();
  const auto add = [&] {
    const size_t i = next++;
    flights[i].added = Clock::now();
    engine.add_request(requests[i], [&, i](const TokenUpdate& u) {
      if (u.token < 0) return true;
      const auto now = Clock::now();
      Flight& f = flights[i];
      if (f.first) {
        ttft.push_back(ms_between(f.added, now));
        f.first = false;
      } else {
        itl.push_back(ms_between(f.last, now));
      }
      f.last = now;
      return true;
    });
    ++in_flight;
  };
  StepTally with_prompt, decode_only;
  while (done < requests.size()) {
    while (in_flight < b.concurrency && next < requests.size()) add();
    const EngineStats pre = engine.stats();
    const auto step_start = Clock::now();
    const std::vector<RequestOutput> outputs = engine.step();
    const double step_ms = ms_between(step_start, Clock::now());
    const EngineStats post = engine.stats();
    (post.prompt_tokens > pre.prompt_tokens ? with_prompt : decode_only).add(step_ms, pre, post);
    for (const RequestOutput& o : outputs) {
      if (!o.finished) continue;
      ++done;
      --in_flight;
    }
    ++steps;
    max_blocks = std::max(max_blocks, post.kv_blocks_used);
  }
  const double seconds = std::chrono::duration<double>(Clock::now() - start).count();
  const EngineStats s = engine.stats();
  const LoadReport& load = engine.load_report();
  const double out_tokens = static_cast<double>(b.num_prompts * b.output_len);
  const double all_tokens = static_cast<double>(b.num_prompts * (b.input_len + b.output_len));
  fmt::print("serving    {} requests of {} in / {} out tokens (prefix {}), concurrency {}{}\n",
             b.num_prompts, b.input_len, b.output_len, b.prefix_len, b.concurrency,
             b.max_seqs > 0 && b.max_seqs < b.concurrency
                 ? fmt::format(" ({} running at once, --max-seqs)", b.max_seqs)
                 : std::string());
  if (!loras.empty())
    fmt::print("lora       requests take the adapters in turn: {}\n", fmt::join(loras, ", "));
  fmt::print(
      "throughput {:.1f} output tok/s, {:.1f} total tok/s, {:.2f} requests/s ({:.2f} s, {} "
      "steps)\n",
      out_tokens / seconds, all_tokens / seconds, static_cast<double>(b.num_prompts) / seconds,
      seconds, steps);
  fmt::print(
      "steps      {} with prompt tokens in {:.2f} s ({:.2f} ms each; {} prompt, {} sampled "
      "tokens), {} decode only in {:.2f} s ({:.2f} ms each; {} sampled tokens)\n",
      with_prompt.steps, with_prompt.ms / 1e3, with_prompt.ms_per_step(), with_prompt.prompt_tokens,
      with_prompt.sampled_tokens, decode_only.steps, decode_only.ms / 1e3,
      decode_only.ms_per_step(), decode_only.sampled_tokens);
  fmt::print("ttft ms    p50 {:.2f}  p90 {:.2f}  p99 {:.2f}\n", percentile(ttft, 50),
             percentile(ttft, 90), percentile(ttft, 99));
  fmt::print("itl ms     p50 {:.2f}  p90 {:.2f}  p99 {:.2f}\n", percentile(itl, 50),
             percentile(itl, 90), percentile(itl, 99));
  fmt::print(
      "kv cache   {} of {} blocks of {} used at most; prefix cache {} of {} prompt tokens; "
      "{} preemptions\n",
      max_blocks, s.kv_blocks_total, s.block_size, s.prefix_hit_tokens - before.prefix_hit_tokens,
      s.prefix_query_tokens - before.prefix_query_tokens, s.preemptions - before.preemptions);
  if (load.peak_device_bytes == 0) return;  // the CPU: no device floor to compare with
  // A decode step at batch B reads every weight once and each sequence's keys and values, and
  // does 2 FLOPs per weight per token.
  int64_t running = std::min(b.concurrency, b.num_prompts);
  if (b.max_seqs > 0) running = std::min(running, b.max_seqs);
  const auto batch = static_cast<double>(running);
  const double context = static_cast<double>(b.input_len) + static_cast<double>(b.output_len) / 2;
  const double kv_read =
      batch * context * static_cast<double>(load.kv_bytes) /
      std::max<double>(1.0, static_cast<double>(load.kv_blocks * load.kv_block_size));
  const double bytes = static_cast<double>(load.resident_bytes) + kv_read;
  const double params = static_cast<double>(load.resident_bytes);  // about a byte a weight (FP8)
  const double floor_ms =
      std::max(bytes / (b.bandwidth_gbs * 1e9), 2 * params * batch / (b.tensor_tflops * 1e12)) *
      1e3;
  fmt::print(
      "step floor at batch {:.0f}: {:.3f} ms ({:.2f} GB of weights and KV at {:.0f} GB/s, "
      "{:.1f} TFLOP at {:.0f} TFLOP/s) = {:.0f} output tok/s\n",
      batch, floor_ms, bytes / 1e9, b.bandwidth_gbs, 2 * params * batch / 1e12, b.tensor_tflops,
      batch / floor_ms * 1e3);
}

}  // namespace fp8llm::cli
