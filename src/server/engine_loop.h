// The one thread that runs the engine: it steps while there is work and sleeps on a condition
// variable otherwise. HTTP threads add and abort requests through it (the engine allows that from
// any thread; the loop only needs waking).
#pragma once

#include <atomic>
#include <condition_variable>
#include <functional>
#include <mutex>
#include <string>
#include <thread>

#include "fp8llm/engine.h"

namespace fp8llm::server {

class EngineLoop {
 public:
  // `on_failure` is called once, on the loop's thread, if a step throws: the engine's state is
  // then unknown, so no request in it will finish and the loop stops stepping.
  EngineLoop(Engine& engine, std::function<void(const std::string&)> on_failure);
  ~EngineLoop();
  EngineLoop(const EngineLoop&) = delete;
  EngineLoop& operator=(const EngineLoop&) = delete;

  // Engine::add_request, then wakes the loop. An Error names the field at fault; an ApiError 503
  // once the engine has failed.
  uint64_t add(GenerationRequest request, TokenCallback on_token);
  // Engine::abort: the request's blocks are freed at the next step, which this wakes up for.
  void abort(uint64_t id);
  // The stats as the last step left them (Engine::stats; any thread).
  EngineStats stats() const { return engine_.stats(); }
  bool failed() const { return failed_; }
  std::string failure() const;
  // Ends the thread once the engine has no work left (cancel what is running first).
  void stop();

 private:
  void run();
  void wake();

  Engine& engine_;
  std::function<void(const std::string&)> on_failure_;
  std::mutex mutex_;
  std::condition_variable cv_;
  bool wake_ = false;
  bool stop_ = false;
  std::atomic<bool> failed_{false};
  mutable std::mutex failure_mutex_;  // guards failure_
  std::string failure_;
  std::thread thread_;
};

}  // namespace fp8llm::server
