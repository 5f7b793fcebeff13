// Kernels of lora.h.
#include <algorithm>
#include <cstdint>

#include "backend/cuda/kernels/block_reduce.cuh"
#include "backend/cuda/kernels/lora.h"
#include "backend/cuda/runtime/cuda_check.h"

namespace fp8llm::cuda {
namespace {

constexpr int kShrinkWarps = 8;
// A warp reads a segment of 256 values of a row at a time (a lane two runs of 4); a piece is at
// most kMaxSegments segments wide.
constexpr int64_t kSegment = 256;
constexpr int kMaxSegments = 4;
// The input width is cut into pieces: enough blocks to keep the SMs reading at batch 1, few
// partial sums for the expand to add up.
constexpr int64_t kPreferredPieces = 16;
constexpr int kExpandThreads = 256;
constexpr int kTileTokens = 8;     // tokens a block serves
constexpr int kRowsAtOnce = 4;     // rows a shrink warp sums at once
constexpr int kOutsPerThread = 4;  // columns an expand thread serves

struct Pieces {
  int64_t count = 0, width = 0;
};

// Depends on `in` only (batch invariance: see lora.h). Pieces are whole segments wide.
Pieces pieces_of(int64_t in) {
  const int64_t segments = (in + kSegment - 1) / kSegment;
  int64_t count = std::min(kPreferredPieces, segments);
  count = std::max(count, (segments + kMaxSegments - 1) / kMaxSegments);
  const int64_t width = (segments + count - 1) / count * kSegment;
  return {(in + width - 1) / width, width};
}

struct Group {
  LoraProjection proj[kLoraMaxGroup];
};

// grid (pieces, ceil(tokens / kTileTokens)): the block takes a run of kTileTokens tokens of
// `order`, their x over the piece in shared memory; its warps take the group's rows (g, r),
// kRowsAtOnce at a time (their loads in flight together), each summing x[t, piece] ·
// A_{g,slot(t)}[r, piece] for every token into partial[t, piece, g * max_rank + r]. Tokens of one
// adapter read the same row (from L1 after the first). In a segment of 256 values a lane takes
// two runs of 4, at 4 * lane and 128 + 4 * lane, so a warp reads x from shared memory without
// bank conflicts. A token's sum is added in the same order whatever the run and the batch: lane
// by lane, then across the warp. kVector: `in` is a multiple of 8, so every run of 4 is 8-byte
// aligned in A and inside the piece or past it.
template <bool kVector>
__global__ void __launch_bounds__(kShrinkWarps * 32)
    lora_shrink_kernel(const float* __restrict__ x, int64_t tokens, int64_t in, int width,
                       int max_rank, int groups, Group group, int64_t slot_stride,
                       const int32_t* __restrict__ token_lora, const int32_t* __restrict__ order,
                       float* __restrict__ partial) {
  extern __shared__ float4 xs4[];  // [kTileTokens, width / 4]
  const float* xs = reinterpret_cast<const float*>(xs4);
  __shared__ int32_t tile_token[kTileTokens], tile_slot[kTileTokens];
  const int64_t first_token = static_cast<int64_t>(blockIdx.y) * kTileTokens;
  if (threadIdx.x < kTileTokens) {
    const int64_t i = first_token + threadIdx.x;
    const int32_t t = i < tokens ? order[i] : -1;
    tile_token[threadIdx.x] = t;
    tile_slot[threadIdx.x] = t >= 0 ? token_lora[t] : -1;
  }
  __syncthreads();
  if (tile_slot[0] < 0) return;  // the order puts tokens without an adapter last
  const int piece = static_cast<int>(blockIdx.x), pieces = static_cast<int>(gridDim.x);
  const int64_t k0 = static_cast<int64_t>(piece) * width;
  const int span = static_cast<int>(min(in - k0, static_cast<int64_t>(width)));  // values here
  const int quads = width / 4;
  for (int i = threadIdx.x; i < kTileTokens * quads; i += kShrinkWarps * 32) {
    const int tt = i / quads, c = (i - tt * quads) * 4;
    float4 v = make_float4(0.0f, 0.0f, 0.0f, 0.0f);
    if (tile_slot[tt] >= 0) {
      const float* src = x + tile_token[tt] * in + k0 + c;
      if (kVector) {
        if (c < span) v = *reinterpret_cast<const float4*>(src);
      } else {
        if (c < span) v.x = src[0];
        if (c + 1 < span) v.y = src[1];
        if (c + 2 < span) v.z = src[2];
        if (c + 3 < span) v.w = src[3];
      }
    }
    xs4[i] = v;
  }
  __syncthreads();
  const int lane = threadIdx.x & 31, warp = threadIdx.x >> 5;
  const int rows = groups * max_rank;
  for (int first = warp; first < rows; first += kShrinkWarps * kRowsAtOnce) {
    float acc[kRowsAtOnce][kTileTokens];
#pragma unroll
    for (int q = 0; q < kRowsAtOnce; ++q) {
      const int row = first + q * kShrinkWarps;
      const int g = row / max_rank;
      const __nv_bfloat16* a_row =
          row < rows ? group.proj[g].a + static_cast<int64_t>(row - g * max_rank) * in + k0
                     : nullptr;
#pragma unroll
      for (int tt = 0; tt < kTileTokens; ++tt) {
        acc[q][tt] = 0.0f;
        const int32_t slot = tile_slot[tt];
        if (slot < 0 || a_row == nullptr) continue;
        const __nv_bfloat16* ar = a_row + static_cast<int64_t>(slot) * slot_stride;
        const float* xt = xs + tt * width;
#pragma unroll
        for (int h = 0; h < 2 * kMaxSegments; ++h) {
          const int c = h * 128 + lane * 4;
          if (c >= span) continue;
          const float4 xv = *reinterpret_cast<const float4*>(xt + c);
          float av[4];
          if (kVector) {
            const uint2 raw = *reinterpret_cast<const uint2*>(ar + c);
            const auto* v = reinterpret_cast<const __nv_bfloat16*>(&raw);
#pragma unroll
            for (int i = 0; i < 4; ++i) av[i] = __bfloat162float(v[i]);
          } else {
#pragma unroll
            for (int i = 0; i < 4; ++i) av[i] = c + i < span ? __bfloat162float(ar[c + i]) : 0.0f;
          }
          acc[q][tt] += xv.x * av[0];
          acc[q][tt] += xv.y * av[1];
          acc[q][tt] += xv.z * av[2];
          acc[q][tt] += xv.w * av[3];
        }
      }
    }
#pragma unroll
    for (int q = 0; q < kRowsAtOnce; ++q) {
      const int row = first + q * kShrinkWarps;
#pragma unroll
      for (int tt = 0; tt < kTileTokens; ++tt) {
        const float sum = warp_sum(acc[q][tt]);
        if (lane == 0 && row < rows && tile_slot[tt] >= 0)
          partial[(static_cast<int64_t>(tile_token[tt]) * pieces + piece) * rows + row] = sum;
      }
    }
  }
}

// grid (ceil(sum of outs / (kExpandThreads * kOutsPerThread)), ceil(tokens / kTileTokens)): the
// block takes a run of `order` as the shrink does and adds up the shrink's pieces for its tokens
// (in piece order); then each thread, for kOutsPerThread columns n and each token, adds
// scale * (u_g · B_g[n]) to y_g[t, n] for the projection g the column falls in.
__global__ void __launch_bounds__(kExpandThreads)
    lora_expand_kernel(int64_t tokens, int max_rank, int groups, Group group, int pieces,
                       int64_t slot_stride, const float* __restrict__ scales,
                       const int32_t* __restrict__ token_lora, const int32_t* __restrict__ order,
                       const float* __restrict__ partial) {
  extern __shared__ float u[];  // [kTileTokens, groups * max_rank]
  __shared__ int32_t tile_token[kTileTokens], tile_slot[kTileTokens];
  const int64_t first_token = static_cast<int64_t>(blockIdx.y) * kTileTokens;
  if (threadIdx.x < kTileTokens) {
    const int64_t i = first_token + threadIdx.x;
    const int32_t t = i < tokens ? order[i] : -1;
    tile_token[threadIdx.x] = t;
    tile_slot[threadIdx.x] = t >= 0 ? token_lora[t] : -1;
  }
  __syncthreads();
  if (tile_slot[0] < 0) return;
  const int rows = groups * max_rank;
  for (int i = threadIdx.x; i < kTileTokens * rows; i += kExpandThreads) {
    const int tt = i / rows, row = i - tt * rows;
    float s = 0.0f;
    if (tile_slot[tt] >= 0) {
      const float* p = partial + static_cast<int64_t>(tile_token[tt]) * pieces * rows + row;
#pragma unroll 8
      for (int j = 0; j < pieces; ++j) s += p[static_cast<int64_t>(j) * rows];
    }
    u[i] = s;
  }
  __syncthreads();
  const __nv_bfloat16* rows_b[kOutsPerThread];
  float* ys[kOutsPerThread];
  int gs[kOutsPerThread];
#pragma unroll
  for (int o = 0; o < kOutsPerThread; ++o) {
    int64_t n = (static_cast<int64_t>(blockIdx.x) * kOutsPerThread + o) * kExpandThreads +
                threadIdx.x;
    int g = 0;
    while (g < groups && n >= group.proj[g].out) n -= group.proj[g].out, ++g;
    gs[o] = g;
    rows_b[o] = nullptr;
    ys[o] = nullptr;
    if (g == groups) continue;
    rows_b[o] = group.proj[g].b + n * max_rank;
    ys[o] = group.proj[g].y + n;
  }
  for (int tt = 0; tt < kTileTokens; ++tt) {
    const int32_t slot = tile_slot[tt];
    if (slot < 0) break;
    const int64_t t = tile_token[tt];
    const float scale = scales[slot];
#pragma unroll
    for (int o = 0; o < kOutsPerThread; ++o) {
      if (rows_b[o] == nullptr) continue;
      const int g = gs[o];
      const __nv_bfloat16* br = rows_b[o] + static_cast<int64_t>(slot) * slot_stride;
      const float* ug = u + tt * rows + g * max_rank;
      float d = 0.0f;
      if (max_rank % 8 == 0) {
        // Rows of B start 16-byte aligned when the rank is a multiple of 8 (cuda_lora.cpp).
        for (int r = 0; r < max_rank; r += 8) {
          const uint4 raw = *reinterpret_cast<const uint4*>(br + r);
          const auto* v = reinterpret_cast<const __nv_bfloat16*>(&raw);
#pragma unroll
          for (int i = 0; i < 8; ++i)
            d = __fadd_rn(d, __fmul_rn(ug[r + i], __bfloat162float(v[i])));
        }
      } else {
        for (int r = 0; r < max_rank; ++r)
          d = __fadd_rn(d, __fmul_rn(ug[r], __bfloat162float(br[r])));
      }
      float* yr = ys[o] + t * group.proj[g].out;
      *yr = __fadd_rn(*yr, __fmul_rn(scale, d));
    }
  }
}

Group group_of(const LoraLaunch& l, int64_t* outs) {
  Group group;
  *outs = 0;
  for (int g = 0; g < l.groups; ++g) {
    group.proj[g] = l.proj[g];
    *outs += l.proj[g].out;
  }
  return group;
}

}  // namespace

int64_t lora_partial_floats(int64_t tokens, int64_t in, int groups, int64_t max_rank) {
  return tokens * pieces_of(in).count * groups * max_rank;
}

void launch_lora_shrink(const LoraLaunch& l, cudaStream_t stream) {
  if (l.tokens <= 0) return;
  const Pieces pieces = pieces_of(l.in);
  int64_t outs = 0;
  const Group group = group_of(l, &outs);
  const dim3 grid(static_cast<unsigned>(pieces.count),
                  static_cast<unsigned>((l.tokens + kTileTokens - 1) / kTileTokens));
  const size_t shared = static_cast<size_t>(kTileTokens * pieces.width) * sizeof(float);
  const auto kernel = l.in % 8 == 0 ? lora_shrink_kernel<true> : lora_shrink_kernel<false>;
  kernel<<<grid, kShrinkWarps * 32, shared, stream>>>(
      l.x, l.tokens, l.in, static_cast<int>(pieces.width), static_cast<int>(l.max_rank), l.groups,
      group, l.slot_stride, l.token_lora, l.order, l.partial);
  CUDA_CHECK_LAUNCH();
}

void launch_lora_expand(const LoraLaunch& l, cudaStream_t stream) {
  if (l.tokens <= 0) return;
  const Pieces pieces = pieces_of(l.in);
  int64_t outs = 0;
  const Group group = group_of(l, &outs);
  constexpr int64_t per_block = kExpandThreads * kOutsPerThread;
  const dim3 grid(static_cast<unsigned>((outs + per_block - 1) / per_block),
                  static_cast<unsigned>((l.tokens + kTileTokens - 1) / kTileTokens));
  const size_t shared = static_cast<size_t>(kTileTokens * l.groups * l.max_rank) * sizeof(float);
  // Rank 512 over three projections needs all of 48 KiB besides the block's own variables.
  static const bool raised = [] {
    CUDA_CHECK(cudaFuncSetAttribute(lora_expand_kernel,
                                    cudaFuncAttributeMaxDynamicSharedMemorySize, 64 << 10));
    return true;
  }();
  (void)raised;
  lora_expand_kernel<<<grid, kExpandThreads, shared, stream>>>(
      l.tokens, static_cast<int>(l.max_rank), l.groups, group, static_cast<int>(pieces.count),
      l.slot_stride, l.scales, l.token_lora, l.order, l.partial);
  CUDA_CHECK_LAUNCH();
}

}  // namespace fp8llm::cuda
