// An owned cuBLASLt handle together with the device workspace its matmuls may use. Move-only.
#pragma once

#include <cstddef>

#include <cublasLt.h>

#include "backend/cuda/runtime/device_buffer.h"

namespace fp8llm::cuda {

// cuBLAS recommends 32 MiB of workspace on Hopper.
inline constexpr size_t kCublasLtWorkspaceBytes = size_t{32} << 20;

class CublasLtHandle {
 public:
  explicit CublasLtHandle(size_t workspace_bytes = kCublasLtWorkspaceBytes);
  ~CublasLtHandle();
  CublasLtHandle(CublasLtHandle&& other) noexcept;
  CublasLtHandle& operator=(CublasLtHandle&& other) noexcept;
  CublasLtHandle(const CublasLtHandle&) = delete;
  CublasLtHandle& operator=(const CublasLtHandle&) = delete;

  cublasLtHandle_t get() const { return handle_; }
  void* workspace() const { return workspace_.data(); }
  size_t workspace_size() const { return workspace_.size(); }

 private:
  cublasLtHandle_t handle_ = nullptr;
  DeviceBuffer workspace_;
};

}  // namespace fp8llm::cuda
