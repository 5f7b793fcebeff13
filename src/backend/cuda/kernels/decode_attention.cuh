// Device pieces of the decode attention kernel (decode_attention_pipelined.cu): the block's shape,
// the merge of the lane groups' and key ranges' online softmaxes, and the launch.
#pragma once

#include <cuda_bf16.h>

#include <cuda_runtime.h>

#include <cmath>
#include <cstdint>
#include <stdexcept>
#include <type_traits>

#include "backend/cuda/kernels/fp8_device.cuh"
#include "backend/cuda/kernels/kv_elements.cuh"
#include "backend/cuda/kernels/paged_attention.h"
#include "fp8llm/modes.h"

namespace fp8llm::cuda::detail {

inline constexpr int kDecodeThreads = 128;
inline constexpr int kDecodeWarps = kDecodeThreads / 32;
inline constexpr int kDecodeHeadsPerBlock = 4;  // query heads of one KV head attended by a block

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

// Which (token, KV head, query heads, key range) a block attends, from its grid coordinates:
// grid (kv_heads x ceil(group / kDecodeHeadsPerBlock), decode tokens, kDecodeMaxSplits).
struct DecodeItem {
  int64_t t, kvh, h0, keys, chunk, splits, z;
  int nh;  // query heads of this block (the last block of a KV head may have fewer than four)
  __device__ DecodeItem(int64_t heads, int64_t kv_heads, const int64_t* positions) {
    constexpr int G = kDecodeHeadsPerBlock;
    t = blockIdx.y;
    const int64_t per_kv = heads / kv_heads;
    const int64_t head_blocks = (per_kv + G - 1) / G;
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

// The grid of a decode launch: (kv_heads x blocks of up to four of its query heads, tokens,
// kDecodeMaxSplits).
inline dim3 decode_grid(int64_t heads, int64_t kv_heads, int64_t decode_tokens) {
  const int64_t head_blocks = (heads / kv_heads + kDecodeHeadsPerBlock - 1) / kDecodeHeadsPerBlock;
  return dim3(static_cast<unsigned>(kv_heads * head_blocks), static_cast<unsigned>(decode_tokens),
              kDecodeMaxSplits);
}

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

// Launches the decode kernel kernel_of.template operator()<T, kHeadDim>() returns (both kernels
// take these parameters) for the cache's element type and head size, scale 1/sqrt(head_dim).
template <typename KernelOf>
void launch_decode_kernel(KernelOf&& kernel_of, const float* q, int64_t heads, int64_t kv_heads,
                          int64_t head_dim, const PagedBatch& b, int64_t decode_tokens,
                          const PagedKv& kv, const DecodeScratch& scratch, float* out,
                          cudaStream_t stream) {
  for_decode_layout(kv.dtype, head_dim, [&]<typename T, int kHeadDim>() {
    const float scale = 1.0f / std::sqrt(static_cast<float>(kHeadDim));
    const auto kernel = kernel_of.template operator()<T, kHeadDim>();
    kernel<<<decode_grid(heads, kv_heads, decode_tokens), kDecodeThreads, 0, stream>>>(
        q, heads, kv_heads, b.positions, b.token_seq, b.block_tables, b.max_blocks, kv.block_size,
        static_cast<const T*>(kv.k), static_cast<const T*>(kv.v), kv.k_scale, kv.v_scale, scale,
        out, scratch.partial, scratch.counters);
  });
}

// What the merge keeps in shared memory besides the groups' sums.
template <int kGroups>
struct DecodeMergeShared {
  static constexpr int G = kDecodeHeadsPerBlock;
  float m[kGroups][G];
  float l[kGroups][G];
  float w[kGroups][G];
  float big[G];
  float total[G];
  float range_w[kDecodeMaxSplits][G];
  float inv[G];
  bool last;
};

// After each lane group has stored its sums `acc`, maximum and total into shared memory (and the
// block has synchronized): merges the groups in group order into the range's result; with one
// range it is the output, else the range's partial, and the last range to finish (counted in
// `counters` at the block's first head, which it resets) merges the ranges in range order.
template <int kGroups, int kHeadDim>
__device__ void merge_decode_groups(const float (*acc)[kDecodeHeadsPerBlock][kHeadDim],
                                    DecodeMergeShared<kGroups>& s, const DecodeItem& it,
                                    int64_t heads, float* __restrict__ out,
                                    float* __restrict__ partial, int* __restrict__ counters) {
  constexpr int kThreads = kDecodeThreads;
  constexpr int64_t kStride = kHeadDim + 2;  // a range's partial: max, sum, weighted values
  const int nh = it.nh;
  const int64_t t = it.t, h0 = it.h0, splits = it.splits;
  // Each head's weights of the groups against the largest group max (a group that saw no key
  // has max -inf and weight 0; group 0 always sees the range's first key).
  if (threadIdx.x < nh) {
    const int g = threadIdx.x;
    float big = -INFINITY;
    for (int x = 0; x < kGroups; ++x) big = fmaxf(big, s.m[x][g]);
    float total = 0.0f;
    for (int x = 0; x < kGroups; ++x) {
      const float w = s.m[x][g] == -INFINITY ? 0.0f : expf(s.m[x][g] - big);
      s.w[x][g] = w;
      total += s.l[x][g] * w;
    }
    s.big[g] = big;
    s.total[g] = total;
  }
  __syncthreads();
  if (splits == 1) {
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
    partial[((t * heads + h0 + g) * kDecodeMaxSplits + it.z) * kStride + 2 + d] = sum;
  }
  if (threadIdx.x < nh) {
    float* mine = partial + ((t * heads + h0 + threadIdx.x) * kDecodeMaxSplits + it.z) * kStride;
    mine[0] = s.big[threadIdx.x];
    mine[1] = s.total[threadIdx.x];
  }
  __threadfence();  // this block's partials are visible before it is counted
  __syncthreads();
  int* counter = counters + t * heads + h0;
  if (threadIdx.x == 0) s.last = atomicAdd(counter, 1) == splits - 1;
  __syncthreads();
  if (!s.last) return;
  __threadfence();
  if (threadIdx.x < nh) {
    const int g = threadIdx.x;
    const float* parts = partial + (t * heads + h0 + g) * kDecodeMaxSplits * kStride;
    float top = -INFINITY;
    for (int64_t r = 0; r < splits; ++r) top = fmaxf(top, __ldcg(parts + r * kStride));
    float denominator = 0.0f;
    for (int64_t r = 0; r < splits; ++r) {
      const float mr = __ldcg(parts + r * kStride);
      const float w = mr == -INFINITY ? 0.0f : expf(mr - top);
      s.range_w[r][g] = w;
      denominator += __ldcg(parts + r * kStride + 1) * w;
    }
    s.inv[g] = 1.0f / denominator;
  }
  __syncthreads();
  for (int i = threadIdx.x; i < nh * kHeadDim; i += kThreads) {
    const int g = i / kHeadDim, d = i % kHeadDim;
    const float* parts = partial + (t * heads + h0 + g) * kDecodeMaxSplits * kStride;
    float sum = 0.0f;
    for (int64_t r = 0; r < splits; ++r)
      sum += __ldcg(parts + r * kStride + 2 + d) * s.range_w[r][g];
    out[(t * heads + h0 + g) * kHeadDim + d] = sum * s.inv[g];
  }
  if (threadIdx.x == 0) *counter = 0;
}

}  // namespace fp8llm::cuda::detail
