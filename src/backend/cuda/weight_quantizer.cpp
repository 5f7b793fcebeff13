#include "backend/cuda/weight_quantizer.h"

#include "backend/cuda/cuda_check.h"
#include "backend/cuda/fp8_quant.h"
#include "core/error.h"

namespace fp8llm::cuda {

DeviceWeightQuantizer::DeviceWeightQuantizer() : flag_(sizeof(int)), host_flag_(sizeof(int)) {}

void DeviceWeightQuantizer::quantize(Fp8Scheme scheme, const __nv_bfloat16* w, int64_t n, int64_t k,
                                     uint8_t* q, float* scales, int64_t scale_ld,
                                     std::string_view tensor_name, cudaStream_t stream) {
  FP8LLM_CHECK(n > 0 && k > 0, "{}: cannot quantize an empty weight [{}, {}]", tensor_name, n, k);
  FP8LLM_CHECK(scheme == Fp8Scheme::Row || scale_ld >= fp8_block_count(k),
               "{}: block scale leading dimension {} is smaller than ceil(K/128) = {}", tensor_name,
               scale_ld, fp8_block_count(k));
  CUDA_CHECK(cudaMemsetAsync(flag_.data(), 0, sizeof(int), stream));
  launch_quantize_weight(scheme, w, n, k, q, scales, scale_ld, flag_.as<int>(), stream);
  CUDA_CHECK(cudaMemcpyAsync(host_flag_.data(), flag_.data(), sizeof(int), cudaMemcpyDeviceToHost,
                             stream));
  CUDA_CHECK(cudaStreamSynchronize(stream));
  FP8LLM_CHECK(*host_flag_.as<int>() == 0,
               "{}: weight contains NaN or infinity; refusing to quantize it", tensor_name);
}

}  // namespace fp8llm::cuda
