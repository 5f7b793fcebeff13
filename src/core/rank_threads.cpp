#include "core/rank_threads.h"

#include "core/error.h"

namespace fp8llm {

RankThreads::RankThreads(int ranks) {
  FP8LLM_CHECK(ranks >= 1, "{} ranks: at least one is needed", ranks);
  for (int r = 1; r < ranks; ++r) workers_.emplace_back([this, r] { work(r); });
}

RankThreads::~RankThreads() {
  {
    std::lock_guard lock(mu_);
    stop_ = true;
  }
  start_cv_.notify_all();
  for (std::thread& w : workers_) w.join();
}

void RankThreads::run_rank(int rank) {
  try {
    (*fn_)(rank);
  } catch (...) {
    bool first = false;
    {
      std::lock_guard lock(mu_);
      first = !failed_;
      if (first) {
        failed_ = true;
        error_ = std::current_exception();
      }
    }
    // Outside the lock: it takes the collectives' own.
    if (first && on_failure_ != nullptr && *on_failure_) (*on_failure_)();
  }
}

void RankThreads::work(int rank) {
  uint64_t seen = 0;
  for (;;) {
    {
      std::unique_lock lock(mu_);
      start_cv_.wait(lock, [&] { return stop_ || job_ != seen; });
      if (stop_) return;
      seen = job_;
    }
    run_rank(rank);
    std::lock_guard lock(mu_);
    if (--remaining_ == 0) done_cv_.notify_all();
  }
}

void RankThreads::run(const std::function<void(int)>& fn, const std::function<void()>& on_failure) {
  {
    std::lock_guard lock(mu_);
    fn_ = &fn;
    on_failure_ = &on_failure;
    failed_ = false;
    error_ = nullptr;
    remaining_ = static_cast<int>(workers_.size());
    ++job_;
  }
  start_cv_.notify_all();
  run_rank(0);
  std::unique_lock lock(mu_);
  done_cv_.wait(lock, [&] { return remaining_ == 0; });
  fn_ = nullptr;
  on_failure_ = nullptr;
  if (failed_) std::rethrow_exception(error_);
}

}  // namespace fp8llm
