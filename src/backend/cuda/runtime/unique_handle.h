// One owned CUDA resource: a handle and the deleter that releases it. Move-only; a moved-from
// object holds nothing (a value-initialized handle). The classes of this directory (device and
// pinned memory, streams, events, graphs, the cuBLASLt handle) each hold one, so that none writes
// out its own moves and destructor.
#pragma once

#include <cstddef>
#include <utility>

namespace fp8llm::cuda {

// The handle of an allocation: where it starts and how many bytes it has.
struct MemoryBlock {
  void* ptr = nullptr;
  size_t bytes = 0;
  friend bool operator==(const MemoryBlock&, const MemoryBlock&) = default;
};

// `Handle` is a raw handle type (or a small struct such as a pointer with its size) whose
// value-initialized form means "none"; `Deleter` is callable as deleter(handle) and does not
// throw: a destructor cannot, and a failing release means the CUDA context is already broken,
// which the next checked call reports, so deleters log instead.
template <typename Handle, typename Deleter>
class UniqueHandle {
 public:
  UniqueHandle() = default;
  explicit UniqueHandle(Handle handle) noexcept : handle_(handle) {}
  ~UniqueHandle() { reset(); }
  UniqueHandle(UniqueHandle&& other) noexcept : handle_(std::exchange(other.handle_, Handle{})) {}
  UniqueHandle& operator=(UniqueHandle&& other) noexcept {
    if (this != &other) {
      reset();
      handle_ = std::exchange(other.handle_, Handle{});
    }
    return *this;
  }
  UniqueHandle(const UniqueHandle&) = delete;
  UniqueHandle& operator=(const UniqueHandle&) = delete;

  const Handle& get() const { return handle_; }
  bool empty() const { return handle_ == Handle{}; }

  // Releases the handle now (if any); the object then holds nothing.
  void reset() noexcept {
    if (!empty()) Deleter{}(std::exchange(handle_, Handle{}));
  }

 private:
  Handle handle_{};
};

}  // namespace fp8llm::cuda
