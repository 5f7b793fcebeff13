// Every CUDA runtime and cuBLASLt call goes through these checks, so a failure names the call and
// where it was made.
#pragma once

#include <cublasLt.h>
#include <cuda_runtime.h>

namespace fp8llm::cuda {

[[noreturn]] void throw_cuda_error(cudaError_t err, const char* call, const char* file, int line);
[[noreturn]] void throw_cublas_error(cublasStatus_t st, const char* call, const char* file,
                                     int line);

}  // namespace fp8llm::cuda

#define CUDA_CHECK(call)                                                        \
  do {                                                                          \
    cudaError_t fp8llm_err_ = (call);                                           \
    if (fp8llm_err_ != cudaSuccess)                                             \
      ::fp8llm::cuda::throw_cuda_error(fp8llm_err_, #call, __FILE__, __LINE__); \
  } while (0)

#define CUBLAS_CHECK(call)                                                       \
  do {                                                                           \
    cublasStatus_t fp8llm_st_ = (call);                                          \
    if (fp8llm_st_ != CUBLAS_STATUS_SUCCESS)                                     \
      ::fp8llm::cuda::throw_cublas_error(fp8llm_st_, #call, __FILE__, __LINE__); \
  } while (0)

// After a kernel launch: reports launch-configuration errors at the launch site.
#define CUDA_CHECK_LAUNCH() CUDA_CHECK(cudaGetLastError())
