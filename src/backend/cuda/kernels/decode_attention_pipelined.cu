// The decode attention kernel of decode_attention.h.
//
// Each thread requests its own 16-byte pieces of K and V (and, for e4m3, the rows' scales)
// kStages - 1 rounds ahead with cp.async into shared memory, and loads the block-table entry of
// the round after that one round earlier still, so that no table lookup sits in a round's path;
// q lives in shared memory, and a round's four dot products are reduced side by side.
//
// A token's keys are cut into ranges that depend on its own length only (decode_chunk), so its
// result does not depend on its batch. The grid's third dimension is chosen by the host from the
// batch size: block z takes ranges z, z + gridDim.z, ..., one after another. A large batch thus
// runs a block or two per (token, KV head) that walk its ranges, instead of a block per range
// plus blocks with no range at all; a small batch spreads the ranges over the GPU.
#include <cuda_bf16.h>

#include <cmath>
#include <cstdint>
#include <stdexcept>
#include <type_traits>

#include "backend/cuda/kernels/async_copy.cuh"
#include "backend/cuda/kernels/decode_attention.cuh"
#include "backend/cuda/kernels/decode_attention.h"
#include "backend/cuda/kernels/dependent_launch.cuh"
#include "backend/cuda/kernels/paged_slot.cuh"
#include "backend/cuda/runtime/cuda_check.h"
#include "backend/cuda/runtime/dependent_launch.h"

