#include "server/engine_loop.h"

#include <exception>

#include "core/log.h"
#include "server/api_error.h"

namespace fp8llm::server {

EngineLoop::EngineLoop(Engine& engine, std::function<void(const std::string&)> on_failure)
    : engine_(engine), on_failure_(std::move(on_failure)) {
  thread_ = std::thread([this] { run(); });
}

EngineLoop::~EngineLoop() {
  stop();
}

uint64_t EngineLoop::add(GenerationRequest request, TokenCallback on_token) {
  if (failed_) throw ApiError(503, "the engine failed: " + failure());
  const uint64_t id = engine_.add_request(std::move(request), std::move(on_token));
  wake();
  return id;
}

void EngineLoop::abort(uint64_t id) {
  engine_.abort(id);
  wake();
}

std::string EngineLoop::failure() const {
  std::lock_guard lock(failure_mutex_);
  return failure_;
}

void EngineLoop::stop() {
  {
    std::lock_guard lock(mutex_);
    stop_ = true;
  }
  cv_.notify_all();
  if (thread_.joinable()) thread_.join();
}

void EngineLoop::wake() {
  {
    std::lock_guard lock(mutex_);
    wake_ = true;
  }
  cv_.notify_one();
}

void EngineLoop::run() {
  std::unique_lock lock(mutex_);
  while (true) {
    cv_.wait(lock, [this] { return wake_ || stop_; });
    if (!wake_ && stop_) return;
    wake_ = false;
    lock.unlock();
    // Work added while stepping sets wake_ again, so nothing is missed between the last
    // has_unfinished() and the wait.
    try {
      while (!failed_ && engine_.has_unfinished()) engine_.step();
    } catch (const std::exception& e) {
      {
        std::lock_guard failure_lock(failure_mutex_);
        failure_ = e.what();
      }
      failed_ = true;
      log_message(LogLevel::Error, std::string("engine step failed: ") + e.what());
      on_failure_(e.what());
    }
    lock.lock();
  }
}

}  // namespace fp8llm::server
