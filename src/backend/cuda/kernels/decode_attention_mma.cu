// The decode attention kernel of decode_attention.h on tensor cores, for a bf16 or e4m3 cache with
// up to eight query heads per KV head (DecodeKernel::kTensorCores).
//
// A block attends for a token and every query head of one KV head, so that each key and value row
// is read once for all of them. The CUDA-core kernel spends about 60 instructions a key row on
// fp32 dot products, shuffles and the softmax's rescaling, and at a batch of 256 its issue takes
// as long as the rows' bytes; here a warp multiplies 16 keys at a time with mma.sync, keys first:
// Sᵀ = K Qᵀ (16 keys x 8 heads), then Oᵀ += Vᵀ Pᵀ, with Pᵀ transposed in registers (movmatrix).
//
// The numbers are those of fp32: the keys and values are bf16 and exact, and q (times
// log2(e) / sqrt(head_dim)) and the weights p are split each into three bf16 terms that sum to the
// fp32 value, so every product is exact and the sums are fp32's. Scores are in base 2 (exp2), and
// so are the maxima of the partials the ranges leave. An e4m3 cache's codes are widened to bf16
// (exactly) in shared memory, a key's scale multiplies its scores and a value's its weight.
//
// A step is 64 keys of one range, a warp's 16 of them. The steps of all the ranges a block walks
// form one cp.async pipeline, two or three steps deep (DecodeGrid::stages), with the block-table
// entries of the next step to request loaded a step ahead. At the end of a range the warps' sums
// are merged in warp order, in the K tile the mma last read, into the range's partial
// (decode_attention.cuh), as the CUDA-core kernel does, while the next steps' rows land.
#include <cuda_bf16.h>
#include <cuda_fp16.h>

#include <cmath>
#include <cstdint>
#include <stdexcept>
#include <type_traits>

#include "backend/cuda/kernels/async_copy.cuh"
#include "backend/cuda/kernels/decode_attention.cuh"
#include "backend/cuda/kernels/decode_attention.h"
#include "backend/cuda/kernels/dependent_launch.cuh"
#include "backend/cuda/kernels/mma_bf16.cuh"
#include "backend/cuda/kernels/paged_slot.cuh"
#include "backend/cuda/runtime/cuda_check.h"
#include "backend/cuda/runtime/dependent_launch.h"