namespace fp8llm::cuda {
namespace {

using detail::cp_async16;
using detail::cp_async4;
using detail::cp_async_commit;
using detail::cp_async_wait;
using detail::DecodeItem;
using detail::DecodeLayout;
using detail::DecodeMergeShared;
using detail::PagedSlot;
using detail::Row16;
constexpr int kThreads = detail::kDecodeThreads;
constexpr int kHeadsPerBlock = detail::kDecodeHeadsPerBlock;
// A round's rows are requested this many rounds before they are used: a block keeps
// (kStages - 1) rounds of 4 KiB (each thread's 16 bytes of K and of V) in flight.
constexpr int kStages = 4;
// Blocks an SM is to hold at once, which caps the registers (the range merges, outside the key
// loop, would otherwise raise the count for the whole kernel): six of 80 registers a thread;
// four for an e4m3 cache, whose lanes hold 16 elements of each head's sums.
template <typename T>
constexpr int kBlocksPerSmBound =
    std::is_same_v<T, uint8_t> ? 4 : detail::kDecodeCudaCoreBlocksPerSm;

// The groups' sums (written after a range's key loop) share memory with the staging (used only
// inside it). A thread reads back only what it requested itself, so the loop needs no barrier.
template <int kGroups, int kHeadDim>
union PipelinedShared {
  float acc[kGroups][kHeadsPerBlock][kHeadDim];
  struct {
    uint4 kv[kStages][kThreads][2];
    float scales[kStages][kThreads][2];
  } stage;
};

template <typename T, int kHeadDim>
__global__ void __launch_bounds__(kThreads, kBlocksPerSmBound<T>) decode_attention_pipelined_kernel(
    const float* __restrict__ q, int64_t heads, int64_t kv_heads,
    const int64_t* __restrict__ positions, const int32_t* __restrict__ token_seq,
    const int32_t* __restrict__ block_tables, int64_t max_blocks, int64_t block_size,
    const T* __restrict__ k_cache, const T* __restrict__ v_cache, const float* __restrict__ k_scale,
    const float* __restrict__ v_scale, float scale, float* __restrict__ out,
    float* __restrict__ partial, int* __restrict__ counters) {
  wait_for_prior_grids();  // launched to overlap the kernel before it (launch_dependent)
  allow_dependent_grids();
  using L = DecodeLayout<T, kHeadDim>;
  constexpr int kE = L::kE, kLanes = L::kLanes, kKeysPerWarp = L::kKeysPerWarp;
  constexpr int kGroups = L::kGroups;
  constexpr int G = kHeadsPerBlock;
  constexpr int kChunks = kE / 4;  // float4 pieces of a lane's elements
  constexpr bool kScaled = std::is_same_v<T, uint8_t>;
  __shared__ PipelinedShared<kGroups, kHeadDim> shared;
  // q of the block's heads, laid out so that the lanes of a group read consecutive float4s:
  // s_q[g][c][sub] holds elements sub * kE + 4c .. + 3 of head g.
  __shared__ float4 s_q[G][kChunks][kLanes];
  __shared__ DecodeMergeShared<kGroups> s_merge;

  const DecodeItem it(heads, kv_heads, positions);
  if (it.z >= it.splits) return;
  const int64_t kvh = it.kvh;
  const int nh = it.nh;
  const int lane = threadIdx.x & 31;
  const int warp = threadIdx.x >> 5;
  const int sub = lane % kLanes;  // this lane's kE elements of a row start at sub * kE
  const int key_in_warp = lane / kLanes;
  const int group = warp * kKeysPerWarp + key_in_warp;
  const int32_t* table = block_tables + static_cast<int64_t>(token_seq[it.t]) * max_blocks;
  const PagedSlot slot_of(block_size);

  for (int i = threadIdx.x; i < G * kChunks * kLanes; i += kThreads) {
    const int g = i / (kChunks * kLanes), c = (i / kLanes) % kChunks, s = i % kLanes;
    float4 v = make_float4(0.0f, 0.0f, 0.0f, 0.0f);
    if (g < nh) {
      const float* row = q + (it.t * heads + it.h0 + g) * kHeadDim + s * kE + 4 * c;
      v = make_float4(row[0], row[1], row[2], row[3]);
    }
    s_q[g][c][s] = v;
  }

  int done = 0;  // ranges this block has stored
  for (int64_t range = it.z; range < it.splits; range += gridDim.z, ++done) {
    // The previous range's merge has read the sums out of the staging's memory.
    if (done > 0) __syncthreads();
    const int64_t j_begin = range * it.chunk;
    const int64_t j_end = j_begin + it.chunk < it.keys ? j_begin + it.chunk : it.keys;
    // The table entry of this thread's key of the round whose warp-first key is `base` (0 past
    // the range, where nothing is requested).
    auto entry_of = [&](int64_t base) -> int32_t {
      const int64_t j = base + key_in_warp;
      return j < j_end ? table[slot_of.entry(j)] : 0;
    };
    // Requests that round into stage `into`, its entry loaded: nothing past the range, but the
    // group is committed either way, so that the waits count rounds.
    auto request = [&](int64_t base, int32_t entry, int into) {
      const int64_t j = base + key_in_warp;
      if (j < j_end) {
        const int64_t at = slot_of.slot(entry, j) * kv_heads + kvh;
        cp_async16(&shared.stage.kv[into][threadIdx.x][0], k_cache + at * kHeadDim + sub * kE);
        cp_async16(&shared.stage.kv[into][threadIdx.x][1], v_cache + at * kHeadDim + sub * kE);
        if constexpr (kScaled) {
          if (k_scale != nullptr)
            cp_async4(&shared.stage.scales[into][threadIdx.x][0], k_scale + at);
          if (v_scale != nullptr)
            cp_async4(&shared.stage.scales[into][threadIdx.x][1], v_scale + at);
        }
      }
      cp_async_commit();
    };
    const int64_t first_base = j_begin + warp * kKeysPerWarp;
#pragma unroll
    for (int r = 0; r < kStages - 1; ++r) {
      const int64_t base = first_base + r * kGroups;
      request(base, entry_of(base), r);
    }
    int32_t ahead = entry_of(first_base + (kStages - 1) * kGroups);
    if (done == 0) __syncthreads();  // s_q is written

    float m[G], l[G], acc[G][kE];
#pragma unroll
    for (int g = 0; g < G; ++g) {
      m[g] = -INFINITY;
      l[g] = 0.0f;
#pragma unroll
      for (int e = 0; e < kE; ++e) acc[g][e] = 0.0f;
    }
    int stage = 0;
    // `base` is the warp's first key of the round, the same on all its lanes (they shuffle).
    for (int64_t base = first_base; base < j_end; base += kGroups) {
      const int64_t next = base + (kStages - 1) * kGroups;
      request(next, ahead, stage == 0 ? kStages - 1 : stage - 1);
      ahead = entry_of(next + kGroups);  // in flight while this round computes
      cp_async_wait<kStages - 1>();  // this round's pieces (and every earlier round's) have landed
      const bool valid = base + key_in_warp < j_end;
      float ks = 1.0f, vs = 1.0f;
      if constexpr (kScaled) {
        if (valid && k_scale != nullptr) ks = shared.stage.scales[stage][threadIdx.x][0];
        if (valid && v_scale != nullptr) vs = shared.stage.scales[stage][threadIdx.x][1];
      }
      const uint4 zero = make_uint4(0, 0, 0, 0);
      float dots[G];
      {
        float kf[kE];
        Row16<T>::widen(valid ? shared.stage.kv[stage][threadIdx.x][0] : zero, ks, kf);
#pragma unroll
        for (int g = 0; g < G; ++g) {
          float dot = 0.0f;
#pragma unroll
          for (int c = 0; c < kChunks; ++c) {
            const float4 qc = s_q[g][c][sub];
            dot += qc.x * kf[4 * c];
            dot += qc.y * kf[4 * c + 1];
            dot += qc.z * kf[4 * c + 2];
            dot += qc.w * kf[4 * c + 3];
          }
          dots[g] = dot;
        }
      }
#pragma unroll
      for (int o = kLanes / 2; o > 0; o >>= 1) {
#pragma unroll
        for (int g = 0; g < G; ++g) dots[g] += __shfl_xor_sync(0xffffffffu, dots[g], o);
      }
      float vf[kE];
      Row16<T>::widen(valid ? shared.stage.kv[stage][threadIdx.x][1] : zero, vs, vf);
      stage = stage + 1 == kStages ? 0 : stage + 1;
      if (!valid) continue;
#pragma unroll
      for (int g = 0; g < G; ++g) {
        if (g >= nh) break;
        const float s = dots[g] * scale;
        const float m_new = fmaxf(m[g], s);
        const float corr = expf(m[g] - m_new);
        const float p = expf(s - m_new);
        l[g] = l[g] * corr + p;
#pragma unroll
        for (int e = 0; e < kE; ++e) acc[g][e] = acc[g][e] * corr + p * vf[e];
        m[g] = m_new;
      }
    }
    // The staging is about to hold the sums: every thread's copies are done (the rounds past the
    // range requested nothing) and every warp has left the loop.
    detail::cp_async_wait_all();
    __syncthreads();
#pragma unroll
    for (int g = 0; g < G; ++g) {
#pragma unroll
      for (int e = 0; e < kE; ++e) shared.acc[group][g][sub * kE + e] = acc[g][e];
      if (sub == 0) {
        s_merge.m[group][g] = m[g];
        s_merge.l[group][g] = l[g];
      }
    }
    __syncthreads();
    detail::store_decode_range<kGroups, kHeadDim>(shared.acc, s_merge, it, range, heads, out,
                                                  partial);
  }
  if (it.splits > 1)
    detail::merge_decode_ranges<kGroups, kHeadDim>(s_merge, it, done, heads, out, partial,
                                                   counters);
}

}  // namespace

void launch_decode_attention_pipelined(const float* q, int64_t heads, int64_t kv_heads,
                                       int64_t head_dim, const PagedBatch& b, int64_t decode_tokens,
                                       const PagedKv& kv, const DecodeScratch& scratch, float* out,
                                       DecodeGrid choice, cudaStream_t stream) {
  if (choice.range_blocks < 1 || choice.range_blocks > kDecodeMaxSplits)
    throw std::invalid_argument("decode attention: range blocks out of range");
  const dim3 grid(static_cast<unsigned>(kv_heads * detail::decode_head_blocks(heads, kv_heads)),
                  static_cast<unsigned>(decode_tokens), static_cast<unsigned>(choice.range_blocks));
  detail::for_decode_layout(kv.dtype, head_dim, [&]<typename T, int kHeadDim>() {
    const float scale = 1.0f / std::sqrt(static_cast<float>(kHeadDim));
    const auto kernel = &decode_attention_pipelined_kernel<T, kHeadDim>;
    launch_dependent(Overlap::kAll, kernel, grid, dim3(kThreads), 0, stream, q, heads, kv_heads,
                     b.positions, b.token_seq, b.block_tables, b.max_blocks, kv.block_size,
                     static_cast<const T*>(kv.k), static_cast<const T*>(kv.v), kv.k_scale,
                     kv.v_scale, scale, out, scratch.partial, scratch.counters);
  });
  CUDA_CHECK_LAUNCH();
}

}  // namespace fp8llm::cuda
