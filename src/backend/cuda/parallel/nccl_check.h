// Every NCCL call goes through this check, so a failure names the call and where it was made
// (as CUDA_CHECK does for the runtime). Built only where NCCL is found (FP8LLM_NCCL).
#pragma once

#include <nccl.h>

namespace fp8llm::cuda {

[[noreturn]] void throw_nccl_error(ncclResult_t result, const char* call, const char* file,
                                   int line);

}  // namespace fp8llm::cuda

#define NCCL_CHECK(call)                                                         \
  do {                                                                           \
    ncclResult_t fp8llm_nccl_ = (call);                                          \
    if (fp8llm_nccl_ != ncclSuccess)                                             \
      ::fp8llm::cuda::throw_nccl_error(fp8llm_nccl_, #call, __FILE__, __LINE__); \
  } while (0)
