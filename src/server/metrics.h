// Counters and latency histograms of the server, and /metrics as Prometheus' text format (version
// 0.0.4). Histograms are cumulative as Prometheus expects; everything may be updated from any
// thread.
#pragma once

#include <atomic>
#include <cstdint>
#include <mutex>
#include <string>
#include <string_view>
#include <vector>

#include "fp8llm/request.h"

namespace fp8llm::server {

class Histogram {
 public:
  explicit Histogram(std::vector<double> upper_bounds);
  void observe(double value);
  // Appends the _bucket, _sum and _count lines (with HELP and TYPE) for `name`.
  void render(std::string& out, std::string_view name, std::string_view help) const;
  uint64_t count() const;

 private:
  std::vector<double> bounds_;
  mutable std::mutex mutex_;      // guards the three below
  std::vector<uint64_t> counts_;  // per bucket, not cumulative; one more for +Inf
  double sum_ = 0;
  uint64_t count_ = 0;
};

class Metrics {
 public:
  Metrics();

  Histogram time_to_first_token;  // seconds from a request's arrival to its first token
  Histogram inter_token_latency;  // seconds between two tokens of one sample
  Histogram request_latency;      // seconds from arrival to the last token

  void count_prompt_tokens(int64_t n) { prompt_tokens_ += n; }
  void count_generated_token() { ++generated_tokens_; }
  void count_finished(FinishReason reason);  // one sample ended
  void count_response(int status);           // one HTTP response sent

  // The whole exposition: the counters above, and the engine's state from `engine`;
  // `in_flight` is the generation requests the server holds.
  std::string render(const EngineStats& engine, int64_t in_flight) const;

 private:
  std::atomic<int64_t> prompt_tokens_{0};
  std::atomic<int64_t> generated_tokens_{0};
  std::atomic<int64_t> finished_[4] = {};  // by FinishReason
  mutable std::mutex status_mutex_;
  std::vector<std::pair<int, int64_t>> responses_;  // (status, count), sorted by status
};

}  // namespace fp8llm::server
