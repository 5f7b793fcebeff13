// A step of some longer piece of work (a load), timed from that work's start. Steps that run on
// other threads may overlap.
#pragma once

#include <string>

namespace fp8llm {

struct TimedStep {
  std::string name;
  double start = 0;    // seconds from the start of the work
  double seconds = 0;  // how long the step took
};

}  // namespace fp8llm
