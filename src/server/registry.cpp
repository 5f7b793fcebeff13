#include "server/registry.h"

#include <vector>

namespace fp8llm::server {

bool Registry::try_add(const std::shared_ptr<Generation>& g) {
  std::lock_guard lock(mutex_);
  if (sequences_ + g->choices() > limit_) return false;
  held_.insert(g);
  sequences_ += g->choices();
  return true;
}

void Registry::remove(const std::shared_ptr<Generation>& g) {
  std::lock_guard lock(mutex_);
  if (held_.erase(g) == 0) return;
  sequences_ -= g->choices();
  if (held_.empty()) emptied_.notify_all();
}

int64_t Registry::size() const {
  std::lock_guard lock(mutex_);
  return static_cast<int64_t>(held_.size());
}

bool Registry::wait_empty(std::chrono::steady_clock::time_point deadline) {
  std::unique_lock lock(mutex_);
  return emptied_.wait_until(lock, deadline, [this] { return held_.empty(); });
}

void Registry::cancel_all() {
  std::vector<std::shared_ptr<Generation>> all;
  {
    std::lock_guard lock(mutex_);
    all.assign(held_.begin(), held_.end());
  }
  for (const auto& g : all) g->cancel();
}

void Registry::fail_all(const std::string& message) {
  std::vector<std::shared_ptr<Generation>> all;
  {
    std::lock_guard lock(mutex_);
    all.assign(held_.begin(), held_.end());
  }
  for (const auto& g : all) g->fail(message);
}

}  // namespace fp8llm::server
