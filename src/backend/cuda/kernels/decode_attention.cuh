// Device pieces of the decode attention kernel (decode_attention_pipelined.cu): the block's shape,
// which token, heads and ranges a block takes, and the merges of the lane groups' and the key
// ranges' online softmaxes.
#pragma once

#include <cuda_bf16.h>

#include <cuda_runtime.h>
#include <cuda/atomic>

#include <cmath>
#include <cstdint>
#include <type_traits>

#include "backend/cuda/kernels/fp8_device.cuh"
#include "backend/cuda/kernels/kv_elements.cuh"
#include "backend/cuda/kernels/paged_attention.h"
#include "fp8llm/modes.h"

namespace fp8llm::cuda::detail {

inline constexpr int kDecodeThreads = 128;
inline constexpr int kDecodeWarps = kDecodeThreads / 32;
inline constexpr int kDecodeHeadsPerBlock = 4;  // query heads of one KV head attended by a block
// The tensor-core kernel (decode_attention_mma.cu): every head of a KV head's group (at most
// eight) in one block, and the blocks an SM holds at once with `stages` 64-key steps in shared
// memory (it bounds them: 35 KiB a step for the 128-wide head).
inline constexpr int kDecodeMmaGroupHeads = 8;
__host__ __device__ constexpr int decode_mma_blocks_per_sm(int stages) {
  return stages == 3 ? 2 : 3;
}
// The CUDA-core kernel's blocks an SM holds at once, as its registers bound them (80 a thread
// with a bf16 cache and head size 128: 6 blocks of 128 threads in 64K registers).
inline constexpr int kDecodeCudaCoreBlocksPerSm = 6;

// The lane layout of a block for element type T and head size D: kLanes lanes read one key row
// (kElems elements each), a warp reads kKeysPerWarp rows at a time, the block kGroups.
template <typename T, int kHeadDim>
struct DecodeLayout {
  static constexpr int kE = Row16<T>::kElems;
  static constexpr int kLanes = kHeadDim / kE;
  static_assert(kLanes >= 2 && kLanes <= 32 && 32 % kLanes == 0, "a key row per lane group");
  static constexpr int kKeysPerWarp = 32 / kLanes;
  static constexpr int kGroups = kDecodeWarps * kKeysPerWarp;
};

// Blocks of up to `per_block` query heads a KV head's group takes.
__host__ __device__ inline int64_t decode_head_blocks(int64_t heads, int64_t kv_heads,
                                                      int64_t per_block = kDecodeHeadsPerBlock) {
  return (heads / kv_heads + per_block - 1) / per_block;
}

// Which (token, KV head, query heads) a block attends and the first of its key ranges, from its
// grid coordinates: grid (kv_heads x decode_head_blocks, decode tokens, range blocks); block z
// takes ranges z, z + gridDim.z, ... of the token's `splits`. A block takes up to G query heads.
struct DecodeItem {
  int64_t t, kvh, h0, keys, chunk, splits, z;
  int nh;  // query heads of this block (the last block of a KV head may have fewer than G)
  __device__ DecodeItem(int64_t heads, int64_t kv_heads, const int64_t* positions,
                        int G = kDecodeHeadsPerBlock) {
    t = blockIdx.y;
    const int64_t per_kv = heads / kv_heads;
    const int64_t head_blocks = decode_head_blocks(heads, kv_heads, G);
    kvh = blockIdx.x / head_blocks;
    const int64_t first = static_cast<int64_t>(blockIdx.x % head_blocks) * G;
    nh = static_cast<int>(per_kv - first < G ? per_kv - first : G);
    h0 = kvh * per_kv + first;
    keys = positions[t] + 1;
    chunk = decode_chunk(keys);
    splits = (keys + chunk - 1) / chunk;
    z = blockIdx.z;
  }
};

// Calls launch.template operator()<T, kHeadDim>() for the cache's element type and a head size
// decode_attention_supported takes (the caller checked).
template <typename Launch>
void for_decode_layout(KvCacheDtype dtype, int64_t head_dim, Launch&& launch) {
  const auto by_size = [&]<typename T>() {
    if (head_dim == 64) {
      launch.template operator()<T, 64>();
    } else if (head_dim == 128) {
      launch.template operator()<T, 128>();
    } else if constexpr (!std::is_same_v<T, float>) {
      launch.template operator()<T, 256>();
    }
  };
  with_kv_element_type(dtype, "decode attention", by_size);
}

// What the merge keeps in shared memory besides the groups' sums, for blocks of up to G heads.
template <int kGroups, int G = kDecodeHeadsPerBlock>
struct DecodeMergeShared {
  float m[kGroups][G];
  float l[kGroups][G];
  float w[kGroups][G];
  float big[G];
  float total[G];
  float range_w[kDecodeMaxSplits][G];
  float inv[G];
  bool last;
};

// e^x, or 2^x for a kernel whose scores are in base 2 (its maxima, and so its partials' too).
template <bool kBase2>
__device__ __forceinline__ float decode_exp(float x) {
  if constexpr (kBase2) {
    return exp2f(x);
  } else {
    return expf(x);
  }
}

// After each lane group has stored its sums `acc`, maximum and total into shared memory (and the
// block has synchronized): merges the groups in group order into the result of range `range`,
// the output when the token has one range, else the range's partial. Reads `acc` and `s` until
// it returns: the caller synchronizes before it reuses them.
template <int kGroups, int kHeadDim, int G = kDecodeHeadsPerBlock, bool kBase2 = false>
__device__ void store_decode_range(const float (*acc)[G][kHeadDim],
                                   DecodeMergeShared<kGroups, G>& s, const DecodeItem& it,
                                   int64_t range, int64_t heads, float* __restrict__ out,
                                   float* __restrict__ partial) {
  constexpr int kThreads = kDecodeThreads;
  constexpr int64_t kStride = kHeadDim + 2;  // a range's partial: max, sum, weighted values
  const int nh = it.nh;
  const int64_t t = it.t, h0 = it.h0;
  // Each head's weights of the groups against the largest group max (a group that saw no key
  // has max -inf and weight 0; group 0 always sees the range's first key).
  if (threadIdx.x < nh) {
    const int g = threadIdx.x;
    float big = -INFINITY;
    for (int x = 0; x < kGroups; ++x) big = fmaxf(big, s.m[x][g]);
    float total = 0.0f;
    for (int x = 0; x < kGroups; ++x) {
      const float w = s.m[x][g] == -INFINITY ? 0.0f : decode_exp<kBase2>(s.m[x][g] - big);
      s.w[x][g] = w;
      total += s.l[x][g] * w;
    }
    s.big[g] = big;
    s.total[g] = total;
  }
  __syncthreads();
  if (it.splits == 1) {
    for (int i = threadIdx.x; i < nh * kHeadDim; i += kThreads) {
      const int g = i / kHeadDim, d = i % kHeadDim;
      float sum = 0.0f;
      for (int x = 0; x < kGroups; ++x) sum += acc[x][g][d] * s.w[x][g];
      out[(t * heads + h0 + g) * kHeadDim + d] = sum * (1.0f / s.total[g]);
    }
    return;
  }
  for (int i = threadIdx.x; i < nh * kHeadDim; i += kThreads) {
    const int g = i / kHeadDim, d = i % kHeadDim;
    float sum = 0.0f;
    for (int x = 0; x < kGroups; ++x) sum += acc[x][g][d] * s.w[x][g];
    partial[((t * heads + h0 + g) * kDecodeMaxSplits + range) * kStride + 2 + d] = sum;
  }
  if (threadIdx.x < nh) {
    float* mine = partial + ((t * heads + h0 + threadIdx.x) * kDecodeMaxSplits + range) * kStride;
    mine[0] = s.big[threadIdx.x];
    mine[1] = s.total[threadIdx.x];
  }
}

// After the block has stored the partials of `done` of the token's ranges (it.splits > 1): the
// block that completes the count (kept in `counters` at the block's first head; it resets it)
// merges the ranges in range order into the output. A block that did every range is that block
// without counting.
template <int kGroups, int kHeadDim, int G = kDecodeHeadsPerBlock, bool kBase2 = false>
__device__ void merge_decode_ranges(DecodeMergeShared<kGroups, G>& s, const DecodeItem& it,
                                    int done, int64_t heads, float* __restrict__ out,
                                    const float* __restrict__ partial, int* __restrict__ counters) {
  constexpr int kThreads = kDecodeThreads;
  constexpr int64_t kStride = kHeadDim + 2;
  const int nh = it.nh;
  const int64_t t = it.t, h0 = it.h0, splits = it.splits;
  const bool alone = done == splits;
  int* counter = counters + t * heads + h0;
  // Every thread's partials are stored before thread 0 counts them with a release (the barrier
  // orders them before it), and the block that completes the count acquires every other block's
  // partials the same way: one ordered atomic a block instead of a sequentially consistent fence
  // on every thread. The same order, and no slower (docs/PERFORMANCE.md).
  __syncthreads();
  if (threadIdx.x == 0) {
    bool last = alone;
    if (!alone) {
      ::cuda::atomic_ref<int, ::cuda::thread_scope_device> stored(*counter);
      last = stored.fetch_add(done, ::cuda::memory_order_acq_rel) + done == splits;
    }
    s.last = last;
  }
  __syncthreads();
  if (!s.last) return;
  // A warp a head finds the ranges' weights against the largest range max (lane i takes ranges
  // i, i + 32, ...), so that 64 ranges cost two rounds of loads, not 64.
  const int warp = threadIdx.x >> 5, lane = threadIdx.x & 31;
  for (int g = warp; g < nh; g += kDecodeWarps) {
    const float* parts = partial + (t * heads + h0 + g) * kDecodeMaxSplits * kStride;
    float top = -INFINITY;
    for (int64_t r = lane; r < splits; r += 32) top = fmaxf(top, __ldcg(parts + r * kStride));
#pragma unroll
    for (int o = 16; o > 0; o >>= 1) top = fmaxf(top, __shfl_xor_sync(0xffffffffu, top, o));
    float denominator = 0.0f;
    for (int64_t r = lane; r < splits; r += 32) {
      const float mr = __ldcg(parts + r * kStride);
      const float w = mr == -INFINITY ? 0.0f : decode_exp<kBase2>(mr - top);
      s.range_w[r][g] = w;
      denominator += __ldcg(parts + r * kStride + 1) * w;
    }
#pragma unroll
    for (int o = 16; o > 0; o >>= 1) denominator += __shfl_xor_sync(0xffffffffu, denominator, o);
    if (lane == 0) s.inv[g] = 1.0f / denominator;
  }
  __syncthreads();
  // Each thread's elements, kThreads apart, summed over the ranges in range order. At one token
  // this one block's merge is the kernel's tail: with a load at a time it made 64 ranges 64
  // trips to the L2 for each element a thread holds, so a batch of ranges is requested at once.
  constexpr int kPer = (G * kHeadDim + kThreads - 1) / kThreads;
  constexpr int kBatch = 8;  // ranges whose loads are in flight together
  const int n = nh * kHeadDim;
  float sum[kPer];
#pragma unroll
  for (int e = 0; e < kPer; ++e) sum[e] = 0.0f;
  for (int64_t r0 = 0; r0 < splits; r0 += kBatch) {
    float v[kBatch][kPer];
#pragma unroll
    for (int b = 0; b < kBatch; ++b) {
#pragma unroll
      for (int e = 0; e < kPer; ++e) {
        const int i = threadIdx.x + e * kThreads;
        const int64_t r = r0 + b;
        const float* parts = partial + (t * heads + h0 + i / kHeadDim) * kDecodeMaxSplits * kStride;
        v[b][e] = i < n && r < splits ? __ldcg(parts + r * kStride + 2 + i % kHeadDim) : 0.0f;
      }
    }
#pragma unroll
    for (int b = 0; b < kBatch; ++b) {
#pragma unroll
      for (int e = 0; e < kPer; ++e) {
        const int i = threadIdx.x + e * kThreads;
        if (i < n && r0 + b < splits) sum[e] += v[b][e] * s.range_w[r0 + b][i / kHeadDim];
      }
    }
  }
#pragma unroll
  for (int e = 0; e < kPer; ++e) {
    const int i = threadIdx.x + e * kThreads;
    if (i < n)
      out[(t * heads + h0 + i / kHeadDim) * kHeadDim + i % kHeadDim] = sum[e] * s.inv[i / kHeadDim];
  }
  if (threadIdx.x == 0 && !alone) *counter = 0;
}

}  // namespace fp8llm::cuda::detail
