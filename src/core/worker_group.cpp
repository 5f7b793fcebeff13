#include "core/worker_group.h"

namespace fp8llm {

void WorkerGroup::start(size_t count, const std::function<void()>& body) {
  for (size_t i = 0; i < count; ++i) {
    threads_.emplace_back([this, body] {
      try {
        body();
      } catch (...) {
        {
          std::lock_guard lock(mu_);
          if (!error_) error_ = std::current_exception();
          stop_ = true;
        }
        cv_.notify_all();
      }
    });
  }
}

void WorkerGroup::stop_and_join() {
  {
    std::lock_guard lock(mu_);
    stop_ = true;
  }
  cv_.notify_all();
  join();
}

void WorkerGroup::join() {
  for (std::thread& t : threads_)
    if (t.joinable()) t.join();
  threads_.clear();
}

}  // namespace fp8llm
