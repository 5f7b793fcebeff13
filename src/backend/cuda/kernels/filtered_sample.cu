#include "backend/cuda/kernels/filtered_sample.h"

#include <stdexcept>

#include "backend/cuda/kernels/block_reduce.cuh"
#include "backend/cuda/runtime/cuda_check.h"

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
      const double v = warp_sum(local[d]);
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

// The fast path gathers a superset of the kept tokens (at most kGatherCap) into shared memory,
// found from a histogram of the weights by binary exponent, and sorts it there.
constexpr int kGatherCap = 2 * kThreads;
constexpr int kBuckets = 64;

// Bucket of a weight in [0, 1] by its binary exponent: 0 for 1, 1 for [1/2, 1), ...; the last for
// the smallest and for 0. A larger weight never has a larger bucket.
__device__ __forceinline__ int weight_bucket(float w) {
  const int b = 127 - static_cast<int>((__float_as_uint(w) >> 23) & 0xffu);
  return b < 0 ? 0 : (b > kBuckets - 1 ? kBuckets - 1 : b);
}

// Shared memory of the fast path: first per-warp bucket histograms, then the gathered tokens.
struct WarpHistograms {
  unsigned count[kThreads / 32][kBuckets];
  float mass[kThreads / 32][kBuckets];
};
struct Gathered {
  float logit[kGatherCap];
  int32_t id[kGatherCap];
  uint16_t by_rank[kGatherCap];  // gathered positions, most likely first
  uint16_t rank[kGatherCap];     // each position's rank
};
union FastShared {
  WarpHistograms hist;
  Gathered g;
};

struct FastDraw {
  int32_t id;
};

