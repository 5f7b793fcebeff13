// An owned cuBLASLt handle together with the device workspace its matmuls may use. Move-only.
#pragma once

#include <cstddef>

#include <cublasLt.h>

#include "backend/cuda/runtime/device_buffer.h"
#include "backend/cuda/runtime/unique_handle.h"

namespace fp8llm::cuda {

// cuBLAS recommends 32 MiB of workspace on Hopper.
inline constexpr size_t kCublasLtWorkspaceBytes = size_t{32} << 20;

class CublasLtHandle {
 public:
  explicit CublasLtHandle(size_t workspace_bytes = kCublasLtWorkspaceBytes);

  cublasLtHandle_t get() const { return handle_.get(); }
  void* workspace() const { return workspace_.data(); }
  size_t workspace_size() const { return workspace_.size(); }

 private:
  struct Destroy {
    void operator()(cublasLtHandle_t handle) const noexcept;
  };
  // Declared first, so the handle that may still use it is destroyed before it.
  DeviceBuffer workspace_;
  UniqueHandle<cublasLtHandle_t, Destroy> handle_;
};

}  // namespace fp8llm::cuda
