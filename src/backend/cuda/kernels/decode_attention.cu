// Kernels of decode_attention.h.
#include "backend/cuda/kernels/decode_attention.h"

#include <cuda_bf16.h>

#include <cmath>
#include <cstdint>
#include <stdexcept>
#include <type_traits>

#include "backend/cuda/kernels/decode_attention.cuh"
#include "backend/cuda/kernels/paged_slot.cuh"
#include "backend/cuda/runtime/cuda_check.h"

namespace fp8llm::cuda {
namespace {

using detail::DecodeItem;
using detail::DecodeLayout;
using detail::DecodeMergeShared;
using detail::Row16;
constexpr int kThreads = detail::kDecodeThreads;
constexpr int kHeadsPerBlock = detail::kDecodeHeadsPerBlock;

// grid (kv_heads x ceil(group / kHeadsPerBlock), decode tokens, kDecodeMaxSplits), kThreads.
// Lane group `group` (kLanes lanes, one key row between them) takes keys j_begin + group,
// + kGroups, ... of the block's range and keeps an online softmax per query head; the groups are
// merged in group order, then, with several ranges, the last range to finish (counted in
// `counters` at the block's first head, which it resets) merges the ranges in range order.
template <typename T, int kHeadDim>
__global__ void __launch_bounds__(kThreads)
    decode_attention_kernel(const float* __restrict__ q, int64_t heads, int64_t kv_heads,
                            const int64_t* __restrict__ positions,
                            const int32_t* __restrict__ token_seq,
                            const int32_t* __restrict__ block_tables, int64_t max_blocks,
                            int64_t block_size, const T* __restrict__ k_cache,
                            const T* __restrict__ v_cache, const float* __restrict__ k_scale,
                            const float* __restrict__ v_scale, float scale, float* __restrict__ out,
                            float* __restrict__ partial, int* __restrict__ counters) {
  using L = DecodeLayout<T, kHeadDim>;
  constexpr int kE = L::kE, kLanes = L::kLanes, kKeysPerWarp = L::kKeysPerWarp;
  constexpr int kGroups = L::kGroups;
  constexpr int G = kHeadsPerBlock;
  __shared__ float s_acc[kGroups][G][kHeadDim];
  __shared__ DecodeMergeShared<kGroups> s_merge;

  const DecodeItem it(heads, kv_heads, positions);
  const int64_t t = it.t, kvh = it.kvh, h0 = it.h0, chunk = it.chunk, z = it.z;
  const int64_t keys = it.keys;
  const int nh = it.nh;
  if (z >= it.splits) return;
  const int lane = threadIdx.x & 31;
  const int warp = threadIdx.x >> 5;
  const int sub = lane % kLanes;  // this lane's kE elements of a row start at sub * kE
  const int key_in_warp = lane / kLanes;
  const int group = warp * kKeysPerWarp + key_in_warp;
  const int32_t* table = block_tables + static_cast<int64_t>(token_seq[t]) * max_blocks;
  const detail::PagedSlot slot_of(block_size);

  float qv[G][kE];
  float m[G], l[G], acc[G][kE];
#pragma unroll
  for (int g = 0; g < G; ++g) {
    m[g] = -INFINITY;
    l[g] = 0.0f;
#pragma unroll
    for (int e = 0; e < kE; ++e) {
      qv[g][e] = g < nh ? q[(t * heads + h0 + g) * kHeadDim + sub * kE + e] : 0.0f;
      acc[g][e] = 0.0f;
    }
  }
  const int64_t j_begin = z * chunk;
  const int64_t j_end = j_begin + chunk < keys ? j_begin + chunk : keys;
  // `base` is the warp's first key of the round, the same on all its lanes (they shuffle).
  for (int64_t base = j_begin + warp * kKeysPerWarp; base < j_end; base += kGroups) {
    const int64_t j = base + key_in_warp;
    const bool valid = j < j_end;
    float kf[kE], vf[kE];
    if (valid) {
      const int64_t slot = slot_of(table, j);
      const int64_t row = (slot * kv_heads + kvh) * kHeadDim + sub * kE;
      const float ks = k_scale != nullptr ? k_scale[slot * kv_heads + kvh] : 1.0f;
      const float vs = v_scale != nullptr ? v_scale[slot * kv_heads + kvh] : 1.0f;
      Row16<T>::widen(__ldg(reinterpret_cast<const uint4*>(k_cache + row)), ks, kf);
      Row16<T>::widen(__ldg(reinterpret_cast<const uint4*>(v_cache + row)), vs, vf);
    } else {
#pragma unroll
      for (int e = 0; e < kE; ++e) kf[e] = vf[e] = 0.0f;
    }
#pragma unroll
    for (int g = 0; g < G; ++g) {
      if (g >= nh) break;  // nh is the block's: every lane leaves together
      float dot = 0.0f;
#pragma unroll
      for (int e = 0; e < kE; ++e) dot += qv[g][e] * kf[e];
#pragma unroll
      for (int o = kLanes / 2; o > 0; o >>= 1) dot += __shfl_xor_sync(0xffffffffu, dot, o);
      if (valid) {
        const float s = dot * scale;
        const float m_new = fmaxf(m[g], s);
        const float corr = expf(m[g] - m_new);
        const float p = expf(s - m_new);
        l[g] = l[g] * corr + p;
#pragma unroll
        for (int e = 0; e < kE; ++e) acc[g][e] = acc[g][e] * corr + p * vf[e];
        m[g] = m_new;
      }
    }
  }
#pragma unroll
  for (int g = 0; g < G; ++g) {
#pragma unroll
    for (int e = 0; e < kE; ++e) s_acc[group][g][sub * kE + e] = acc[g][e];
    if (sub == 0) {
      s_merge.m[group][g] = m[g];
      s_merge.l[group][g] = l[g];
    }
  }
  __syncthreads();
  detail::merge_decode_groups<kGroups, kHeadDim>(s_acc, s_merge, it, heads, out, partial, counters);
}

}  // namespace

bool decode_attention_supported(KvCacheDtype dtype, int64_t head_dim) {
  if (head_dim != 64 && head_dim != 128 && head_dim != 256) return false;
  return !(dtype == KvCacheDtype::F32 && head_dim == 256);
}

void launch_decode_attention(const float* q, int64_t heads, int64_t kv_heads, int64_t head_dim,
                             const PagedBatch& batch, int64_t decode_tokens, const PagedKv& kv,
                             const DecodeScratch& scratch, float* out, cudaStream_t stream,
                             DecodeKvLoads loads) {
  if (decode_tokens <= 0) return;
  if (!decode_attention_supported(kv.dtype, head_dim) || kv_heads <= 0 || heads % kv_heads != 0)
    throw std::invalid_argument("decode attention: unsupported head layout");
  if (loads == DecodeKvLoads::Pipelined)
    return launch_decode_attention_pipelined(q, heads, kv_heads, head_dim, batch, decode_tokens, kv,
                                             scratch, out, stream);
  detail::launch_decode_kernel(
      [&]<typename T, int kHeadDim>() { return &decode_attention_kernel<T, kHeadDim>; }, q, heads,
      kv_heads, head_dim, batch, decode_tokens, kv, scratch, out, stream);
  CUDA_CHECK_LAUNCH();
}

}  // namespace fp8llm::cuda
