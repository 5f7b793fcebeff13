#include "backend/cuda/cuda_lora.h"

#include <cuda_bf16.h>

#include <vector>

#include "backend/cuda/kernels/lora.h"
#include "backend/cuda/runtime/cuda_check.h"
#include "core/error.h"
#include "model/layer_members.h"

namespace fp8llm::cuda {

void CudaLora::reserve(const ModelConfig& config, int slots, int64_t max_rank, int64_t max_tokens) {
  FP8LLM_CHECK(slots > 0 && max_rank > 0, "lora: {} slots of rank {}", slots, max_rank);
  slots_ = slots;
  max_rank_ = max_rank;
  size_t at = 0;
  for (int64_t l = 0; l < config.num_layers; ++l) {
    for (LinearKind kind : kLayerLinearKinds) {
      Offsets o;
      o.shape = projection_shape(config, kind);
      o.a = at;
      at += static_cast<size_t>(max_rank * o.shape.in);
      o.b = at;
      at += static_cast<size_t>(o.shape.out * max_rank);
      offsets_[{l, kind}] = o;
    }
  }
  slot_elements_ = (at + 127) / 128 * 128;
  factors_ = DeviceBuffer(static_cast<size_t>(slots) * slot_elements_ * sizeof(__nv_bfloat16));
  factors_.fill_zero();
  scales_ = DeviceBuffer(static_cast<size_t>(slots) * sizeof(float));
  scales_.fill_zero();
  u_ = DeviceBuffer(static_cast<size_t>(max_tokens * max_rank) * sizeof(float));
}

void CudaLora::set(int slot, const LoraAdapter* adapter, cudaStream_t stream) {
  FP8LLM_CHECK(slot >= 0 && slot < slots_, "lora: slot {} of {}", slot, slots_);
  FP8LLM_CHECK(adapter == nullptr || adapter->rank <= max_rank_,
               "lora: rank {} exceeds the engine's --max-lora-rank {}",
               adapter == nullptr ? 0 : adapter->rank, max_rank_);
  auto* base = factors_.as<__nv_bfloat16>() + static_cast<size_t>(slot) * slot_elements_;
  CUDA_CHECK(cudaMemsetAsync(base, 0, slot_elements_ * sizeof(__nv_bfloat16), stream));
  const float scale = adapter == nullptr ? 0.0f : adapter->scale;
  CUDA_CHECK(cudaMemcpyAsync(scales_.as<float>() + slot, &scale, sizeof(float),
                             cudaMemcpyHostToDevice, stream));
  if (adapter != nullptr) {
    for (const LoraModule& m : adapter->modules) {
      const Offsets& o = offsets_.at({m.layer, m.kind});
      const auto r = static_cast<size_t>(adapter->rank);
      // A's rows are whole; B's rows are padded from rank to max_rank columns.
      CUDA_CHECK(cudaMemcpyAsync(base + o.a, m.a.data(), m.a.size() * sizeof(uint16_t),
                                 cudaMemcpyHostToDevice, stream));
      CUDA_CHECK(cudaMemcpy2DAsync(base + o.b, static_cast<size_t>(max_rank_) * sizeof(uint16_t),
                                   m.b.data(), r * sizeof(uint16_t), r * sizeof(uint16_t),
                                   static_cast<size_t>(o.shape.out), cudaMemcpyHostToDevice,
                                   stream));
    }
  }
  // The host vectors must outlive the copies.
  CUDA_CHECK(cudaStreamSynchronize(stream));
}

void CudaLora::apply(const float* x, int64_t in, int64_t layer, LinearKind kind,
                     const BatchView& batch, float* y, int64_t out, cudaStream_t stream) const {
  const Offsets& o = offsets_.at({layer, kind});
  FP8LLM_CHECK(o.shape.in == in && o.shape.out == out, "lora: [{}, {}] for a {} x {} projection",
               in, out, o.shape.out, o.shape.in);
  const auto* base = factors_.as<__nv_bfloat16>();
  launch_lora({.x = x,
               .y = y,
               .tokens = batch.num_tokens,
               .in = in,
               .out = out,
               .max_rank = max_rank_,
               .a = base + o.a,
               .b = base + o.b,
               .slot_stride = static_cast<int64_t>(slot_elements_),
               .scales = scales_.as<float>(),
               .token_lora = batch.token_lora,
               .u = u_.as<float>()},
              stream);
}

}  // namespace fp8llm::cuda
