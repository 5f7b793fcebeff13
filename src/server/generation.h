// One API request in flight: its engine requests (one per prompt), each choice's text as its
// tokens come (decoded, and checked for stop strings, on the engine's thread, since a stop string
// must end the sample there), and what the HTTP thread has not taken yet.
#pragma once

#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <vector>

#include "server/engine_loop.h"
#include "server/metrics.h"
#include "server/openai_request.h"

namespace fp8llm::server {

// What one choice produced since it was last taken.
struct ChoiceDelta {
  int index = 0;
  std::string text;
  std::vector<int32_t> tokens;
  std::vector<TokenLogprob> logprobs;  // one per token when the request asked
  // The prompt's tokens 1, 2, ... (echo with logprobs), with the choice's first token.
  std::vector<TokenLogprob> prompt_logprobs;
  std::optional<FinishReason> finish;  // set on the choice's last delta
  std::string error;                   // FinishReason::Error: what went wrong
};

class Generation : public std::enable_shared_from_this<Generation> {
 public:
  using Clock = std::chrono::steady_clock;

  Generation(const TextModel& text, ApiRequest request, Metrics& metrics);
  Generation(const Generation&) = delete;
  Generation& operator=(const Generation&) = delete;

  // Queues the prompts on `loop`. An Error (field at fault) leaves nothing queued.
  void start(EngineLoop& loop);
  // Waits up to `timeout` for news and returns it, one delta per choice that has some, by index.
  // *done is set once every choice has finished and all it produced has been returned.
  std::vector<ChoiceDelta> take(std::chrono::milliseconds timeout, bool* done);
  // Aborts what is still running (the client left, or the server stops). Any thread; idempotent.
  void cancel();
  // Ends every unfinished choice with `message` (the engine failed and will not end them).
  void fail(const std::string& message);

  const ApiRequest& request() const { return request_; }
  int choices() const { return static_cast<int>(request_.prompts.size()) * request_.n; }
  int64_t prompt_tokens() const;
  int64_t generated_tokens() const { return generated_; }
  Clock::time_point arrival() const { return arrival_; }
  // Seconds from arrival to the first token (none yet: nullopt).
  std::optional<double> first_token_seconds() const;

 private:
  bool on_update(size_t prompt, const TokenUpdate& u);  // on the engine's thread
  void finish_locked(int choice, FinishReason reason, const std::string& error);

  const TextModel& text_;
  const ApiRequest request_;
  Metrics& metrics_;
  const Clock::time_point arrival_;
  EngineLoop* loop_ = nullptr;
  // Touched by the engine's thread only.
  std::vector<std::unique_ptr<SampleTexts>> texts_;           // per prompt
  std::vector<std::optional<Clock::time_point>> last_token_;  // per choice

  mutable std::mutex mutex_;  // guards everything below
  std::condition_variable cv_;
  std::vector<uint64_t> ids_;  // engine request of each prompt queued so far
  std::vector<ChoiceDelta> pending_;
  std::vector<bool> news_;
  std::vector<bool> finished_;
  int unfinished_ = 0;
  bool cancelled_ = false;
  int64_t generated_ = 0;
  std::optional<double> first_token_;
};

}  // namespace fp8llm::server
