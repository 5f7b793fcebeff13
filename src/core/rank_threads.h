// Runs one function on N threads at once, one per rank: rank 0 on the calling thread, the others on
// threads of their own that live as long as this object (tensor parallelism on the CPU, where the
// ranks of a model are threads that meet in collectives).
#pragma once

#include <condition_variable>
#include <cstdint>
#include <exception>
#include <functional>
#include <mutex>
#include <thread>
#include <vector>

namespace fp8llm {

class RankThreads {
 public:
  explicit RankThreads(int ranks);
  ~RankThreads();
  RankThreads(const RankThreads&) = delete;
  RankThreads& operator=(const RankThreads&) = delete;

  int ranks() const { return static_cast<int>(workers_.size()) + 1; }

  // Calls fn(r) for every rank at once and returns when all have returned. At the first rank that
  // throws, `on_failure` runs (it must wake the ranks that wait for that one in a collective);
  // once every rank has returned, that first exception is rethrown.
  void run(const std::function<void(int)>& fn, const std::function<void()>& on_failure = {});

 private:
  void work(int rank);
  void run_rank(int rank);

  std::mutex mu_;
  std::condition_variable start_cv_, done_cv_;
  const std::function<void(int)>* fn_ = nullptr;
  const std::function<void()>* on_failure_ = nullptr;
  uint64_t job_ = 0;
  int remaining_ = 0;
  bool stop_ = false;
  bool failed_ = false;
  std::exception_ptr error_;
  std::vector<std::thread> workers_;
};

}  // namespace fp8llm
