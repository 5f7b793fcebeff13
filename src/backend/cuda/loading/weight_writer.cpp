#include "backend/cuda/loading/weight_writer.h"

#include <algorithm>
#include <vector>

#include <cuda_bf16.h>

#include "backend/cuda/kernels/model_kernels.h"
#include "backend/cuda/kernels/nonfinite.h"
#include "backend/cuda/loading/weight_quantizer.h"
#include "backend/cuda/runtime/cuda_check.h"
#include "backend/cuda/runtime/device_buffer.h"
#include "core/error.h"

namespace fp8llm::cuda {
namespace {

// Host values (not an FP8 projection): through the staging buffer in pieces, converted into place.
void write_plain_from_host(const SlotWrite& s, DeviceBuffer& staging, cudaStream_t stream) {
  const WeightWrite& w = *s.write;
  const size_t element = dtype_size(w.dtype);
  const int64_t count = s.rows * s.cols;
  const auto per_piece = static_cast<int64_t>(kWeightStagingBytes / element);
  staging.reserve_discard(static_cast<size_t>(std::min(count, per_piece)) * element);
  auto* out = static_cast<__nv_bfloat16*>(s.values);
  for (int64_t at = 0; at < count; at += per_piece) {
    const int64_t n = std::min(per_piece, count - at);
    // Stream-ordered: the copy waits for the previous piece's conversion to be done with the
    // staging buffer.
    CUDA_CHECK(cudaMemcpyAsync(staging.data(), w.data + static_cast<size_t>(at) * element,
                               static_cast<size_t>(n) * element, cudaMemcpyHostToDevice, stream));
    launch_to_bf16(w.dtype, staging.data(), n, out + at, stream);
  }
}

// An FP8 projection from anything but bf16 on the device: bands of whole quantization tiles (128
// rows in block mode, any rows in row mode), each copied to the device if it is on the host and
// converted to bf16 if it is not bf16, then quantized into its rows of the slot.
void quantize_in_bands(const SlotWrite& s, DeviceBuffer& staging, DeviceWeightQuantizer& quantizer,
                       cudaStream_t stream) {
  const WeightWrite& w = *s.write;
  const size_t element = dtype_size(w.dtype);
  const bool copy = !w.on_device, convert = w.dtype != DType::BF16;
  const size_t row_bytes =
      std::max<size_t>(1, static_cast<size_t>(s.cols) * ((copy ? element : 0) + (convert ? 2 : 0)));
  const int64_t band = *s.scheme == Fp8Scheme::Block ? kFp8BlockSize : 1;
  const int64_t fit = static_cast<int64_t>(kWeightStagingBytes / row_bytes) / band * band;
  const int64_t rows_per_piece = std::min(s.rows, std::max(band, fit));
  const size_t raw_bytes = copy ? static_cast<size_t>(rows_per_piece * s.cols) * element : 0;
  staging.reserve_discard(static_cast<size_t>(rows_per_piece) * row_bytes + 256);
  auto* raw = staging.as<std::byte>();
  auto* bf16 = reinterpret_cast<__nv_bfloat16*>(raw + (raw_bytes + 255) / 256 * 256);
  auto* codes = static_cast<uint8_t*>(s.values);
  for (int64_t r0 = 0; r0 < s.rows; r0 += rows_per_piece) {
    const int64_t n = std::min(rows_per_piece, s.rows - r0);
    const std::byte* source = w.data + static_cast<size_t>(r0 * s.cols) * element;
    if (copy) {
      CUDA_CHECK(cudaMemcpyAsync(raw, source, static_cast<size_t>(n * s.cols) * element,
                                 cudaMemcpyHostToDevice, stream));
      source = raw;
    }
    const auto* values = reinterpret_cast<const __nv_bfloat16*>(source);
    if (convert) {
      launch_to_bf16(w.dtype, source, n * s.cols, bf16, stream);
      values = bf16;
    }
    float* scales =
        *s.scheme == Fp8Scheme::Row ? s.scales + r0 : s.scales + (r0 / band) * s.scale_ld;
    quantizer.enqueue(*s.scheme, values, n, s.cols, codes + r0 * s.cols, scales, s.scale_ld,
                      w.spec->name, stream);
  }
}

}  // namespace

void write_slots(std::span<const SlotWrite> writes, cudaStream_t stream) {
  // Sources on the device may have been written on other streams (a trainer's): let that work
  // finish before reading them.
  CUDA_CHECK(cudaDeviceSynchronize());
  DeviceBuffer staging;
  DeviceWeightQuantizer quantizer;
  for (const SlotWrite& s : writes) {
    const WeightWrite& w = *s.write;
    if (!s.scheme) {
      if (w.on_device) {
        launch_to_bf16(w.dtype, w.data, s.rows * s.cols, static_cast<__nv_bfloat16*>(s.values),
                       stream);
      } else {
        write_plain_from_host(s, staging, stream);
      }
    } else if (w.on_device && w.dtype == DType::BF16) {
      quantizer.enqueue(*s.scheme, reinterpret_cast<const __nv_bfloat16*>(w.data), s.rows, s.cols,
                        static_cast<uint8_t*>(s.values), s.scales, s.scale_ld, w.spec->name,
                        stream);
    } else {
      quantize_in_bands(s, staging, quantizer, stream);
    }
  }
  quantizer.check(stream);  // waits for the stream
}

void check_device_finite(std::span<const WeightWrite> writes, cudaStream_t stream) {
  if (writes.empty()) return;
  CUDA_CHECK(cudaDeviceSynchronize());  // as in write_slots
  DeviceBuffer flags(writes.size() * sizeof(int));
  CUDA_CHECK(cudaMemsetAsync(flags.data(), 0, flags.size(), stream));
  for (size_t i = 0; i < writes.size(); ++i) {
    launch_flag_nonfinite(writes[i].dtype, writes[i].data, num_elements(writes[i].spec->shape),
                          flags.as<int>() + i, stream);
  }
  std::vector<int> host(writes.size());
  CUDA_CHECK(
      cudaMemcpyAsync(host.data(), flags.data(), flags.size(), cudaMemcpyDeviceToHost, stream));
  CUDA_CHECK(cudaStreamSynchronize(stream));
  for (size_t i = 0; i < writes.size(); ++i) {
    FP8LLM_CHECK(host[i] == 0, "tensor '{}' holds a NaN or an infinity; nothing was written",
                 writes[i].spec->name);
  }
}

}  // namespace fp8llm::cuda
