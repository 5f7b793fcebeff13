#include "backend/cuda/runtime/cuda_check.h"

#include <fmt/format.h>

#include <stdexcept>

namespace fp8llm::cuda {

void throw_cuda_error(cudaError_t err, const char* call, const char* file, int line) {
  throw std::runtime_error(fmt::format("CUDA error {} ({}) in {} at {}:{}", cudaGetErrorName(err),
                                       cudaGetErrorString(err), call, file, line));
}

void throw_cublas_error(cublasStatus_t st, const char* call, const char* file, int line) {
  throw std::runtime_error(fmt::format("cuBLAS error {} ({}) in {} at {}:{}",
                                       cublasLtGetStatusName(st), cublasLtGetStatusString(st), call,
                                       file, line));
}

}  // namespace fp8llm::cuda
