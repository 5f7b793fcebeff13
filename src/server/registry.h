// The generation requests the server holds, from admission until their response is written: what
// --max-waiting bounds, what a shutdown waits for (and cancels after its grace period), and what
// an engine failure must end.
#pragma once

#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <memory>
#include <mutex>
#include <string>
#include <unordered_set>

#include "server/generation.h"

namespace fp8llm::server {

class Registry {
 public:
  // Room for `limit` sequences (each request counts prompts times n).
  explicit Registry(int64_t limit) : limit_(limit) {}

  // Adds `g` unless the sequences held would exceed the limit.
  bool try_add(const std::shared_ptr<Generation>& g);
  void remove(const std::shared_ptr<Generation>& g);
  // Requests held.
  int64_t size() const;
  // Waits until none is held or `deadline` passes; true when none is held.
  bool wait_empty(std::chrono::steady_clock::time_point deadline);
  void cancel_all();
  void fail_all(const std::string& message);

 private:
  const int64_t limit_;
  mutable std::mutex mutex_;
  std::condition_variable emptied_;
  std::unordered_set<std::shared_ptr<Generation>> held_;
  int64_t sequences_ = 0;
};

}  // namespace fp8llm::server