namespace fp8llm::cuda {
namespace {

using detail::bf16_pair;
using detail::cp_async16;
using detail::cp_async_commit;
using detail::cp_async_wait;
using detail::DecodeItem;
using detail::DecodeMergeShared;
using detail::ldmatrix_x4;
using detail::ldmatrix_x4_trans;
using detail::mma_bf16;
using detail::movmatrix_trans;
using detail::PagedSlot;

constexpr int kThreads = detail::kDecodeThreads;
constexpr int kWarps = detail::kDecodeWarps;
constexpr int kGroupHeads = detail::kDecodeMmaGroupHeads;  // an mma's eight columns
constexpr int kStepKeys = 16 * kWarps;
constexpr int kTerms = 3;  // bf16 terms of an fp32 value
constexpr int kPad = 8;    // bf16 elements of row padding: ldmatrix rows fall on distinct banks
// A block's shared memory: kStages steps (the one multiplied and those in flight,
// DecodeGrid::stages) of K and V rows as the cache holds them, bf16 or e4m3 codes with their
// scales, each row padded by 16 bytes; for e4m3, also one step's rows widened to bf16, the tiles
// the mma reads (a bf16 cache's stages are those tiles already).
template <typename T, int D, int kStages>
struct Layout {
  static constexpr bool kCodes = std::is_same_v<T, uint8_t>;
  static constexpr int kLd = D + kPad;  // a bf16 tile's row, elements
  static constexpr int kRowBytes = D * static_cast<int>(sizeof(T));
  static constexpr int kLdStaged = kRowBytes + 16;  // a staged row, bytes
  static constexpr int kPieces = kRowBytes / 16;    // 16-byte pieces of a row
  static constexpr int kPieceElems = 16 / static_cast<int>(sizeof(T));
  static constexpr int kKeysPerPass = kThreads / kPieces;   // rows a pass of the block copies
  static constexpr int kPasses = kStepKeys / kKeysPerPass;  // passes a step
  static constexpr size_t kStagedTile = size_t{kStepKeys} * kLdStaged;  // one K or V tile
  static constexpr size_t kWideTile = sizeof(__nv_bfloat16) * kStepKeys * kLd;
  static constexpr size_t k = 0;  // [kStages][64][kLdStaged] bytes
  static constexpr size_t v = k + kStages * kStagedTile;
  static constexpr size_t scales = v + kStages * kStagedTile;  // e4m3: [kStages][2][64]
  static constexpr size_t wide = scales + (kCodes ? sizeof(float) * kStages * 2 * kStepKeys : 0);
  static constexpr size_t bytes = wide + (kCodes ? 2 * kWideTile : 0);  // e4m3: K, V [64][kLd]
  static_assert(kCodes || kLdStaged == static_cast<int>(sizeof(__nv_bfloat16)) * kLd,
                "a bf16 stage is a tile the mma reads");
  // A range's sums [kWarps][kGroupHeads][D] go to the K tile the mma read last.
  static_assert(sizeof(float) * kWarps * kGroupHeads * D <= kWideTile, "the sums fit a K tile");
  static_assert(kThreads % kPieces == 0 && kStepKeys % kKeysPerPass == 0, "whole rows a pass");
};

// Two e4m3 codes (the first in the low byte) as a bf16 pair, exactly: the hardware widens them to
// f16 (which holds every e4m3 value), then to fp32, and rounding that to bf16 changes nothing
// (e4m3's 3 mantissa bits fit bf16's 7); the NaN code stays NaN, as the other kernels read it.
__device__ __forceinline__ uint32_t e4m3x2_to_bf16x2(uint16_t codes) {
  uint32_t h;
  asm("cvt.rn.f16x2.e4m3x2 %0, %1;\n" : "=r"(h) : "h"(codes));
  const float2 f = __half22float2(*reinterpret_cast<const __half2*>(&h));
  const __nv_bfloat162 b = __float22bfloat162_rn(f);
  return *reinterpret_cast<const uint32_t*>(&b);
}

// 16 e4m3 codes as 16 bf16 values, into two 16-byte words.
__device__ __forceinline__ void widen_codes(uint4 codes, uint4 (&out)[2]) {
  const uint32_t w[4] = {codes.x, codes.y, codes.z, codes.w};
  uint32_t packed[8];
#pragma unroll
  for (int i = 0; i < 4; ++i) {
    packed[2 * i] = e4m3x2_to_bf16x2(static_cast<uint16_t>(w[i] & 0xffffu));
    packed[2 * i + 1] = e4m3x2_to_bf16x2(static_cast<uint16_t>(w[i] >> 16));
  }
  out[0] = make_uint4(packed[0], packed[1], packed[2], packed[3]);
  out[1] = make_uint4(packed[4], packed[5], packed[6], packed[7]);
}

// x as three bf16 terms whose sum is x (8 significant bits each: 24, fp32's), for the pair
// (x0, x1) packed as an mma operand's register.
__device__ __forceinline__ void split_pair(float x0, float x1, uint32_t (&terms)[kTerms]) {
#pragma unroll
  for (int i = 0; i < kTerms; ++i) {
    const __nv_bfloat16 b0 = __float2bfloat16_rn(x0), b1 = __float2bfloat16_rn(x1);
    terms[i] = bf16_pair(b0, b1);
    x0 -= __bfloat162float(b0);
    x1 -= __bfloat162float(b1);
  }
}

// Walks a block's steps: range z, z + gridDim.z, ... of the token, 64 keys at a time.
struct StepCursor {
  int64_t range, key, end;  // the range, the step's first key and the range's end
  int64_t chunk, keys, splits, stride;
  __device__ StepCursor(const DecodeItem& it, int64_t range_stride)
      : range(it.z), chunk(it.chunk), keys(it.keys), splits(it.splits), stride(range_stride) {
    start_range();
  }
  __device__ bool valid() const { return range < splits; }
  __device__ bool last_step() const { return key + kStepKeys >= end; }
  __device__ void advance() {
    if (!last_step()) {
      key += kStepKeys;
      return;
    }
    range += stride;
    start_range();
  }

