// Greedy picks and draws at a temperature for rows of logits (model/token_picker.h defines both).
// One block per row reads a 128k-token row at a small fraction of the card's bandwidth (59 us per
// greedy pick on an H100, a sixtieth of a batch-1 decode step), so each row is cut into pieces of
// at least kMinPieceLogits that blocks across the card reduce at once, and a second launch
// combines the pieces of each row. The scratch between the two launches is the caller's
// (token_pick_scratch_bytes). All pointers are device memory; launches are asynchronous on
// `stream`.
#pragma once

#include <cuda_runtime.h>

#include <cstddef>
#include <cstdint>

namespace fp8llm::cuda {

// Bytes of scratch the launches below need for `count` rows of `n` logits.
size_t token_pick_scratch_bytes(int64_t n, int64_t count);

// For each i < count: the first index of the largest logit of row rows[i] (row i when rows is
// null) into ids[i], and its log-softmax (summed in double) into logprobs[i], as
// model/top_token.h computes on the host.
void launch_top_tokens(const float* logits, int64_t n, const int32_t* rows, int64_t count,
                       int32_t* ids, float* logprobs, void* scratch, cudaStream_t stream);

// For each i < count, a draw from softmax(row rows[i] of logits / temperatures[i]) with
// uniforms[i] in [0, 1): the first index at which the running sum (index order) of
// exp((logit - max) / temperature) exceeds uniform * total; and the raw log-softmax there, into
// ids[i] and logprobs[i].
void launch_sample_tokens(const float* logits, int64_t n, const int32_t* rows,
                          const float* temperatures, const double* uniforms, int64_t count,
                          int32_t* ids, float* logprobs, void* scratch, cudaStream_t stream);

}  // namespace fp8llm::cuda
