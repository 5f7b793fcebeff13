#include "server/metrics.h"

#include <fmt/format.h>

#include <algorithm>
#include <cmath>

namespace fp8llm::server {
namespace {

// Prometheus writes bucket bounds and values in Go's shortest float form; "{}" does the same.
std::string number(double v) {
  if (std::isinf(v)) return v > 0 ? "+Inf" : "-Inf";
  return fmt::format("{}", v);
}

void header(std::string& out, std::string_view name, std::string_view type, std::string_view help) {
  out += fmt::format("# HELP {} {}\n# TYPE {} {}\n", name, help, name, type);
}

void scalar(std::string& out, std::string_view name, std::string_view type, std::string_view help,
            double value) {
  header(out, name, type, help);
  out += fmt::format("{} {}\n", name, number(value));
}

// Finish reasons as the API names them (vLLM's "abort" for a cancelled request).
constexpr const char* kFinishLabel[] = {"stop", "length", "abort", "error"};

}  // namespace

Histogram::Histogram(std::vector<double> upper_bounds)
    : bounds_(std::move(upper_bounds)), counts_(bounds_.size() + 1, 0) {}

void Histogram::observe(double value) {
  const size_t bucket = static_cast<size_t>(
      std::lower_bound(bounds_.begin(), bounds_.end(), value) - bounds_.begin());
  std::lock_guard lock(mutex_);
  ++counts_[bucket];
  sum_ += value;
  ++count_;
}

uint64_t Histogram::count() const {
  std::lock_guard lock(mutex_);
  return count_;
}

void Histogram::render(std::string& out, std::string_view name, std::string_view help) const {
  std::vector<uint64_t> counts;
  double sum = 0;
  uint64_t count = 0;
  {
    std::lock_guard lock(mutex_);
    counts = counts_;
    sum = sum_;
    count = count_;
  }
  header(out, name, "histogram", help);
  uint64_t cumulative = 0;
  for (size_t i = 0; i < counts.size(); ++i) {
    cumulative += counts[i];
    const double le = i < bounds_.size() ? bounds_[i] : INFINITY;
    out += fmt::format("{}_bucket{{le=\"{}\"}} {}\n", name, number(le), cumulative);
  }
  out += fmt::format("{}_sum {}\n{}_count {}\n", name, number(sum), name, count);
}

Metrics::Metrics()
    : time_to_first_token({0.001, 0.005, 0.01, 0.02, 0.04, 0.06, 0.08, 0.1, 0.25, 0.5, 0.75, 1.0,
                           2.5, 5.0, 7.5, 10.0, 20.0, 40.0, 80.0}),
      inter_token_latency({0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.075, 0.1, 0.15, 0.2, 0.3, 0.4,
                           0.5, 0.75, 1.0, 2.5, 5.0}),
      request_latency({0.1, 0.3, 0.5, 0.8, 1.0, 1.5, 2.0, 2.5, 5.0, 10.0, 15.0, 20.0, 30.0, 40.0,
                       50.0, 60.0, 120.0, 240.0}) {}

void Metrics::count_finished(FinishReason reason) {
  ++finished_[static_cast<int>(reason)];
}

void Metrics::count_response(int status) {
  std::lock_guard lock(status_mutex_);
  const auto it =
      std::lower_bound(responses_.begin(), responses_.end(), std::pair{status, int64_t{0}},
                       [](const auto& a, const auto& b) { return a.first < b.first; });
  if (it != responses_.end() && it->first == status)
    ++it->second;
  else
    responses_.insert(it, {status, 1});
}

std::string Metrics::render(const EngineStats& s, int64_t in_flight) const {
  std::string out;
  scalar(out, "fp8llm_requests_running", "gauge", "Sequences being generated.",
         static_cast<double>(s.running));
  scalar(out, "fp8llm_requests_waiting", "gauge", "Sequences waiting for room in the batch.",
         static_cast<double>(s.waiting));
  scalar(out, "fp8llm_requests_in_flight", "gauge",
         "Generation requests the server holds (queued, running or being written).",
         static_cast<double>(in_flight));
  scalar(out, "fp8llm_kv_blocks_used", "gauge", "KV cache blocks held by sequences.",
         static_cast<double>(s.kv_blocks_used));
  scalar(out, "fp8llm_kv_blocks_total", "gauge", "KV cache blocks sequences can use.",
         static_cast<double>(s.kv_blocks_total));
  scalar(out, "fp8llm_kv_cache_usage_ratio", "gauge", "Fraction of the KV cache blocks in use.",
         s.kv_blocks_total > 0
             ? static_cast<double>(s.kv_blocks_used) / static_cast<double>(s.kv_blocks_total)
             : 0.0);
  scalar(out, "fp8llm_prefix_cache_queries_total", "counter",
         "Prompt tokens looked up in the prefix cache.",
         static_cast<double>(s.prefix_query_tokens));
  scalar(out, "fp8llm_prefix_cache_hits_total", "counter",
         "Prompt tokens found in the prefix cache.", static_cast<double>(s.prefix_hit_tokens));
  scalar(out, "fp8llm_prefix_cache_hit_rate", "gauge",
         "Prefix cache hits over queries, in tokens, since the start.",
         s.prefix_query_tokens > 0
             ? static_cast<double>(s.prefix_hit_tokens) / static_cast<double>(s.prefix_query_tokens)
             : 0.0);
  scalar(out, "fp8llm_prompt_tokens_total", "counter", "Prompt tokens of accepted requests.",
         static_cast<double>(prompt_tokens_.load()));
  scalar(out, "fp8llm_generation_tokens_total", "counter", "Tokens generated for requests.",
         static_cast<double>(generated_tokens_.load()));
  scalar(out, "fp8llm_preemptions_total", "counter",
         "Sequences preempted for KV cache room (computed again later).",
         static_cast<double>(s.preemptions));
  scalar(out, "fp8llm_engine_steps_total", "counter", "Engine steps run.",
         static_cast<double>(s.steps));
  header(out, "fp8llm_samples_finished_total", "counter",
         "Samples finished, by finish reason (abort: the client left or the server stopped).");
  for (int i = 0; i < 4; ++i)
    out += fmt::format("fp8llm_samples_finished_total{{finish_reason=\"{}\"}} {}\n",
                       kFinishLabel[i], finished_[i].load());
  header(out, "fp8llm_http_responses_total", "counter", "HTTP responses, by status code.");
  {
    std::lock_guard lock(status_mutex_);
    for (const auto& [status, count] : responses_)
      out += fmt::format("fp8llm_http_responses_total{{code=\"{}\"}} {}\n", status, count);
  }
  time_to_first_token.render(out, "fp8llm_time_to_first_token_seconds",
                             "Time from a request's arrival to its first token.");
  inter_token_latency.render(out, "fp8llm_inter_token_latency_seconds",
                             "Time between two consecutive tokens of one sample.");
  request_latency.render(out, "fp8llm_e2e_request_latency_seconds",
                         "Time from a request's arrival to its last token.");
  return out;
}

}  // namespace fp8llm::server
