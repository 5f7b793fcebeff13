#include "backend/cuda/runtime/cublaslt_handle.h"

#include <utility>

#include "backend/cuda/runtime/cuda_check.h"
#include "core/log.h"

namespace fp8llm::cuda {

CublasLtHandle::CublasLtHandle(size_t workspace_bytes) : workspace_(workspace_bytes) {
  CUBLAS_CHECK(cublasLtCreate(&handle_));
}

CublasLtHandle::~CublasLtHandle() {
  if (handle_ == nullptr) return;
  const cublasStatus_t st = cublasLtDestroy(handle_);
  if (st != CUBLAS_STATUS_SUCCESS)
    log_warning("cublasLtDestroy failed: {}", cublasLtGetStatusName(st));
}

CublasLtHandle::CublasLtHandle(CublasLtHandle&& other) noexcept
    : handle_(std::exchange(other.handle_, nullptr)), workspace_(std::move(other.workspace_)) {}

CublasLtHandle& CublasLtHandle::operator=(CublasLtHandle&& other) noexcept {
  std::swap(handle_, other.handle_);
  std::swap(workspace_, other.workspace_);
  return *this;
}

}  // namespace fp8llm::cuda
