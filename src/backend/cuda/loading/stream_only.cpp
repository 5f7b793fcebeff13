#include "backend/cuda/loading/stream_only.h"

#include <algorithm>

#include "backend/cuda/runtime/device_buffer.h"

namespace fp8llm::cuda {
namespace {

class DiscardTarget : public DeviceStreamTarget {
 public:
  explicit DiscardTarget(const LoadPlan& plan) {
    uint64_t bytes = 0;
    for (const PlannedTensor& t : plan.tensors)
      if (!t.quantize) bytes += align(t.source.info->nbytes);
    arena_ = DeviceBuffer(std::max<uint64_t>(bytes, 1));
  }
  void* direct_destination(const PlannedTensor& t) override {
    if (t.quantize) return nullptr;
    std::byte* p = arena_.as<std::byte>() + used_;
    used_ += align(t.source.info->nbytes);
    return p;
  }
  void consume_on_device(const PlannedTensor&, const void*, cudaStream_t) override {}
  uint64_t direct_bytes() const { return used_; }

 private:
  static uint64_t align(uint64_t n) { return (n + 255) / 256 * 256; }
  DeviceBuffer arena_;
  uint64_t used_ = 0;
};

}  // namespace

StreamOnlyResult stream_only(const LoadPlan& plan, const DeviceStreamOptions& options) {
  DiscardTarget target(plan);
  StreamOnlyResult r;
  r.stats = stream_to_device(plan, target, options);
  r.direct_bytes = target.direct_bytes();
  return r;
}

}  // namespace fp8llm::cuda