 private:
  __device__ void start_range() {
    key = range * chunk;
    end = key + chunk < keys ? key + chunk : keys;
  }
};

// grid (kv_heads, decode tokens, range blocks), 128 threads. Lane l of a warp holds, of the
// scores Sᵀ (16 keys x 8 heads), keys l / 4 and l / 4 + 8 of the warp's 16 and heads 2 (l % 4)
// and 2 (l % 4) + 1; of Oᵀ (head_dim x 8 heads), the same heads at dims l / 4 and l / 4 + 8 of
// each 16-wide slice.
template <typename T, int D, int kStages>
__global__ void __launch_bounds__(kThreads, detail::decode_mma_blocks_per_sm(kStages))
    decode_attention_mma_kernel(const float* __restrict__ q, int64_t heads, int64_t kv_heads,
                                const int64_t* __restrict__ positions,
                                const int32_t* __restrict__ token_seq,
                                const int32_t* __restrict__ block_tables, int64_t max_blocks,
                                int64_t block_size, const T* __restrict__ k_cache,
                                const T* __restrict__ v_cache, const float* __restrict__ k_scale,
                                const float* __restrict__ v_scale, float q_scale,
                                float* __restrict__ out, float* __restrict__ partial,
                                int* __restrict__ counters) {
  wait_for_prior_grids();  // launched to overlap the kernel before it (launch_dependent)
  allow_dependent_grids();
  using L = Layout<T, D, kStages>;
  constexpr int kSlices = D / 16;
  extern __shared__ __align__(128) unsigned char smem[];
  unsigned char* sk = smem + L::k;
  unsigned char* sv = smem + L::v;
  auto* sscale = reinterpret_cast<float(*)[2][kStepKeys]>(smem + L::scales);
  __shared__ DecodeMergeShared<kWarps, kGroupHeads> s_merge;

  const DecodeItem it(heads, kv_heads, positions, kGroupHeads);
  if (it.z >= it.splits) return;
  const int lane = threadIdx.x & 31, warp = threadIdx.x >> 5;
  const int row = lane >> 2, quad = lane & 3;
  const int64_t kvh = it.kvh;
  const int32_t* table = block_tables + static_cast<int64_t>(token_seq[it.t]) * max_blocks;
  const PagedSlot slot_of(block_size);

  // Qᵀ as B fragments (16 dims x 8 heads) of each 16-wide slice: head `row`, dims 2 quad + {0, 1}
  // and the same + 8, in three terms; zero for the heads past the block's.
  uint32_t qb[kSlices][2][kTerms];
  {
    const float* qrow = q + (it.t * heads + it.h0 + row) * D;
#pragma unroll
    for (int c = 0; c < kSlices; ++c) {
#pragma unroll
      for (int half = 0; half < 2; ++half) {
        float2 x = make_float2(0.0f, 0.0f);
        if (row < it.nh) x = *reinterpret_cast<const float2*>(qrow + 16 * c + 8 * half + 2 * quad);
        split_pair(x.x * q_scale, x.y * q_scale, qb[c][half]);
      }
    }
  }

  // The rows this thread copies: piece `piece` of keys key0 + first + n * kKeysPerPass.
  const int piece = threadIdx.x % L::kPieces;
  const int first = threadIdx.x / L::kPieces;
  auto load_entries = [&](int64_t key0, int64_t end, int32_t(&entries)[L::kPasses]) {
#pragma unroll
    for (int n = 0; n < L::kPasses; ++n) {
      const int64_t key = key0 + first + n * L::kKeysPerPass;
      entries[n] = key < end ? __ldg(table + slot_of.entry(key)) : 0;
    }
  };
  // Keys key0 .. key0 + 63 into stage `stage` (e4m3: with their scales), zeros past `end`.
  auto request = [&](int64_t key0, int64_t end, const int32_t(&entries)[L::kPasses], int stage) {
#pragma unroll
    for (int n = 0; n < L::kPasses; ++n) {
      const int j = first + n * L::kKeysPerPass;
      const int64_t key = key0 + j;
      const bool present = key < end;
      const int64_t at = present ? slot_of.slot(entries[n], key) * kv_heads + kvh : 0;
      const int64_t from = at * D + piece * L::kPieceElems;
      const size_t to = stage * L::kStagedTile + j * L::kLdStaged + piece * 16;
      cp_async16(sk + to, k_cache + from, present ? 16 : 0);
      cp_async16(sv + to, v_cache + from, present ? 16 : 0);
      if constexpr (L::kCodes) {
        if (piece == 0) {
          detail::cp_async4(&sscale[stage][0][j], k_scale + at, present ? 4 : 0);
          detail::cp_async4(&sscale[stage][1][j], v_scale + at, present ? 4 : 0);
        }
      }
    }
  };

  // The block's steps, one pipeline over all of its ranges: the next step's rows are in flight
  // while a range's last step is multiplied and its sums merged and stored.
  StepCursor fetch(it, gridDim.z), entries_of(it, gridDim.z), compute(it, gridDim.z);
  int32_t entries[L::kPasses];
  const auto fetch_into = [&](int stage) {  // the next step's rows, then the entries after it
    if (!fetch.valid()) return;
    request(fetch.key, fetch.end, entries, stage);
    fetch.advance();
    if (entries_of.valid()) load_entries(entries_of.key, entries_of.end, entries);
    entries_of.advance();
  };
  load_entries(entries_of.key, entries_of.end, entries);
  entries_of.advance();
#pragma unroll
  for (int stage = 0; stage < kStages - 1; ++stage) {
    fetch_into(stage);
    cp_async_commit();
  }

  float o[kSlices][4];
  // Of heads 2 quad and 2 quad + 1: the running maximum (the same on the lanes of a quad
  // position) and the sum of this lane's weights.
  float m[2], l[2];
  const auto reset = [&] {
#pragma unroll
    for (int c = 0; c < kSlices; ++c) o[c][0] = o[c][1] = o[c][2] = o[c][3] = 0.0f;
    m[0] = m[1] = -INFINITY;
    l[0] = l[1] = 0.0f;
  };
  reset();
  int done = 0;  // ranges this block has stored
  for (int cur = 0; compute.valid(); cur = cur + 1 == kStages ? 0 : cur + 1) {
    fetch_into(cur == 0 ? kStages - 1 : cur - 1);  // the stage the last step left
    cp_async_commit();
    cp_async_wait<kStages - 1>();  // this step's rows (this thread's part of them) have landed
    __syncthreads();               // and every thread's part
    // The tiles the mma reads: the stage itself, or for e4m3 its codes widened to bf16.
    auto* k_tile = reinterpret_cast<__nv_bfloat16*>(sk + cur * L::kStagedTile);
    auto* v_tile = reinterpret_cast<__nv_bfloat16*>(sv + cur * L::kStagedTile);
    if constexpr (L::kCodes) {
      k_tile = reinterpret_cast<__nv_bfloat16*>(smem + L::wide);
      v_tile = k_tile + kStepKeys * L::kLd;
      for (int i = threadIdx.x; i < 2 * kStepKeys * L::kPieces; i += kThreads) {
        const int tile = i / (kStepKeys * L::kPieces);
        const int key = i / L::kPieces % kStepKeys, part = i % L::kPieces;
        const unsigned char* from =
            (tile == 0 ? sk : sv) + cur * L::kStagedTile + key * L::kLdStaged + part * 16;
        uint4 wide[2];
        widen_codes(*reinterpret_cast<const uint4*>(from), wide);
        auto* to =
            reinterpret_cast<uint4*>((tile == 0 ? k_tile : v_tile) + key * L::kLd + part * 16);
        to[0] = wide[0];
        to[1] = wide[1];
      }
      __syncthreads();
    }
    const int64_t key0 = compute.key + 16 * warp;  // the warp's first key
    const int64_t j_end = compute.end;
    if (key0 < j_end) {
      const __nv_bfloat16* kt = k_tile + 16 * warp * L::kLd;
      const __nv_bfloat16* vt = v_tile + 16 * warp * L::kLd;
      float s[4] = {0.0f, 0.0f, 0.0f, 0.0f};
#pragma unroll
      for (int c = 0; c < kSlices; ++c) {
        uint32_t a[4];  // K: the warp's 16 keys x dims 16c .. 16c + 15
        ldmatrix_x4(a, kt + (lane & 15) * L::kLd + 16 * c + (lane >> 4) * 8);
#pragma unroll
        for (int i = 0; i < kTerms; ++i) mma_bf16(s, a, qb[c][0][i], qb[c][1][i]);
      }
      if constexpr (L::kCodes) {  // the keys' scales (zero past the range)
        const float k0 = sscale[cur][0][16 * warp + row], k8 = sscale[cur][0][16 * warp + row + 8];
        s[0] *= k0;
        s[1] *= k0;
        s[2] *= k8;
        s[3] *= k8;
      }
      if (key0 + row >= j_end) s[0] = s[1] = -INFINITY;
      if (key0 + row + 8 >= j_end) s[2] = s[3] = -INFINITY;

      // The online softmax of each head over the 16 keys (key0 < j_end: the maximum is finite).
      float p[4], alpha[2];
#pragma unroll
      for (int e = 0; e < 2; ++e) {
        float top = fmaxf(s[e], s[2 + e]);
        top = fmaxf(top, __shfl_xor_sync(0xffffffffu, top, 4));
        top = fmaxf(top, __shfl_xor_sync(0xffffffffu, top, 8));
        top = fmaxf(top, __shfl_xor_sync(0xffffffffu, top, 16));
        const float m_new = fmaxf(m[e], top);
        alpha[e] = exp2f(m[e] - m_new);  // 0 before the first key
        p[e] = exp2f(s[e] - m_new);
        p[2 + e] = exp2f(s[2 + e] - m_new);
        l[e] = l[e] * alpha[e] + (p[e] + p[2 + e]);
        m[e] = m_new;
      }
#pragma unroll
      for (int c = 0; c < kSlices; ++c) {
        o[c][0] *= alpha[0];
        o[c][1] *= alpha[1];
        o[c][2] *= alpha[0];
        o[c][3] *= alpha[1];
      }

      // Pᵀ as B fragments (16 keys x 8 heads): the scores' 8x8 tiles transposed, each term.
      // For e4m3 the values' scales join the weights here (l sums the weights alone).
      if constexpr (L::kCodes) {
        const float v0 = sscale[cur][1][16 * warp + row], v8 = sscale[cur][1][16 * warp + row + 8];
        p[0] *= v0;
        p[1] *= v0;
        p[2] *= v8;
        p[3] *= v8;
      }
      uint32_t pb[kTerms][2];
      {
        uint32_t lo[kTerms], hi[kTerms];  // keys row and row + 8
        split_pair(p[0], p[1], lo);
        split_pair(p[2], p[3], hi);
#pragma unroll
        for (int i = 0; i < kTerms; ++i) {
          pb[i][0] = movmatrix_trans(lo[i]);
          pb[i][1] = movmatrix_trans(hi[i]);
        }
      }
#pragma unroll
      for (int c = 0; c < kSlices; ++c) {
        uint32_t a[4];  // Vᵀ: dims 16c .. 16c + 15 x the warp's 16 keys
        ldmatrix_x4_trans(
            a, vt + ((lane & 7) + (lane >> 4) * 8) * L::kLd + 16 * c + ((lane >> 3) & 1) * 8);
#pragma unroll
        for (int i = 0; i < kTerms; ++i) mma_bf16(o[c], a, pb[i][0], pb[i][1]);
      }
    }
    if (compute.last_step()) {
      // The warp's sums into the K tile the mma read (the next steps' rows go to the other
      // stages), merged in warp order and stored.
      __syncthreads();  // every warp is done with this stage
      float(*sums)[kGroupHeads][D] = reinterpret_cast<float(*)[kGroupHeads][D]>(k_tile);
#pragma unroll
      for (int e = 0; e < 2; ++e) {
        l[e] += __shfl_xor_sync(0xffffffffu, l[e], 4);
        l[e] += __shfl_xor_sync(0xffffffffu, l[e], 8);
        l[e] += __shfl_xor_sync(0xffffffffu, l[e], 16);
        const int g = 2 * quad + e;
        if (g >= it.nh) continue;
#pragma unroll
        for (int c = 0; c < kSlices; ++c) {
          sums[warp][g][16 * c + row] = o[c][e];
          sums[warp][g][16 * c + row + 8] = o[c][2 + e];
        }
        if (row == 0) {
          s_merge.m[warp][g] = m[e];
          s_merge.l[warp][g] = l[e];
        }
      }
      __syncthreads();
      detail::store_decode_range<kWarps, D, kGroupHeads, true>(sums, s_merge, it, compute.range,
                                                               heads, out, partial);
      reset();
      ++done;
    }
    __syncthreads();  // every warp is done with this stage before it is refilled
    compute.advance();
  }
  if (it.splits > 1)
    detail::merge_decode_ranges<kWarps, D, kGroupHeads, true>(s_merge, it, done, heads, out,
                                                              partial, counters);
}

}  // namespace

void launch_decode_attention_mma(const float* q, int64_t heads, int64_t kv_heads, int64_t head_dim,
                                 const PagedBatch& b, int64_t decode_tokens, const PagedKv& kv,
                                 const DecodeScratch& scratch, float* out, DecodeGrid choice,
                                 cudaStream_t stream) {
  if (decode_kernel_for(kv.dtype, heads, kv_heads, head_dim) != DecodeKernel::kTensorCores)
    throw std::invalid_argument("decode attention on tensor cores: unsupported layout");
  if (choice.range_blocks < 1 || choice.range_blocks > kDecodeMaxSplits)
    throw std::invalid_argument("decode attention: range blocks out of range");
  if (choice.stages != 2 && choice.stages != 3)
    throw std::invalid_argument("decode attention on tensor cores: 2 or 3 stages");
  const dim3 grid(static_cast<unsigned>(kv_heads), static_cast<unsigned>(decode_tokens),
                  static_cast<unsigned>(choice.range_blocks));
  if (kv.dtype == KvCacheDtype::Fp8 && (kv.k_scale == nullptr || kv.v_scale == nullptr))
    throw std::invalid_argument("decode attention on tensor cores: an e4m3 cache without scales");
  const auto launch = [&]<typename T, int D, int kStages>() {
    using L = Layout<T, D, kStages>;
    const auto kernel = &decode_attention_mma_kernel<T, D, kStages>;
    // Above 48 KiB a kernel must opt in; the attribute belongs to the current device, as in
    // prefill_launch.cuh.
    static const bool opted_in = [&] {
      CUDA_CHECK(cudaFuncSetAttribute(kernel, cudaFuncAttributeMaxDynamicSharedMemorySize,
                                      static_cast<int>(L::bytes)));
      return true;
    }();
    (void)opted_in;
    constexpr float kLog2e = 1.4426950408889634f;
    const float q_scale = kLog2e / std::sqrt(static_cast<float>(D));
    launch_dependent(Overlap::kAll, kernel, grid, dim3(kThreads), L::bytes, stream, q, heads,
                     kv_heads, b.positions, b.token_seq, b.block_tables, b.max_blocks,
                     kv.block_size, static_cast<const T*>(kv.k), static_cast<const T*>(kv.v),
                     kv.k_scale, kv.v_scale, q_scale, out, scratch.partial, scratch.counters);
  };
  const auto by_size = [&]<typename T>() {
    const bool deep = choice.stages == 3;
    if (head_dim == 64) {
      deep ? launch.template operator()<T, 64, 3>() : launch.template operator()<T, 64, 2>();
    } else {
      deep ? launch.template operator()<T, 128, 3>() : launch.template operator()<T, 128, 2>();
    }
  };
  if (kv.dtype == KvCacheDtype::Fp8) {
    by_size.template operator()<uint8_t>();
  } else {
    by_size.template operator()<__nv_bfloat16>();
  }
  CUDA_CHECK_LAUNCH();
}

}  // namespace fp8llm::cuda
