// Kernels of decode_attention.h.
#include "backend/cuda/kernels/decode_attention.h"

#include <cuda_bf16.h>

#include <cmath>
#include <cstdint>
#include <stdexcept>
#include <type_traits>

#include "backend/cuda/kernels/fp8_device.cuh"
#include "backend/cuda/runtime/cuda_check.h"

namespace fp8llm::cuda {
namespace {

using detail::e4m3_to_float;

constexpr int kThreads = 128;
constexpr int kWarps = kThreads / 32;
constexpr int kHeadsPerBlock = 4;  // query heads of one KV head attended by one block
// 16 bytes of a cached K or V row widened to fp32, element by element as kv_load widens one
// (kv_elements.cuh): fp32 as is, bf16 exactly, e4m3 times its row's scale.
template <typename T>
struct Row16;
template <>
struct Row16<float> {
  static constexpr int kElems = 4;
  __device__ static void widen(const uint4 r, float, float* out) {
    out[0] = __uint_as_float(r.x);
    out[1] = __uint_as_float(r.y);
    out[2] = __uint_as_float(r.z);
    out[3] = __uint_as_float(r.w);
  }
};
template <>
struct Row16<__nv_bfloat16> {
  static constexpr int kElems = 8;
  __device__ static void widen(const uint4 r, float, float* out) {
    const uint32_t w[4] = {r.x, r.y, r.z, r.w};
#pragma unroll
    for (int i = 0; i < 4; ++i) {
      out[2 * i] = __uint_as_float(w[i] << 16);  // the lower address holds the first element
      out[2 * i + 1] = __uint_as_float(w[i] & 0xffff0000u);
    }
  }
};
template <>
struct Row16<uint8_t> {
  static constexpr int kElems = 16;
  __device__ static void widen(const uint4 r, float scale, float* out) {
    const uint32_t w[4] = {r.x, r.y, r.z, r.w};
#pragma unroll
    for (int i = 0; i < 4; ++i) {
#pragma unroll
      for (int b = 0; b < 4; ++b)
        out[4 * i + b] = __fmul_rn(e4m3_to_float(static_cast<uint8_t>(w[i] >> (8 * b))), scale);
    }
  }
};

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
                            const float* __restrict__ v_scale, float scale,
                            float* __restrict__ out, float* __restrict__ partial,
                            int* __restrict__ counters) {
  constexpr int kE = Row16<T>::kElems;
  constexpr int kLanes = kHeadDim / kE;
  static_assert(kLanes >= 2 && kLanes <= 32 && 32 % kLanes == 0, "a key row per lane group");
  constexpr int kKeysPerWarp = 32 / kLanes;
  constexpr int kGroups = kWarps * kKeysPerWarp;
  constexpr int G = kHeadsPerBlock;
  constexpr int64_t kStride = kHeadDim + 2;  // a range's partial: max, sum, weighted values
  __shared__ float s_acc[kGroups][G][kHeadDim];
  __shared__ float s_m[kGroups][G];
  __shared__ float s_l[kGroups][G];
  __shared__ float s_w[kGroups][G];
  __shared__ float s_big[G];
  __shared__ float s_total[G];
  __shared__ float s_range_w[kDecodeMaxSplits][G];
  __shared__ float s_inv[G];
  __shared__ bool s_last;

  const int64_t t = blockIdx.y;
  const int64_t per_kv = heads / kv_heads;
  const int64_t head_blocks = (per_kv + G - 1) / G;
  const int64_t kvh = blockIdx.x / head_blocks;
  const int64_t first = static_cast<int64_t>(blockIdx.x % head_blocks) * G;
  const int nh = static_cast<int>(per_kv - first < G ? per_kv - first : G);
  const int64_t h0 = kvh * per_kv + first;
  const int64_t keys = positions[t] + 1;
  const int64_t chunk = decode_chunk(keys);
  const int64_t splits = (keys + chunk - 1) / chunk;
  const int64_t z = blockIdx.z;
  if (z >= splits) return;
  const int lane = threadIdx.x & 31;
  const int warp = threadIdx.x >> 5;
  const int sub = lane % kLanes;  // this lane's kE elements of a row start at sub * kE
  const int key_in_warp = lane / kLanes;
  const int group = warp * kKeysPerWarp + key_in_warp;
  const int32_t* table = block_tables + static_cast<int64_t>(token_seq[t]) * max_blocks;

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
      const int64_t slot =
          static_cast<int64_t>(table[j / block_size]) * block_size + j % block_size;
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
      s_m[group][g] = m[g];
      s_l[group][g] = l[g];
    }
  }
  __syncthreads();
  // Each head's weights of the groups against the largest group max (a group that saw no key
  // has max -inf and weight 0; group 0 always sees the range's first key).
  if (threadIdx.x < nh) {
    const int g = threadIdx.x;
    float big = -INFINITY;
    for (int x = 0; x < kGroups; ++x) big = fmaxf(big, s_m[x][g]);
    float total = 0.0f;
    for (int x = 0; x < kGroups; ++x) {
      const float w = s_m[x][g] == -INFINITY ? 0.0f : expf(s_m[x][g] - big);
      s_w[x][g] = w;
      total += s_l[x][g] * w;
    }
    s_big[g] = big;
    s_total[g] = total;
  }
  __syncthreads();
  if (splits == 1) {
    for (int i = threadIdx.x; i < nh * kHeadDim; i += kThreads) {
      const int g = i / kHeadDim, d = i % kHeadDim;
      float sum = 0.0f;
      for (int x = 0; x < kGroups; ++x) sum += s_acc[x][g][d] * s_w[x][g];
      out[(t * heads + h0 + g) * kHeadDim + d] = sum * (1.0f / s_total[g]);
    }
    return;
  }
  for (int i = threadIdx.x; i < nh * kHeadDim; i += kThreads) {
    const int g = i / kHeadDim, d = i % kHeadDim;
    float sum = 0.0f;
    for (int x = 0; x < kGroups; ++x) sum += s_acc[x][g][d] * s_w[x][g];
    partial[((t * heads + h0 + g) * kDecodeMaxSplits + z) * kStride + 2 + d] = sum;
  }
  if (threadIdx.x < nh) {
    float* mine = partial + ((t * heads + h0 + threadIdx.x) * kDecodeMaxSplits + z) * kStride;
    mine[0] = s_big[threadIdx.x];
    mine[1] = s_total[threadIdx.x];
  }
  __threadfence();  // this block's partials are visible before it is counted
  __syncthreads();
  int* counter = counters + t * heads + h0;
  if (threadIdx.x == 0) s_last = atomicAdd(counter, 1) == splits - 1;
  __syncthreads();
  if (!s_last) return;
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
      s_range_w[r][g] = w;
      denominator += __ldcg(parts + r * kStride + 1) * w;
    }
    s_inv[g] = 1.0f / denominator;
  }
  __syncthreads();
  for (int i = threadIdx.x; i < nh * kHeadDim; i += kThreads) {
    const int g = i / kHeadDim, d = i % kHeadDim;
    const float* parts = partial + (t * heads + h0 + g) * kDecodeMaxSplits * kStride;
    float sum = 0.0f;
    for (int64_t r = 0; r < splits; ++r) sum += __ldcg(parts + r * kStride + 2 + d) * s_range_w[r][g];
    out[(t * heads + h0 + g) * kHeadDim + d] = sum * s_inv[g];
  }
  if (threadIdx.x == 0) *counter = 0;
}

