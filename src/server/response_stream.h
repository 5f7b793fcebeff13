// Writes one Generation to its client from httplib's content provider, on the connection's own
// thread: server-sent events as tokens come (`data: {chunk}` ... `data: [DONE]`) for stream
// requests, else the whole JSON once every choice has finished. The body is sent chunked either
// way, so that a client that leaves is noticed while it waits: a closed socket or a failed write
// cancels the generation at once, and its KV blocks are freed at the engine's next step.
#pragma once

#include <httplib.h>

#include <chrono>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "server/generation.h"
#include "server/openai_response.h"

namespace fp8llm::server {

// How often a waiting response looks at its socket.
inline constexpr std::chrono::milliseconds kClientPoll{100};

class ResponseStream {
 public:
  // `on_end(summary)` is called once the response is written whole, with a line for the request
  // log (tokens out, time to first token, finish reasons).
  ResponseStream(std::shared_ptr<Generation> generation, ResponseFormat format,
                 std::function<void(const std::string&)> on_end);

  // One round: waits up to kClientPoll for news and writes it. False ends the response early
  // (the client is gone; the generation is cancelled).
  bool pump(httplib::DataSink& sink);

 private:
  bool pump_or_throw(httplib::DataSink& sink);
  void add(const ChoiceDelta& d, std::string& out);
  std::string finish();
  std::string summary() const;

  std::shared_ptr<Generation> generation_;
  ResponseFormat format_;
  std::function<void(const std::string&)> on_end_;
  bool started_ = false;
  int64_t completion_tokens_ = 0;
  std::string error_;
  int finished_[4] = {};            // choices finished, by FinishReason
  std::vector<ChoiceDelta> whole_;  // non-stream: each choice so far
};

// One server-sent event carrying `data`.
std::string sse_event(std::string_view data);

}  // namespace fp8llm::server
