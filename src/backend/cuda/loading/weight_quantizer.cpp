#include "backend/cuda/loading/weight_quantizer.h"

#include "backend/cuda/kernels/fp8_quant.h"
#include "backend/cuda/runtime/cuda_check.h"
#include "core/error.h"

namespace fp8llm::cuda {

void DeviceWeightQuantizer::enqueue(Fp8Scheme scheme, const __nv_bfloat16* w, int64_t n, int64_t k,
                                    uint8_t* q, float* scales, int64_t scale_ld,
                                    std::string_view tensor_name, cudaStream_t stream) {
  FP8LLM_CHECK(n > 0 && k > 0, "{}: cannot quantize an empty weight [{}, {}]", tensor_name, n, k);
  FP8LLM_CHECK(scheme == Fp8Scheme::Row || scale_ld >= fp8_block_count(k),
               "{}: block scale leading dimension {} is smaller than ceil(K/128) = {}", tensor_name,
               scale_ld, fp8_block_count(k));
  const size_t index = names_.size();
  if (index % kFlagsPerBlock == 0) {
    flag_blocks_.emplace_back(kFlagsPerBlock * sizeof(int));
    CUDA_CHECK(
        cudaMemsetAsync(flag_blocks_.back().data(), 0, kFlagsPerBlock * sizeof(int), stream));
  }
  int* flag = flag_blocks_.back().as<int>() + index % kFlagsPerBlock;
  launch_quantize_weight(scheme, w, n, k, q, scales, scale_ld, flag, stream);
  names_.emplace_back(tensor_name);
}

void DeviceWeightQuantizer::check(cudaStream_t stream) {
  if (names_.empty()) return;
  PinnedBuffer host(flag_blocks_.size() * kFlagsPerBlock * sizeof(int));
  for (size_t b = 0; b < flag_blocks_.size(); ++b) {
    CUDA_CHECK(cudaMemcpyAsync(host.as<int>() + b * kFlagsPerBlock, flag_blocks_[b].data(),
                               kFlagsPerBlock * sizeof(int), cudaMemcpyDeviceToHost, stream));
  }
  CUDA_CHECK(cudaStreamSynchronize(stream));
  const std::vector<std::string> names = std::move(names_);
  names_.clear();
  flag_blocks_.clear();
  for (size_t i = 0; i < names.size(); ++i) {
    FP8LLM_CHECK(host.as<int>()[i] == 0,
                 "{}: weight contains NaN or infinity; refusing to quantize it", names[i]);
  }
}

void DeviceWeightQuantizer::quantize(Fp8Scheme scheme, const __nv_bfloat16* w, int64_t n, int64_t k,
                                     uint8_t* q, float* scales, int64_t scale_ld,
                                     std::string_view tensor_name, cudaStream_t stream) {
  enqueue(scheme, w, n, k, q, scales, scale_ld, tensor_name, stream);
  check(stream);
}

}  // namespace fp8llm::cuda
