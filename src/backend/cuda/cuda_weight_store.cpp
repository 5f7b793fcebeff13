#include "backend/cuda/cuda_weight_store.h"

#include <cuda_runtime.h>

#include "backend/cuda/loading/weight_writer.h"
#include "backend/cuda/runtime/cuda_check.h"
#include "core/error.h"
#include "model/layer_members.h"

namespace fp8llm::cuda {
namespace {

// The linear layer a projection weight belongs to (nullptr for other roles).
const DeviceLinear* projection(const DeviceWeights& w, const WeightSpec& spec) {
  if (is_bias_role(spec.role)) return nullptr;
  const std::optional<LinearKind> kind = linear_kind_of(spec.role);
  if (!kind) return nullptr;
  if (*kind == LinearKind::LmHead) return &w.lm_head();
  return spec.layer < 0 ? nullptr : &layer_linear(w.layer(spec.layer), *kind);
}

const DeviceTensorSlot& slot_of(const DeviceWeights& w, const WeightSpec& spec) {
  const DeviceTensorSlot* s = w.slot(spec.name);
  FP8LLM_CHECK(s != nullptr && !s->is_scale, "{}: the CUDA backend holds no such tensor",
               spec.name);
  const int64_t rows = spec.shape.size() == 2 ? spec.shape[0] : 1;
  const int64_t cols = spec.shape.empty() ? 1 : spec.shape.back();
  FP8LLM_CHECK(spec.shape.size() <= 2 && s->rows == rows && s->cols == cols,
               "{}: held as [{}, {}], expected {}", spec.name, s->rows, s->cols,
               shape_str(spec.shape));
  return *s;
}

}  // namespace

HeldWeight CudaWeightStore::held_weight(const WeightSpec& spec) const {
  slot_of(weights_, spec);
  const DeviceLinear* lin = projection(weights_, spec);
  if (lin != nullptr && lin->is_fp8()) return {DType::F8_E4M3, lin->fp8.scheme};
  return {DType::BF16, std::nullopt};
}

void CudaWeightStore::read_weight(const WeightSpec& spec, std::span<std::byte> values,
                                  std::span<float> scales) const {
  const DeviceTensorSlot& s = slot_of(weights_, spec);
  const DeviceLinear* lin = projection(weights_, spec);
  const bool fp8 = lin != nullptr && lin->is_fp8();
  // The weights were written on the backend's stream; let that work finish before reading.
  CUDA_CHECK(cudaStreamSynchronize(stream_));
  if (!values.empty()) {
    const auto bytes = static_cast<size_t>(s.rows * s.cols) * (fp8 ? 1 : 2);
    FP8LLM_CHECK(values.size() == bytes, "{}: {} bytes asked for, the tensor has {}", spec.name,
                 values.size(), bytes);
    CUDA_CHECK(cudaMemcpy(values.data(), s.data, bytes, cudaMemcpyDeviceToHost));
  }
  if (scales.empty()) return;
  FP8LLM_CHECK(fp8, "{}: not an FP8 projection, it has no scales", spec.name);
  const Fp8DeviceWeight& w = lin->fp8;
  const Shape shape = weight_scale_shape(w.scheme, w.n, w.k);
  FP8LLM_CHECK(static_cast<int64_t>(scales.size()) == num_elements(shape),
               "{}: {} scales asked for, the weight has {}", spec.name, scales.size(),
               num_elements(shape));
  if (w.scheme == Fp8Scheme::Row) {
    CUDA_CHECK(
        cudaMemcpy(scales.data(), w.scales, scales.size() * sizeof(float), cudaMemcpyDeviceToHost));
    return;
  }
  const auto cols = static_cast<size_t>(shape[1]);
  FP8LLM_CHECK(w.scale_ld >= shape[1], "{}: block scales with a leading dimension of {} for {}",
               spec.name, w.scale_ld, shape[1]);
  CUDA_CHECK(cudaMemcpy2D(scales.data(), cols * sizeof(float), w.scales,
                          static_cast<size_t>(w.scale_ld) * sizeof(float), cols * sizeof(float),
                          static_cast<size_t>(shape[0]), cudaMemcpyDeviceToHost));
}

HeldMemory CudaWeightStore::memory(const WeightSpec& spec) {
  const DeviceTensorSlot& s = slot_of(weights_, spec);
  const DeviceLinear* lin = projection(weights_, spec);
  HeldMemory m{.values = static_cast<std::byte*>(s.data), .on_device = true};
  if (lin != nullptr && lin->is_fp8()) {
    // The scales the projection reads: its own slot's, or a pre-quantized checkpoint's scale slot.
    m.scales = const_cast<float*>(lin->fp8.scales);
    m.scale_row_stride = lin->fp8.scheme == Fp8Scheme::Row ? 1 : lin->fp8.scale_ld;
  }
  return m;
}

void CudaWeightStore::check_device_sources(std::span<const WeightWrite> writes) const {
  check_device_finite(writes, stream_);
}

void CudaWeightStore::write(std::span<const WeightWrite> writes) {
  FP8LLM_CHECK(!weights_.on_host(), "the weights are in host memory (asleep at level 2)");
  std::vector<SlotWrite> slots;
  for (const WeightWrite& w : writes) {
    const DeviceTensorSlot& s = slot_of(weights_, *w.spec);
    const DeviceLinear* lin = projection(weights_, *w.spec);
    SlotWrite out{.write = &w, .values = s.data, .rows = s.rows, .cols = s.cols};
    if (lin != nullptr && lin->is_fp8()) {
      out.scheme = lin->fp8.scheme;
      out.scales = const_cast<float*>(lin->fp8.scales);
      out.scale_ld = lin->fp8.scale_ld;
    }
    slots.push_back(out);
  }
  write_slots(slots, stream_);
}

void CudaWeightStore::offload() {
  CUDA_CHECK(cudaStreamSynchronize(stream_));
  weights_.move_to_host();
}

void CudaWeightStore::restore() {
  weights_.move_to_device();
}

}  // namespace fp8llm::cuda
