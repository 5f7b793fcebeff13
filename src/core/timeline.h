// Records where the time of one piece of work goes, as named steps measured from its start.
// Threads working for it may add steps concurrently; overlapping steps are how a reader sees that
// work was hidden behind other work.
#pragma once

#include <chrono>
#include <mutex>
#include <string>
#include <vector>

#include "fp8llm/timeline.h"

namespace fp8llm {

class Timeline {
 public:
  using Clock = std::chrono::steady_clock;

  explicit Timeline(Clock::time_point origin = Clock::now()) : origin_(origin) {}

  // Adds the step `name`, begun at `begin` and ending now.
  void add(std::string name, Clock::time_point begin);

  // Times a scope: the step ends when this goes out of scope.
  class Step {
   public:
    Step(Timeline* timeline, std::string name)
        : timeline_(timeline), name_(std::move(name)), begin_(Clock::now()) {}
    ~Step() {
      if (timeline_ != nullptr) timeline_->add(std::move(name_), begin_);
    }
    Step(const Step&) = delete;
    Step& operator=(const Step&) = delete;

   private:
    Timeline* timeline_;
    std::string name_;
    Clock::time_point begin_;
  };

  // The steps so far, in the order they began.
  std::vector<TimedStep> steps() const;

 private:
  Clock::time_point origin_;
  mutable std::mutex mu_;
  std::vector<TimedStep> steps_;
};

// A step of `timeline`, or nothing where there is no timeline to record into.
inline Timeline::Step timed_step(Timeline* timeline, std::string name) {
  return Timeline::Step(timeline, std::move(name));
}

}  // namespace fp8llm
