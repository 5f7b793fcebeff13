#include "backend/cuda/runtime/dependent_launch.h"

#include <cstdlib>
#include <cstring>

#include "backend/cuda/runtime/device.h"

namespace fp8llm::cuda {

bool dependent_launch_enabled(Overlap kind) {
  static const int level = [] {
    if (device_compute_capability() < 90) return 0;
    const char* env = std::getenv("FP8LLM_DEPENDENT_LAUNCH");
    if (env != nullptr && std::strlen(env) == 1 && env[0] >= '0' && env[0] <= '2')
      return env[0] - '0';
    return 2;
  }();
  return level >= static_cast<int>(kind);
}

}  // namespace fp8llm::cuda