// The draw among the tokens in weight buckets [0, buckets) (at most kGatherCap of them, a superset
// of the kept ones): gathered in id order into shared memory, sorted there by rank (bitonic), the
// filters applied to the ranks, and the draw walked in id order.
__device__ FastDraw fast_draw(const float* __restrict__ logits, Slice mine, float top, float inv_t,
                              int64_t n, int64_t top_k, float top_p, double min_p_count,
                              float min_p, double all_mass, double uniform, int buckets,
                              Gathered& g, double* scan) {
  __shared__ int s_pick;
  const auto weight = [&](float logit) { return expf((logit - top) * inv_t); };
  double my_count = 0.0;
  for (int64_t i = mine.begin; i < mine.end; ++i)
    my_count += weight_bucket(weight(logits[i])) < buckets ? 1.0 : 0.0;
  const double through_count = block_inclusive_scan<kThreads>(my_count, scan);
  const int m = static_cast<int>(scan[kThreads - 1]);
  int pos = static_cast<int>(through_count - my_count);
  for (int64_t i = mine.begin; i < mine.end; ++i) {
    if (weight_bucket(weight(logits[i])) >= buckets) continue;
    g.logit[pos] = logits[i];
    g.id[pos] = static_cast<int32_t>(i);
    ++pos;
  }
  int size = 1;
  while (size < m) size <<= 1;
  for (int p = threadIdx.x; p < size; p += kThreads) g.by_rank[p] = static_cast<uint16_t>(p);
  if (threadIdx.x == 0) s_pick = -1;
  __syncthreads();
  // a ranks before b (positions past the gathered ones rank last).
  const auto before = [&](int a, int b) {
    if (a >= m) return false;
    if (b >= m) return true;
    return g.logit[a] > g.logit[b] || (g.logit[a] == g.logit[b] && g.id[a] < g.id[b]);
  };
  for (int k = 2; k <= size; k <<= 1) {
    for (int j = k >> 1; j > 0; j >>= 1) {
      for (int t = threadIdx.x; t < size / 2; t += kThreads) {
        const int i = (t / j) * 2 * j + (t % j);
        const int l = i + j;
        const bool ascending = (i & k) == 0;
        const int a = g.by_rank[i], b = g.by_rank[l];
        if (before(b, a) == ascending) {
          g.by_rank[i] = static_cast<uint16_t>(b);
          g.by_rank[l] = static_cast<uint16_t>(a);
        }
      }
      __syncthreads();
    }
  }
  for (int r = threadIdx.x; r < m; r += kThreads) g.rank[g.by_rank[r]] = static_cast<uint16_t>(r);
  __syncthreads();

  // Each thread takes two ranks (and below, two positions): kGatherCap = 2 * kThreads.
  const int r0 = 2 * static_cast<int>(threadIdx.x), r1 = r0 + 1;
  const auto weight_at_rank = [&](int r) {
    return r < m ? static_cast<double>(weight(g.logit[g.by_rank[r]])) : 0.0;
  };
  const int64_t k1 = top_k > 0 && top_k < n ? top_k : n;
  double candidates_mass = all_mass;
  if (k1 < n) {
    candidates_mass = block_sum_double<kThreads>((r0 < k1 ? weight_at_rank(r0) : 0.0) +
                                                 (r1 < k1 ? weight_at_rank(r1) : 0.0));
  }
  double keep = static_cast<double>(k1);
  if (min_p > 0.0f) keep = fmin(keep, fmax(min_p_count, 1.0));
  if (top_p < 1.0f) {
    const double target = static_cast<double>(top_p) * candidates_mass;
    const double w0 = weight_at_rank(r0), w1 = weight_at_rank(r1);
    const double through = block_inclusive_scan<kThreads>(w0 + w1, scan);
    const double start = through - w0 - w1;
    // The ranks whose running total is still short of the target; the nucleus ends one later.
    const double short_of_target = block_sum_double<kThreads>(
        (r0 < m && start + w0 < target ? 1.0 : 0.0) + (r1 < m && through < target ? 1.0 : 0.0));
    if (short_of_target < m) keep = fmin(keep, short_of_target + 1.0);
  }

  // The draw, in id order over the kept tokens.
  const auto kept_weight = [&](int p) {
    return p < m && g.rank[p] < keep ? static_cast<double>(weight(g.logit[p])) : 0.0;
  };
  const double a = kept_weight(r0), b = kept_weight(r1);
  const double through = block_inclusive_scan<kThreads>(a + b, scan);
  const double target = uniform * scan[kThreads - 1];
  const double start = through - a - b;
  if (a + b > 0.0 && start <= target && target < through)
    s_pick = a > 0.0 && target < start + a ? r0 : r1;
  __syncthreads();
  const int p = s_pick >= 0 ? s_pick : g.by_rank[0];  // rounding at the very end: the top token
  return {g.id[p]};
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
  __shared__ FastShared fast;
  __shared__ unsigned bucket_count[kBuckets];
  __shared__ double bucket_mass[kBuckets];
  __shared__ int s_buckets;  // the fast path gathers the tokens in buckets [0, s_buckets); 0: off
  const Slice mine = my_slice(n);
  const int warp = threadIdx.x >> 5;

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
  for (int b = threadIdx.x; b < (kThreads / 32) * kBuckets; b += kThreads) {
    fast.hist.count[b / kBuckets][b % kBuckets] = 0;
    fast.hist.mass[b / kBuckets][b % kBuckets] = 0.0f;
  }
  __syncthreads();
  double raw = 0.0, all_mass = 0.0, min_p_count = 0.0;
  for (int64_t i = threadIdx.x; i < n; i += kThreads) {
    raw += static_cast<double>(expf(logits[i] - top));  // (float terms: within 1e-6 of double)
    const float w = expf((logits[i] - top) * inv_t);
    all_mass += w;
    min_p_count += w >= min_p ? 1.0 : 0.0;
    const int b = weight_bucket(w);
    atomicAdd(&fast.hist.count[warp][b], 1u);
    atomicAdd(&fast.hist.mass[warp][b], w);
  }
  raw = block_sum_double<kThreads>(raw);  // (its barriers also complete the histograms)
  all_mass = block_sum_double<kThreads>(all_mass);
  min_p_count = block_sum_double<kThreads>(min_p_count);
  if (threadIdx.x < kBuckets) {
    unsigned c = 0;
    double m = 0.0;
    for (int w = 0; w < kThreads / 32; ++w) {
      c += fast.hist.count[w][threadIdx.x];
      m += fast.hist.mass[w][threadIdx.x];
    }
    bucket_count[threadIdx.x] = c;
    bucket_mass[threadIdx.x] = m;
  }
  __syncthreads();
  // How many buckets hold a superset of the kept tokens: the top-k (whose mass top-p needs), or
  // else the tokens min-p keeps or the nucleus (the bucket masses are float sums: 1% margin).
  if (threadIdx.x == 0) {
    const bool by_top_k = top_k > 0 && top_k < n;
    int need = kBuckets + 1;
    unsigned count = 0;
    double mass = 0.0;
    for (int b = 0; b < kBuckets && need > kBuckets; ++b) {
      count += bucket_count[b];
      mass += bucket_mass[b];
      const bool covers =
          by_top_k ? count >= static_cast<uint64_t>(top_k)
                   : (top_p < 1.0f && mass >= 1.01 * static_cast<double>(top_p) * all_mass) ||
                         (min_p > 0.0f && b >= weight_bucket(min_p));
      if (covers) need = b + 1;
    }
    unsigned gathered = 0;
    for (int b = 0; b < need && b < kBuckets; ++b) gathered += bucket_count[b];
    s_buckets = need <= kBuckets && gathered <= kGatherCap ? need : 0;
  }
  __syncthreads();
  if (s_buckets > 0) {
    const FastDraw d = fast_draw(logits, mine, top, inv_t, n, top_k, top_p, min_p_count, min_p,
                                 all_mass, uniform, s_buckets, fast.g, scan);
    if (threadIdx.x == 0) {
      *id_out = d.id;
      *logprob_out = static_cast<float>(static_cast<double>(logits[d.id]) - top - log(raw));
    }
    return;
  }

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