template <typename T, int kHeadDim>
void launch_typed(const float* q, int64_t heads, int64_t kv_heads, const PagedBatch& b,
                  int64_t decode_tokens, const PagedKv& kv, const DecodeScratch& scratch,
                  float* out, cudaStream_t stream) {
  const int64_t head_blocks = (heads / kv_heads + kHeadsPerBlock - 1) / kHeadsPerBlock;
  const dim3 grid(static_cast<unsigned>(kv_heads * head_blocks),
                  static_cast<unsigned>(decode_tokens), kDecodeMaxSplits);
  const float scale = 1.0f / std::sqrt(static_cast<float>(kHeadDim));
  decode_attention_kernel<T, kHeadDim><<<grid, kThreads, 0, stream>>>(
      q, heads, kv_heads, b.positions, b.token_seq, b.block_tables, b.max_blocks, kv.block_size,
      static_cast<const T*>(kv.k), static_cast<const T*>(kv.v), kv.k_scale, kv.v_scale, scale,
      out, scratch.partial, scratch.counters);
  CUDA_CHECK_LAUNCH();
}

template <typename T>
void launch_any(const float* q, int64_t heads, int64_t kv_heads, int64_t head_dim,
                const PagedBatch& b, int64_t decode_tokens, const PagedKv& kv,
                const DecodeScratch& scratch, float* out, cudaStream_t stream) {
  if (head_dim == 64) {
    launch_typed<T, 64>(q, heads, kv_heads, b, decode_tokens, kv, scratch, out, stream);
  } else if (head_dim == 128) {
    launch_typed<T, 128>(q, heads, kv_heads, b, decode_tokens, kv, scratch, out, stream);
  } else if constexpr (!std::is_same_v<T, float>) {
    launch_typed<T, 256>(q, heads, kv_heads, b, decode_tokens, kv, scratch, out, stream);
  }
}

}  // namespace

bool decode_attention_supported(KvCacheDtype dtype, int64_t head_dim) {
  if (head_dim != 64 && head_dim != 128 && head_dim != 256) return false;
  return !(dtype == KvCacheDtype::F32 && head_dim == 256);
}

void launch_decode_attention(const float* q, int64_t heads, int64_t kv_heads, int64_t head_dim,
                             const PagedBatch& batch, int64_t decode_tokens, const PagedKv& kv,
                             const DecodeScratch& scratch, float* out, cudaStream_t stream) {
  if (decode_tokens <= 0) return;
  if (!decode_attention_supported(kv.dtype, head_dim) || kv_heads <= 0 || heads % kv_heads != 0)
    throw std::invalid_argument("decode attention: unsupported head layout");
  switch (kv.dtype) {
    case KvCacheDtype::F32:
      return launch_any<float>(q, heads, kv_heads, head_dim, batch, decode_tokens, kv, scratch,
                               out, stream);
    case KvCacheDtype::BF16:
      return launch_any<__nv_bfloat16>(q, heads, kv_heads, head_dim, batch, decode_tokens, kv,
                                       scratch, out, stream);
    case KvCacheDtype::Fp8:
      return launch_any<uint8_t>(q, heads, kv_heads, head_dim, batch, decode_tokens, kv, scratch,
                                 out, stream);
    case KvCacheDtype::Auto:
      break;
  }
  throw std::invalid_argument("launch_decode_attention: the KV element type is not settled");
}

}  // namespace fp8llm::cuda
