#include "backend/cuda/filtered_sample.h"

#include <stdexcept>

#include "backend/cuda/block_reduce.cuh"
#include "backend/cuda/cuda_check.h"

namespace fp8llm::cuda {
namespace {

constexpr int kThreads = 1024;

// An unsigned key that orders like the float: a larger logit has a larger key.
__device__ __forceinline__ uint32_t rank_key(float v) {
  const uint32_t b = __float_as_uint(v);
  return (b & 0x80000000u) ? ~b : (b | 0x80000000u);
}
__device__ __forceinline__ float key_value(uint32_t k) {
  return __uint_as_float((k & 0x80000000u) ? (k & 0x7fffffffu) : ~k);
}

// Each thread owns a contiguous slice of the vocabulary, so that per-thread sums scanned over the
// threads follow id order.
struct Slice {
  int64_t begin, end;
};
__device__ __forceinline__ Slice my_slice(int64_t n) {
  const int64_t per = (n + kThreads - 1) / kThreads;
  const int64_t begin = threadIdx.x * per;
  return {begin < n ? begin : n, begin + per < n ? begin + per : n};
}

struct Boundary {
  uint32_t key;  // the boundary token's key
  double take;   // for counts: how many tokens with this key (lowest ids first) are in
  double above;  // for mass: the weight of the tokens ranked above the key
};

// Radix selection, 4 bits at a time from the top, of the key at which a running total taken in
// rank order reaches `target`: by count (each token adds 1) or by mass (each adds its weight).
// Each pass sums every digit's total per thread in registers and reduces them over the block in a
// fixed order: no atomics (contended ones serialize on a peaked distribution) and the same result
// every run.
constexpr int kDigits = 16;

template <bool kByMass>
__device__ Boundary select_key(const float* __restrict__ logits, int64_t n, float top, float inv_t,
                               double target, double* partial /* [warps][kDigits] */,
                               Boundary* s_result) {
  __shared__ double bins[kDigits];
  const int lane = threadIdx.x & 31;
  const int warp = threadIdx.x >> 5;
  if (threadIdx.x == 0) *s_result = {0u, target, 0.0};
  __syncthreads();
  for (int shift = 28; shift >= 0; shift -= 4) {
    const uint32_t prefix = s_result->key;
    const uint32_t high = shift == 28 ? 0u : (0xffffffffu << (shift + 4));
    double local[kDigits];
#pragma unroll
    for (int d = 0; d < kDigits; ++d) local[d] = 0.0;
    for (int64_t i = threadIdx.x; i < n; i += kThreads) {
      const uint32_t key = rank_key(logits[i]);
      if ((key & high) != (prefix & high)) continue;
      const double add = kByMass ? static_cast<double>(expf((logits[i] - top) * inv_t)) : 1.0;
      const uint32_t digit = (key >> shift) & (kDigits - 1);
#pragma unroll
      for (int d = 0; d < kDigits; ++d) local[d] += digit == static_cast<uint32_t>(d) ? add : 0.0;
    }
#pragma unroll
    for (int d = 0; d < kDigits; ++d) {
      double v = local[d];
#pragma unroll
      for (int off = 16; off > 0; off >>= 1) v += __shfl_xor_sync(0xffffffffu, v, off);
      if (lane == 0) partial[warp * kDigits + d] = v;
    }
    __syncthreads();
    // One thread per digit sums the warps' partial totals (in warp order), then one scans the
    // digits from the top.
    if (threadIdx.x < kDigits) {
      double bin = 0.0;
      for (int w = 0; w < kThreads / 32; ++w) bin += partial[w * kDigits + threadIdx.x];
      bins[threadIdx.x] = bin;
    }
    __syncthreads();
    if (threadIdx.x == 0) {
      double remaining = s_result->take;
      int d = kDigits - 1;
      for (; d > 0; --d) {
        const double bin = bins[d];
        if (bin >= remaining) break;
        remaining -= bin;
        s_result->above += bin;
      }
      s_result->key = prefix | (static_cast<uint32_t>(d) << shift);
      s_result->take = remaining;
    }
    __syncthreads();
  }
  const Boundary r = *s_result;
  __syncthreads();
  return r;
}

__global__ void __launch_bounds__(kThreads)
    filtered_sample_kernel(const float* __restrict__ logits, int64_t n, float inv_t, int64_t top_k,
                           float top_p, float min_p, double uniform, int32_t* __restrict__ id_out,
                           float* __restrict__ logprob_out) {
  __shared__ double partial[(kThreads / 32) * kDigits];
  __shared__ double scan[kThreads];
  __shared__ double scratch[kThreads / 32];
  __shared__ Boundary s_boundary;
  __shared__ int64_t s_pick;
  const Slice mine = my_slice(n);

  // The largest logit (its weight is 1), the raw softmax total for the log-probability, and the
  // min-p count.
  float top = -INFINITY;
  for (int64_t i = threadIdx.x; i < n; i += kThreads) top = fmaxf(top, logits[i]);
#pragma unroll
  for (int off = 16; off > 0; off >>= 1) top = fmaxf(top, __shfl_xor_sync(0xffffffffu, top, off));
  if ((threadIdx.x & 31) == 0) scratch[threadIdx.x >> 5] = top;
  if (threadIdx.x == 0) s_pick = -1;
  __syncthreads();
  top = scratch[0];
  for (int w = 1; w < kThreads / 32; ++w) top = fmaxf(top, scratch[w]);
  __syncthreads();
  double raw = 0.0, all_mass = 0.0, min_p_count = 0.0;
  for (int64_t i = threadIdx.x; i < n; i += kThreads) {
    raw += exp(static_cast<double>(logits[i]) - top);
    const float w = expf((logits[i] - top) * inv_t);
    all_mass += w;
    min_p_count += w >= min_p ? 1.0 : 0.0;
  }
  raw = block_sum_double<kThreads>(raw);
  all_mass = block_sum_double<kThreads>(all_mass);
  min_p_count = block_sum_double<kThreads>(min_p_count);

  // The candidates' count and mass (top-k; ties at the boundary carry equal weights).
  double keep = static_cast<double>(n);
  double candidates_mass = all_mass;
  if (top_k > 0 && top_k < n) {
    const Boundary b =
        select_key<false>(logits, n, top, inv_t, static_cast<double>(top_k), partial, &s_boundary);
    double above_mass = 0.0;
    for (int64_t i = threadIdx.x; i < n; i += kThreads) {
      if (rank_key(logits[i]) > b.key) above_mass += expf((logits[i] - top) * inv_t);
    }
    above_mass = block_sum_double<kThreads>(above_mass);
    candidates_mass = above_mass + b.take * expf((key_value(b.key) - top) * inv_t);
    keep = static_cast<double>(top_k);
  }
  if (min_p > 0.0f) keep = fmin(keep, fmax(min_p_count, 1.0));
  // top-p: the fewest top-ranked tokens whose mass reaches top_p of the candidates'.
  if (top_p < 1.0f) {
    const double target = static_cast<double>(top_p) * candidates_mass;
    const Boundary b = select_key<true>(logits, n, top, inv_t, target, partial, &s_boundary);
    double above_count = 0.0, ties = 0.0;
    for (int64_t i = threadIdx.x; i < n; i += kThreads) {
      const uint32_t key = rank_key(logits[i]);
      above_count += key > b.key ? 1.0 : 0.0;
      ties += key == b.key ? 1.0 : 0.0;
    }
    above_count = block_sum_double<kThreads>(above_count);
    ties = block_sum_double<kThreads>(ties);
    const double w = expf((key_value(b.key) - top) * inv_t);
    double take = w > 0.0 ? ceil((target - b.above) / w) : ties;
    take = fmin(fmax(take, 1.0), ties);
    keep = fmin(keep, above_count + take);
  }

  // The kept set: the top `keep` in rank order, ties at the boundary by lowest id.
  Boundary kept{0u, 0.0, 0.0};
  const bool all = keep >= static_cast<double>(n);
  if (!all) kept = select_key<false>(logits, n, top, inv_t, keep, partial, &s_boundary);
  double my_ties = 0.0;
  if (!all) {
    for (int64_t i = mine.begin; i < mine.end; ++i) my_ties += rank_key(logits[i]) == kept.key;
  }
  const double ties_before = block_inclusive_scan<kThreads>(my_ties, scan) - my_ties;
  const auto is_kept = [&](int64_t i, double& tie_index) {
    if (all) return true;
    const uint32_t key = rank_key(logits[i]);
    if (key > kept.key) return true;
    if (key < kept.key) return false;
    return tie_index++ < kept.take;
  };
  double mass = 0.0;
  double tie_index = ties_before;
  for (int64_t i = mine.begin; i < mine.end; ++i) {
    if (is_kept(i, tie_index)) mass += expf((logits[i] - top) * inv_t);
  }
  const double through = block_inclusive_scan<kThreads>(mass, scan);
  const double kept_total = scan[kThreads - 1];  // the scan leaves every thread's value in place
  const double target = uniform * kept_total;
  const double before = through - mass;
  if (mass > 0.0 && before <= target && target < through) {
    double acc = before;
    int64_t pick = -1;
    tie_index = ties_before;
    for (int64_t i = mine.begin; i < mine.end; ++i) {
      if (!is_kept(i, tie_index)) continue;
      acc += expf((logits[i] - top) * inv_t);
      pick = i;
      if (target < acc) break;
    }
    s_pick = pick;
  }
  __syncthreads();
  if (threadIdx.x == 0) {
    int64_t pick = s_pick;
    if (pick < 0) {
      // uniform * total rounded up to the total: the most likely token.
      pick = 0;
      for (int64_t i = 1; i < n; ++i)
        if (logits[i] > logits[pick]) pick = i;
    }
    *id_out = static_cast<int32_t>(pick);
    *logprob_out = static_cast<float>(static_cast<double>(logits[pick]) - top - log(raw));
  }
}

}  // namespace

void launch_filtered_sample(const float* logits, int64_t n, const SampleFilter& filter,
                            double uniform, int32_t* id_out, float* logprob_out,
                            cudaStream_t stream) {
  if (n <= 0 || !(filter.temperature > 0.0f))
    throw std::invalid_argument("launch_filtered_sample: no logits, or temperature <= 0");
  filtered_sample_kernel<<<1, kThreads, 0, stream>>>(logits, n, 1.0f / filter.temperature,
                                                     filter.top_k, filter.top_p, filter.min_p,
                                                     uniform, id_out, logprob_out);
  CUDA_CHECK_LAUNCH();
}

}  // namespace fp8llm::cuda
