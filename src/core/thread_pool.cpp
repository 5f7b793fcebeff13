#include "core/thread_pool.h"

#include <algorithm>
#include <condition_variable>
#include <cstdlib>
#include <deque>
#include <exception>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

namespace fp8llm {
namespace {

thread_local bool t_inside_pool = false;

class ThreadPool {
 public:
  explicit ThreadPool(size_t threads) {
    for (size_t i = 0; i < threads; ++i) workers_.emplace_back([this] { work(); });
  }
  ~ThreadPool() {
    {
      std::lock_guard lock(mu_);
      stop_ = true;
    }
    cv_.notify_all();
    for (auto& w : workers_) w.join();
  }
  void submit(std::function<void()> task) {
    {
      std::lock_guard lock(mu_);
      tasks_.push_back(std::move(task));
    }
    cv_.notify_one();
  }

 private:
  void work() {
    t_inside_pool = true;
    for (;;) {
      std::function<void()> task;
      {
        std::unique_lock lock(mu_);
        cv_.wait(lock, [this] { return stop_ || !tasks_.empty(); });
        if (stop_ && tasks_.empty()) return;
        task = std::move(tasks_.front());
        tasks_.pop_front();
      }
      task();
    }
  }

  std::mutex mu_;
  std::condition_variable cv_;
  std::deque<std::function<void()>> tasks_;
  std::vector<std::thread> workers_;
  bool stop_ = false;
};

ThreadPool& pool() {
  // The caller's thread works too, so the pool holds one thread fewer than worker_count().
  static ThreadPool instance(worker_count() - 1);
  return instance;
}

}  // namespace

size_t worker_count() {
  static const size_t count = [] {
    if (const char* env = std::getenv("FP8LLM_THREADS")) {
      const long v = std::strtol(env, nullptr, 10);
      if (v > 0) return static_cast<size_t>(v);
    }
    return std::max<size_t>(1, std::thread::hardware_concurrency());
  }();
  return count;
}

void parallel_for(size_t n, size_t grain, const std::function<void(size_t, size_t)>& fn) {
  if (n == 0) return;
  grain = std::max<size_t>(grain, 1);
  const size_t max_chunks = (n + grain - 1) / grain;
  const size_t chunks = std::min(max_chunks, worker_count());
  if (chunks <= 1 || t_inside_pool) {
    fn(0, n);
    return;
  }
  std::mutex mu;
  std::condition_variable done_cv;
  size_t remaining = chunks - 1;
  std::exception_ptr first_error;
  auto run_chunk = [&](size_t c) {
    const size_t begin = n * c / chunks, end = n * (c + 1) / chunks;
    try {
      fn(begin, end);
    } catch (...) {
      std::lock_guard lock(mu);
      if (!first_error) first_error = std::current_exception();
    }
  };
  for (size_t c = 1; c < chunks; ++c) {
    pool().submit([&, c] {
      run_chunk(c);
      std::lock_guard lock(mu);
      if (--remaining == 0) done_cv.notify_one();
    });
  }
  run_chunk(0);
  std::unique_lock lock(mu);
  done_cv.wait(lock, [&] { return remaining == 0; });
  if (first_error) std::rethrow_exception(first_error);
}

}  // namespace fp8llm
