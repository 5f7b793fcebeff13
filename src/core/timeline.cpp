#include "core/timeline.h"

#include <algorithm>

namespace fp8llm {

void Timeline::add(std::string name, Clock::time_point begin) {
  const Clock::time_point end = Clock::now();
  TimedStep step;
  step.name = std::move(name);
  step.start = std::chrono::duration<double>(begin - origin_).count();
  step.seconds = std::chrono::duration<double>(end - begin).count();
  std::lock_guard lock(mu_);
  steps_.push_back(std::move(step));
}

std::vector<TimedStep> Timeline::steps() const {
  std::vector<TimedStep> out;
  {
    std::lock_guard lock(mu_);
    out = steps_;
  }
  std::stable_sort(out.begin(), out.end(),
                   [](const TimedStep& a, const TimedStep& b) { return a.start < b.start; });
  return out;
}

}  // namespace fp8llm
