#include "backend/cuda/parallel/nccl_check.h"

#include <fmt/format.h>

#include <stdexcept>

namespace fp8llm::cuda {

void throw_nccl_error(ncclResult_t result, const char* call, const char* file, int line) {
  throw std::runtime_error(fmt::format("NCCL error {} ({}) in {} at {}:{}",
                                       static_cast<int>(result), ncclGetErrorString(result), call,
                                       file, line));
}

}  // namespace fp8llm::cuda
