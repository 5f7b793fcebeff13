// Helpers over one row of logits, for greedy decoding and sampling.
#pragma once

#include <cstdint>

namespace fp8llm::cpu {

// Index of the largest of x[0 .. n): the first one on ties. A NaN counts as larger than any
// number, as in torch.argmax. Throws std::invalid_argument when n <= 0.
int64_t argmax(const float* x, int64_t n);

// out[i] = x[i] - log(sum_j exp(x[j])), computed stably around the maximum and accumulated in
// double. Entries of -inf stay -inf (masked tokens). out may be x.
void log_softmax(const float* x, int64_t n, float* out);

}  // namespace fp8llm::cpu
