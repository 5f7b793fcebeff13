#include "backend/cuda/runtime/cublaslt_handle.h"

#include "backend/cuda/runtime/cuda_check.h"
#include "core/log.h"

namespace fp8llm::cuda {

CublasLtHandle::CublasLtHandle(size_t workspace_bytes) : workspace_(workspace_bytes) {
  cublasLtHandle_t handle = nullptr;
  CUBLAS_CHECK(cublasLtCreate(&handle));
  handle_ = UniqueHandle<cublasLtHandle_t, Destroy>(handle);
}

void CublasLtHandle::Destroy::operator()(cublasLtHandle_t handle) const noexcept {
  const cublasStatus_t st = cublasLtDestroy(handle);
  if (st != CUBLAS_STATUS_SUCCESS)
    log_warning("cublasLtDestroy failed: {}", cublasLtGetStatusName(st));
}

}  // namespace fp8llm::cuda
