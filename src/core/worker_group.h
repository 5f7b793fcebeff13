// Helper threads that work for one owning thread and coordinate with it through one mutex and
// condition variable. The first exception a helper throws is kept and stops the group; the owner
// sees it as error() and rethrows it. The group stops and joins its threads when destroyed, so an
// owner that throws never leaves a thread running.
#pragma once

#include <condition_variable>
#include <cstddef>
#include <exception>
#include <functional>
#include <mutex>
#include <thread>
#include <vector>

namespace fp8llm {

class WorkerGroup {
 public:
  WorkerGroup() = default;
  ~WorkerGroup() { stop_and_join(); }
  WorkerGroup(const WorkerGroup&) = delete;
  WorkerGroup& operator=(const WorkerGroup&) = delete;

  // Starts `count` threads running `body`. A body returns when its work is done or stopping()
  // says so (it must wait on cv() with a predicate that includes stopping()).
  void start(size_t count, const std::function<void()>& body);

  // Sets the stop flag, wakes every waiter and joins the threads.
  void stop_and_join();
  // Joins the threads after they have finished their work on their own.
  void join();

  std::mutex& mutex() { return mu_; }
  std::condition_variable& cv() { return cv_; }
  // With mutex() held: whether the group is stopping (asked to, or a helper failed), and the
  // helper's failure, if any.
  bool stopping() const { return stop_; }
  std::exception_ptr error() const { return error_; }
  // With mutex() held: rethrows a helper's failure.
  void rethrow_error() const {
    if (error_) std::rethrow_exception(error_);
  }

 private:
  std::mutex mu_;
  std::condition_variable cv_;
  bool stop_ = false;
  std::exception_ptr error_;
  std::vector<std::thread> threads_;
};

}  // namespace fp8llm
