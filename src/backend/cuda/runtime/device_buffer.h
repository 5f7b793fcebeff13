// Owning device memory: one cudaMalloc'd block freed when the object goes away. Move-only.
#pragma once

#include <cstddef>
#include <cstdint>
#include <span>
#include <vector>

#include <cuda_runtime.h>

#include "backend/cuda/runtime/unique_handle.h"

namespace fp8llm::cuda {

class DeviceBuffer {
 public:
  DeviceBuffer() = default;
  explicit DeviceBuffer(size_t bytes);

  void* data() const { return memory_.get().ptr; }
  size_t size() const { return memory_.get().bytes; }
  bool empty() const { return size() == 0; }
  template <typename T>
  T* as() const {
    return static_cast<T*>(data());
  }

  // Makes room for at least `bytes`; the contents are not kept when it has to grow.
  void reserve_discard(size_t bytes);

  // Synchronous copies between this buffer (from its start) and host memory.
  void upload(const void* host, size_t bytes);
  void download(void* host, size_t bytes) const;
  void fill_zero();

 private:
  struct Free {
    void operator()(MemoryBlock block) const noexcept;
  };
  UniqueHandle<MemoryBlock, Free> memory_;
};

// Convenience for tests and tools: a device copy of a host vector, and back.
template <typename T>
DeviceBuffer to_device(std::span<const T> host) {
  DeviceBuffer buf(host.size_bytes());
  buf.upload(host.data(), host.size_bytes());
  return buf;
}
template <typename T>
DeviceBuffer to_device(const std::vector<T>& host) {
  return to_device(std::span<const T>(host));
}
template <typename T>
std::vector<T> to_host(const DeviceBuffer& buf, size_t count) {
  std::vector<T> out(count);
  buf.download(out.data(), count * sizeof(T));
  return out;
}

}  // namespace fp8llm::cuda
