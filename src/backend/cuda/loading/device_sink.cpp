#include "backend/cuda/loading/device_sink.h"

#include <cmath>
#include <vector>

#include "backend/cuda/kernels/elementwise.h"
#include "backend/cuda/kernels/model_kernels.h"
#include "backend/cuda/runtime/cuda_check.h"
#include "core/error.h"
#include "loader/value_checks.h"

namespace fp8llm::cuda {

const DeviceTensorSlot& DeviceSink::slot_of(const PlannedTensor& tensor) const {
  const DeviceTensorSlot* s = weights_.slot(tensor.spec.name);
  FP8LLM_CHECK(s != nullptr, "{}: tensor is not in the device weights' layout", tensor.spec.name);
  return *s;
}

void* DeviceSink::direct_destination(const PlannedTensor& tensor) {
  if (tensor.is_weight_scale) {
    scales_.push_back(&tensor);
    const DeviceTensorSlot& s = slot_of(tensor);
    // F32 scales of the final shape and an unpadded layout are read in place.
    const bool as_is = tensor.source.info->dtype == DType::F32 &&
                       tensor.source.info->shape == tensor.spec.shape && s.scale_ld == s.cols;
    if (!as_is) return nullptr;
    ++tensors_done_;
    return s.data;
  }
  if (tensor.prequantized) {
    FP8LLM_CHECK(tensor.source.info->dtype == DType::F8_E4M3, "{}: expected F8_E4M3, found {}",
                 tensor.spec.name, dtype_name(tensor.source.info->dtype));
    kept_.push_back(&tensor);
    ++tensors_done_;
    return slot_of(tensor).data;
  }
  if (tensor.quantize) return nullptr;
  kept_.push_back(&tensor);
  if (tensor.source.info->dtype != DType::BF16) return nullptr;  // converted on the device
  ++tensors_done_;
  return slot_of(tensor).data;
}

void DeviceSink::consume_on_device(const PlannedTensor& tensor, const void* device_source,
                                   cudaStream_t stream) {
  const DeviceTensorSlot& s = slot_of(tensor);
  const DType dtype = tensor.source.info->dtype;
  const int64_t numel = s.rows * s.cols;
  if (tensor.is_weight_scale) {
    const int64_t count = num_elements(tensor.source.info->shape);
    FP8LLM_CHECK(count == 1 || count == numel, "{}: {} scales where {} (or one) are expected",
                 tensor.spec.name, count, numel);
    launch_scales_to_f32(dtype, device_source, count, s.rows, s.cols, s.scale_ld,
                         static_cast<float*>(s.data), stream);
  } else if (tensor.quantize) {
    const auto* w = static_cast<const __nv_bfloat16*>(device_source);
    if (dtype != DType::BF16) {
      convert_.reserve_discard(static_cast<size_t>(numel) * 2);
      launch_to_bf16(dtype, device_source, numel, convert_.as<__nv_bfloat16>(), stream);
      w = convert_.as<__nv_bfloat16>();
    }
    // No wait here: finish() reports a NaN or an infinity, naming the tensor.
    quantizer_.enqueue(*tensor.quantize, w, s.rows, s.cols, static_cast<uint8_t*>(s.data), s.scales,
                       s.scale_ld, tensor.spec.name, stream);
  } else {
    launch_to_bf16(dtype, device_source, numel, static_cast<__nv_bfloat16*>(s.data), stream);
  }
  ++tensors_done_;
}

void DeviceSink::finish() {
  CUDA_CHECK(cudaDeviceSynchronize());
  quantizer_.check(nullptr);  // every quantization has run: its flags are final
  if (!kept_.empty()) {
    DeviceBuffer flags(kept_.size() * sizeof(int));
    CUDA_CHECK(cudaMemset(flags.data(), 0, flags.size()));
    for (size_t i = 0; i < kept_.size(); ++i) {
      const DeviceTensorSlot& s = slot_of(*kept_[i]);
      launch_flag_nonfinite(s.data, s.rows * s.cols, kept_[i]->prequantized.has_value(),
                            flags.as<int>() + i, nullptr);
    }
    std::vector<int> host(kept_.size());
    CUDA_CHECK(cudaMemcpy(host.data(), flags.data(), flags.size(), cudaMemcpyDeviceToHost));
    for (size_t i = 0; i < kept_.size(); ++i) {
      if (host[i] == 0) continue;
      // Only on failure: the tensor comes back so that the error names the element as the CPU
      // load does.
      const PlannedTensor& t = *kept_[i];
      const DeviceTensorSlot& s = slot_of(t);
      const DType dtype = t.prequantized ? DType::F8_E4M3 : DType::BF16;
      std::vector<std::byte> bytes(static_cast<size_t>(s.rows * s.cols) * dtype_size(dtype));
      CUDA_CHECK(cudaMemcpy(bytes.data(), s.data, bytes.size(), cudaMemcpyDeviceToHost));
      check_finite({dtype, t.spec.shape, bytes.data(), bytes.size()}, t.spec.name);
      fail("{}: contains a non-finite value", t.spec.name);
    }
  }
  for (const PlannedTensor* t : scales_) {
    const DeviceTensorSlot& s = slot_of(*t);
    std::vector<float> host(static_cast<size_t>(s.rows * s.scale_ld));
    CUDA_CHECK(
        cudaMemcpy(host.data(), s.data, host.size() * sizeof(float), cudaMemcpyDeviceToHost));
    for (int64_t r = 0; r < s.rows; ++r) {
      for (int64_t c = 0; c < s.cols; ++c) {
        const float v = host[static_cast<size_t>(r * s.scale_ld + c)];
        FP8LLM_CHECK(std::isfinite(v) && v > 0,
                     "{}: scale {} at [{}, {}] is not a finite positive number", t->spec.name, v, r,
                     c);
      }
    }
  }
  size_t free_bytes = 0, total_bytes = 0;
  CUDA_CHECK(cudaMemGetInfo(&free_bytes, &total_bytes));
  device_used_at_finish_ = total_bytes - free_bytes;
}

}  // namespace fp8llm::cuda
