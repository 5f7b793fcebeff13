// Kernels of lora.h.
#include <algorithm>
#include <cstdint>

#include "backend/cuda/kernels/block_reduce.cuh"
#include "backend/cuda/kernels/lora.h"
#include "backend/cuda/runtime/cuda_check.h"

namespace fp8llm::cuda {
namespace {

constexpr int kShrinkWarps = 8;
// A lane reads 8 consecutive values of a row at a time (one 16-byte load of bf16), so a warp
// covers a segment of 256; a piece is at most kMaxSegments segments wide.
constexpr int64_t kSegment = 256;
constexpr int kMaxSegments = 4;
// Rows a warp sums at once: their loads are in flight together.
constexpr int kRowsAtOnce = 4;
// The input width is cut into pieces: enough blocks to keep the SMs reading at batch 1, few
// partial sums for the expand to add up.
constexpr int64_t kPreferredPieces = 16;
constexpr int kExpandThreads = 256;
// Tokens a block of the expand serves. A thread takes them one after another, each a dependent
// round trip (B's row, then y), so fewer tokens a block and more blocks keep more of them in
// flight: at batch 64, eight gave 192 blocks for q/k/v, fewer than two an SM (16.4 us a call).
constexpr int kExpandTokens = 2;

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

// grid (pieces, tokens): the block's warps take the group's rows (g, r) in turn, kRowsAtOnce at
// a time, each summing x[t, piece] · A_g[r, piece] into partial[t, piece, g * max_rank + r]. A
// token's sum is added in the same order whatever the batch: lane by lane, then across the warp.
// kVector: `in` is a multiple of 8, so every 8-value run of a row is 16-byte aligned and inside
// the row or past it.
template <bool kVector>
__global__ void __launch_bounds__(kShrinkWarps * 32)
    lora_shrink_kernel(const float* __restrict__ x, int64_t in, int64_t width, int64_t max_rank,
                       int groups, Group group, int64_t slot_stride,
                       const int32_t* __restrict__ token_lora, float* __restrict__ partial) {
  const int64_t t = blockIdx.y;
  const int32_t slot = token_lora[t];
  if (slot < 0) return;
  const int64_t piece = blockIdx.x, pieces = gridDim.x;
  const int64_t k0 = piece * width, k1 = min(in, k0 + width);
  const int lane = threadIdx.x & 31, warp = threadIdx.x >> 5;
  const float* xr = x + t * in;
  const int64_t rows = groups * max_rank;
  float* out = partial + (t * pieces + piece) * rows;
  // The lane's values of x, the same for every row.
  float xv[kMaxSegments][8];
#pragma unroll
  for (int j = 0; j < kMaxSegments; ++j) {
    const int64_t k = k0 + j * kSegment + lane * 8;
#pragma unroll
    for (int i = 0; i < 8; ++i) xv[j][i] = 0.0f;
    if (kVector) {
      if (k < k1) {
        const float4 lo = *reinterpret_cast<const float4*>(xr + k);
        const float4 hi = *reinterpret_cast<const float4*>(xr + k + 4);
        xv[j][0] = lo.x, xv[j][1] = lo.y, xv[j][2] = lo.z, xv[j][3] = lo.w;
        xv[j][4] = hi.x, xv[j][5] = hi.y, xv[j][6] = hi.z, xv[j][7] = hi.w;
      }
    } else {
#pragma unroll
      for (int i = 0; i < 8; ++i)
        if (k + i < k1) xv[j][i] = xr[k + i];
    }
  }
  for (int64_t first = warp; first < rows; first += kShrinkWarps * kRowsAtOnce) {
    float acc[kRowsAtOnce];
#pragma unroll
    for (int q = 0; q < kRowsAtOnce; ++q) {
      acc[q] = 0.0f;
      const int64_t row = first + q * kShrinkWarps;
      if (row >= rows) continue;
      const int g = static_cast<int>(row / max_rank);
      const int64_t r = row - g * max_rank;
      const __nv_bfloat16* ar = group.proj[g].a + static_cast<int64_t>(slot) * slot_stride + r * in;
#pragma unroll
      for (int j = 0; j < kMaxSegments; ++j) {
        const int64_t k = k0 + j * kSegment + lane * 8;
        if (kVector) {
          if (k >= k1) continue;
          const uint4 raw = *reinterpret_cast<const uint4*>(ar + k);
          const auto* v = reinterpret_cast<const __nv_bfloat16*>(&raw);
#pragma unroll
          for (int i = 0; i < 8; ++i) acc[q] += xv[j][i] * __bfloat162float(v[i]);
        } else {
#pragma unroll
          for (int i = 0; i < 8; ++i)
            if (k + i < k1) acc[q] += xv[j][i] * __bfloat162float(ar[k + i]);
        }
      }
    }
#pragma unroll
    for (int q = 0; q < kRowsAtOnce; ++q) {
      const float sum = warp_sum(acc[q]);
      const int64_t row = first + q * kShrinkWarps;
      if (lane == 0 && row < rows) out[row] = sum;
    }
  }
}

// grid (ceil(sum of outs / kExpandThreads), ceil(tokens / kExpandTokens)): the block adds up
// the shrink's pieces for its tokens (in piece order), then thread n adds, for each of them,
// scale * (u_g · B_g[n]) to y_g[t, n] for the projection g its column falls in.
__global__ void __launch_bounds__(kExpandThreads)
    lora_expand_kernel(int64_t tokens, int64_t max_rank, int groups, Group group, int64_t pieces,
                       int64_t slot_stride, const float* __restrict__ scales,
                       const int32_t* __restrict__ token_lora, const float* __restrict__ partial) {
  extern __shared__ float u[];  // [kExpandTokens, groups * max_rank]
  const int64_t t0 = static_cast<int64_t>(blockIdx.y) * kExpandTokens;
  const int64_t rows = groups * max_rank;
  for (int64_t i = threadIdx.x; i < kExpandTokens * rows; i += kExpandThreads) {
    const int64_t t = t0 + i / rows, row = i % rows;
    float s = 0.0f;
    if (t < tokens && token_lora[t] >= 0) {
      const float* p = partial + t * pieces * rows + row;
#pragma unroll 8
      for (int64_t j = 0; j < pieces; ++j) s += p[j * rows];
    }
    u[i] = s;
  }
  __syncthreads();
  int64_t n = static_cast<int64_t>(blockIdx.x) * kExpandThreads + threadIdx.x;
  int g = 0;
  while (g < groups && n >= group.proj[g].out) n -= group.proj[g].out, ++g;
  if (g == groups) return;
  const LoraProjection& pr = group.proj[g];
  for (int tt = 0; tt < kExpandTokens; ++tt) {
    const int64_t t = t0 + tt;
    if (t >= tokens) break;
    const int32_t slot = token_lora[t];
    if (slot < 0) continue;
    const __nv_bfloat16* br = pr.b + static_cast<int64_t>(slot) * slot_stride + n * max_rank;
    const float* ug = u + tt * rows + g * max_rank;
    float d = 0.0f;
    if (max_rank % 8 == 0) {
      // Rows of B start 16-byte aligned when the rank is a multiple of 8 (cuda_lora.cpp).
      for (int64_t r = 0; r < max_rank; r += 8) {
        const uint4 raw = *reinterpret_cast<const uint4*>(br + r);
        const auto* v = reinterpret_cast<const __nv_bfloat16*>(&raw);
#pragma unroll
        for (int i = 0; i < 8; ++i) d = __fadd_rn(d, __fmul_rn(ug[r + i], __bfloat162float(v[i])));
      }
    } else {
      for (int64_t r = 0; r < max_rank; ++r)
        d = __fadd_rn(d, __fmul_rn(ug[r], __bfloat162float(br[r])));
    }
    float* yr = pr.y + t * pr.out + n;
    *yr = __fadd_rn(*yr, __fmul_rn(scales[slot], d));
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
  const dim3 grid(static_cast<unsigned>(pieces.count), static_cast<unsigned>(l.tokens));
  if (l.in % 8 == 0) {
    lora_shrink_kernel<true>
        <<<grid, kShrinkWarps * 32, 0, stream>>>(l.x, l.in, pieces.width, l.max_rank, l.groups,
                                                 group, l.slot_stride, l.token_lora, l.partial);
  } else {
    lora_shrink_kernel<false>
        <<<grid, kShrinkWarps * 32, 0, stream>>>(l.x, l.in, pieces.width, l.max_rank, l.groups,
                                                 group, l.slot_stride, l.token_lora, l.partial);
  }
  CUDA_CHECK_LAUNCH();
}

void launch_lora_expand(const LoraLaunch& l, cudaStream_t stream) {
  if (l.tokens <= 0) return;
  const Pieces pieces = pieces_of(l.in);
  int64_t outs = 0;
  const Group group = group_of(l, &outs);
  const dim3 grid(static_cast<unsigned>((outs + kExpandThreads - 1) / kExpandThreads),
                  static_cast<unsigned>((l.tokens + kExpandTokens - 1) / kExpandTokens));
  const size_t shared = static_cast<size_t>(kExpandTokens * l.groups * l.max_rank) * sizeof(float);
  lora_expand_kernel<<<grid, kExpandThreads, shared, stream>>>(l.tokens, l.max_rank, l.groups,
                                                               group, pieces.count, l.slot_stride,
                                                               l.scales, l.token_lora, l.partial);
  CUDA_CHECK_LAUNCH();
}

}  // namespace fp8llm::cuda
