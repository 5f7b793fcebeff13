// Sampling with top-k, top-p and min-p where the logits are (one block on the device), exactly as
// the host's Sampler defines it (src/engine/sampler.cpp) up to the order in which float sums are
// added: tokens rank by logit (higher first, then lower id); the candidates are the top_k (or all);
// weights are exp((logit - max) * (1 / temperature)) in float; min-p keeps weights >= min_p;
// top-p keeps the fewest top-ranked candidates whose weight reaches top_p of the candidates'
// total; the draw walks the kept tokens in id order up to uniform * their total.
#pragma once

#include <cuda_runtime.h>

#include <cstdint>

namespace fp8llm::cuda {

struct SampleFilter {
  float temperature = 1.0f;  // > 0
  int64_t top_k = 0;         // 0: off
  float top_p = 1.0f;        // 1: off
  float min_p = 0.0f;        // 0: off
};

// The drawn id into *id_out and the log-softmax of the raw logits there into *logprob_out (device
// memory), for logits[0..n) on the device and `uniform` in [0, 1).
void launch_filtered_sample(const float* logits, int64_t n, const SampleFilter& filter,
                            double uniform, int32_t* id_out, float* logprob_out,
                            cudaStream_t stream);

}  // namespace fp8llm::cuda
