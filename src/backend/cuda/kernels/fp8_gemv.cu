// The small-M FP8 GEMM kernel. Each block computes kRows consecutive outputs n for all m rows: its
// threads stride over K in 16-byte chunks (one chunk = 16 weights of each row, within one
// 128-column scale block), so every weight byte is read once, with 16-byte loads, and x (tiny, in
// L1/L2) is read once per block. Partial sums are reduced across the block at the end.
//
// Products are formed on e4m3 values decoded with integer operations (fp8_device.cuh): weights as
// w * 2^-120, activations as x exactly, so each product is exact in fp32 (at most 8 significant
// bits, above the denormal grid) and the result is the fp32 accumulation of q*q times the scales.
#include <algorithm>
#include <stdexcept>

#include "backend/cuda/kernels/block_reduce.cuh"
#include "backend/cuda/kernels/dependent_launch.cuh"
#include "backend/cuda/kernels/fp8_device.cuh"
#include "backend/cuda/kernels/fp8_gemv.h"
#include "backend/cuda/kernels/fp8_gemv_group.cuh"
#include "backend/cuda/runtime/cuda_check.h"
#include "backend/cuda/runtime/dependent_launch.h"

namespace fp8llm::cuda {
namespace {

using detail::e4m3_to_float_scaled;
using detail::e4m3x4_to_float_scaled;
using detail::GroupLayout;
using detail::kQuantBlock;
using detail::kTwoPow120;

constexpr int kThreads = 256;
constexpr int kWarps = kThreads / 32;
constexpr int kChunk = 16;  // bytes per load
// Outputs per block. Measured on H100 at M = 1 and 16 (docs/PERFORMANCE.md): 4 beat 2 and 8 (8
// leaves too few blocks per SM, 2 re-reads x too often).
constexpr int kRowsPerBlock = 4;

__device__ __forceinline__ void decode16(const uint4& v, float f[16]) {
  e4m3x4_to_float_scaled(v.x, f);
  e4m3x4_to_float_scaled(v.y, f + 4);
  e4m3x4_to_float_scaled(v.z, f + 8);
  e4m3x4_to_float_scaled(v.w, f + 12);
}

__device__ __forceinline__ float dot16(const float a[16], const float b[16]) {
  float part = 0.0f;
#pragma unroll
  for (int j = 0; j < kChunk; ++j) part = fmaf(a[j], b[j], part);
  return part;
}

// MT: rows of x the instance handles (m <= MT); kRows: outputs per block (divides 128, so a block's
// rows share one row of block scales); kVec: 16-byte chunks (K % 16 == 0) or single bytes.
template <int MT, int kRows, bool kBlock, bool kVec>
__global__ void __launch_bounds__(kThreads) fp8_gemv_kernel(Fp8GemvArgs p) {
  const int64_t n0 = static_cast<int64_t>(blockIdx.x) * kRows;
  const int m = static_cast<int>(p.m);
  float acc[MT][kRows];
#pragma unroll
  for (int i = 0; i < MT; ++i) {
#pragma unroll
    for (int r = 0; r < kRows; ++r) acc[i][r] = 0.0f;
  }
  // Rows past N re-read the last row (valid memory); their results are dropped.
  const uint8_t* wrow[kRows];
#pragma unroll
  for (int r = 0; r < kRows; ++r) wrow[r] = p.wq + min(n0 + r, p.n - 1) * p.k;
  const float* ws_row = kBlock ? p.ws + (n0 / kQuantBlock) * p.ws_ld : nullptr;

  if constexpr (kVec) {
    const int64_t chunks = p.k / kChunk;
    for (int64_t c = threadIdx.x; c < chunks; c += kThreads) {
      uint4 wv[kRows];
#pragma unroll
      for (int r = 0; r < kRows; ++r) wv[r] = __ldg(reinterpret_cast<const uint4*>(wrow[r]) + c);
      const int64_t kb = c / (kQuantBlock / kChunk);
      const float wscale = kBlock ? __ldg(ws_row + kb) : 1.0f;
      if constexpr (MT <= kRows) {
        // Few x rows: decode them once and keep them; decode one weight row at a time.
        float xf[MT][kChunk];
        float xscale[MT];
#pragma unroll
        for (int i = 0; i < MT; ++i) {
          if (i < m) {
            decode16(__ldg(reinterpret_cast<const uint4*>(p.xq + i * p.k) + c), xf[i]);
#pragma unroll
            for (int j = 0; j < kChunk; ++j) xf[i][j] *= kTwoPow120;
            xscale[i] = kBlock ? __ldg(p.xs + kb * p.xs_ld + i) * wscale : 1.0f;
          }
        }
#pragma unroll
        for (int r = 0; r < kRows; ++r) {
          float wf[kChunk];
          decode16(wv[r], wf);
#pragma unroll
          for (int i = 0; i < MT; ++i) {
            if (i < m) {
              const float part = dot16(xf[i], wf);
              if constexpr (kBlock) {
                acc[i][r] = fmaf(part * kTwoPow120, xscale[i], acc[i][r]);
              } else {
                acc[i][r] += part;
              }
            }
          }
        }
      } else {
        // Many x rows: decode the weights once and keep them; decode one x row at a time.
        float wf[kRows][kChunk];
#pragma unroll
        for (int r = 0; r < kRows; ++r) decode16(wv[r], wf[r]);
#pragma unroll
        for (int i = 0; i < MT; ++i) {
          if (i < m) {
            float xf[kChunk];
            decode16(__ldg(reinterpret_cast<const uint4*>(p.xq + i * p.k) + c), xf);
#pragma unroll
            for (int j = 0; j < kChunk; ++j) xf[j] *= kTwoPow120;
            const float xscale = kBlock ? __ldg(p.xs + kb * p.xs_ld + i) * wscale : 1.0f;
#pragma unroll
            for (int r = 0; r < kRows; ++r) {
              const float part = dot16(xf, wf[r]);
              if constexpr (kBlock) {
                acc[i][r] = fmaf(part * kTwoPow120, xscale, acc[i][r]);
              } else {
                acc[i][r] += part;
              }
            }
          }
        }
      }
    }
  } else {
    for (int64_t kk = threadIdx.x; kk < p.k; kk += kThreads) {
      float wf[kRows];
#pragma unroll
      for (int r = 0; r < kRows; ++r) wf[r] = e4m3_to_float_scaled(wrow[r][kk]);
      const int64_t kb = kk / kQuantBlock;
      const float wscale = kBlock ? ws_row[kb] : 1.0f;
#pragma unroll
      for (int i = 0; i < MT; ++i) {
        if (i < m) {
          const float xf = e4m3_to_float_scaled(p.xq[i * p.k + kk]) * kTwoPow120;
          const float xscale = kBlock ? p.xs[kb * p.xs_ld + i] * wscale : 1.0f;
#pragma unroll
          for (int r = 0; r < kRows; ++r) {
            if constexpr (kBlock) {
              acc[i][r] = fmaf(xf * wf[r] * kTwoPow120, xscale, acc[i][r]);
            } else {
              acc[i][r] = fmaf(xf, wf[r], acc[i][r]);
            }
          }
        }
      }
    }
  }

  __shared__ float red[kWarps][MT][kRows];
  const int lane = threadIdx.x & 31;
  const int warp = threadIdx.x >> 5;
#pragma unroll
  for (int i = 0; i < MT; ++i) {
#pragma unroll
    for (int r = 0; r < kRows; ++r) {
      const float v = warp_sum(acc[i][r]);
      if (lane == 0) red[warp][i][r] = v;
    }
  }
  __syncthreads();
  for (int idx = threadIdx.x; idx < MT * kRows; idx += kThreads) {
    const int i = idx / kRows;
    const int r = idx % kRows;
    const int64_t nn = n0 + r;
    if (i >= m || nn >= p.n) continue;
    float s = 0.0f;
#pragma unroll
    for (int w = 0; w < kWarps; ++w) s += red[w][i][r];
    float out = kBlock ? s : (s * kTwoPow120) * p.xs[i] * p.ws[nn];
    if (p.bias != nullptr) out += __bfloat162float(p.bias[nn]);
    if (p.y_f32 != nullptr) {
      p.y_f32[i * p.ldy + nn] = out;
    } else {
      p.y[i * p.ldy + nn] = __float2bfloat16_rn(out);
    }
  }
}

// M = 1 (decoding one token), the hot path: each warp computes kWarpRows outputs, its lanes
// striding over K in 16-byte chunks with kM1Unroll chunks of every row in flight, and reduces with
// shuffles; no shared state, so no barrier. Values are decoded with the hardware's e4m3x2 -> f16x2
// conversion (exact: every e4m3 value is an f16) and widened to fp32: fewer instructions per byte
// than the integer decode, which keeps this kernel at the memory's pace rather than the ALUs'.
// (Eight chunks in flight, with one or two rows a warp, made a batch-1 token 0.5-0.7 ms slower on
// an H200: docs/PERFORMANCE.md.)
constexpr int kM1Unroll = 4;

__device__ __forceinline__ void decode16_hw(const uint4& v, float f[16]) {
  const uint32_t words[4] = {v.x, v.y, v.z, v.w};
#pragma unroll
  for (int w = 0; w < 4; ++w) {
#pragma unroll
    for (int h = 0; h < 2; ++h) {
      const auto pair = static_cast<__nv_fp8x2_storage_t>(words[w] >> (16 * h));
      const __half2 x2 = __half2(__nv_cvt_fp8x2_to_halfraw2(pair, __NV_E4M3));
      const float2 f2 = __half22float2(x2);
      f[4 * w + 2 * h] = f2.x;
      f[4 * w + 2 * h + 1] = f2.y;
    }
  }
}

template <int kWarpRows, bool kBlock>
__global__ void __launch_bounds__(kThreads) fp8_gemv_m1_kernel(GroupLayout g) {
  const Fp8GemvGroupArgs& p = g.args;
  const int s = detail::segment_of(g);
  const Fp8GemvSegment& seg = p.seg[s];
  const int lane = threadIdx.x & 31;
  const int warp = threadIdx.x >> 5;
  const int64_t n0 =
      (static_cast<int64_t>(static_cast<int>(blockIdx.x) - g.begin[s]) * kWarps + warp) * kWarpRows;
  if (n0 >= seg.n) return;  // exiting counts as allowing the dependent grids
  // Rows past N re-read the last row (valid memory); their results are dropped.
  const uint4* wrow[kWarpRows];
#pragma unroll
  for (int r = 0; r < kWarpRows; ++r)
    wrow[r] = reinterpret_cast<const uint4*>(seg.wq + min(n0 + r, seg.n - 1) * p.k);
  const auto* xrow = reinterpret_cast<const uint4*>(p.xq);
  // kWarpRows divides 128, so a warp's rows share one row of block scales.
  const float* ws_row = kBlock ? seg.ws + (n0 / kQuantBlock) * seg.ws_ld : nullptr;
  const int64_t chunks = p.k / kChunk;
  float acc[kWarpRows];
#pragma unroll
  for (int r = 0; r < kWarpRows; ++r) acc[r] = 0.0f;

  uint4 wv[kM1Unroll][kWarpRows];
  const auto load_weights = [&](int64_t c0) {
#pragma unroll
    for (int u = 0; u < kM1Unroll; ++u) {
      const int64_t c = c0 + 32 * u;
      if (c < chunks) {
#pragma unroll
        for (int r = 0; r < kWarpRows; ++r) wv[u][r] = __ldcs(wrow[r] + c);
      }
    }
  };
  // The weights do not depend on the kernels before this one: their first chunks are requested
  // while those kernels finish (launched with launch_dependent), and only x waits for them.
  load_weights(lane);
  wait_for_prior_grids();
  allow_dependent_grids();
  for (int64_t c0 = lane; c0 < chunks; c0 += 32 * kM1Unroll) {
    if (c0 != lane) load_weights(c0);
    uint4 xv[kM1Unroll];
#pragma unroll
    for (int u = 0; u < kM1Unroll; ++u) {
      const int64_t c = c0 + 32 * u;
      if (c < chunks) xv[u] = __ldg(xrow + c);
    }
#pragma unroll
    for (int u = 0; u < kM1Unroll; ++u) {
      const int64_t c = c0 + 32 * u;
      if (c >= chunks) break;
      float xf[kChunk];
      decode16_hw(xv[u], xf);
      float scale = 1.0f;
      if constexpr (kBlock) {
        const int64_t kb = c / (kQuantBlock / kChunk);
        scale = __ldg(p.xs + kb) * __ldg(ws_row + kb);
      }
#pragma unroll
      for (int r = 0; r < kWarpRows; ++r) {
        float wf[kChunk];
        decode16_hw(wv[u][r], wf);
        const float part = dot16(xf, wf);
        if constexpr (kBlock) {
          acc[r] = fmaf(part, scale, acc[r]);
        } else {
          acc[r] += part;
        }
      }
    }
  }
#pragma unroll
  for (int r = 0; r < kWarpRows; ++r) {
    const float sum = warp_sum(acc[r]);
    const int64_t nn = n0 + r;
    if (lane != 0 || nn >= seg.n) continue;
    float out = kBlock ? sum : sum * p.xs[0] * seg.ws[nn];
    if (seg.bias != nullptr) out += __bfloat162float(seg.bias[nn]);
    seg.y[nn] = out;
  }
}

template <int kWarpRows>
void launch_m1_rows(const Fp8GemvGroupArgs& a, cudaStream_t stream) {
  const GroupLayout g = detail::group_layout(a, kWarps * kWarpRows);
  const dim3 grid(static_cast<unsigned>(g.begin[a.count]));
  if (a.scheme == Fp8Scheme::Block) {
    launch_dependent(Overlap::kWeights, fp8_gemv_m1_kernel<kWarpRows, true>, grid, dim3(kThreads),
                     0, stream, g);
  } else {
    launch_dependent(Overlap::kWeights, fp8_gemv_m1_kernel<kWarpRows, false>, grid, dim3(kThreads),
                     0, stream, g);
  }
}

// More rows per warp share each decoded x chunk among more rows; fewer rows per warp give more
// blocks. Four where the grid still covers every SM a few times over, one for small N.
void launch_group(const Fp8GemvGroupArgs& a, cudaStream_t stream) {
  if (a.tensor_cores && detail::launch_fp8_gemv_group_tc(a, stream)) return;
  int64_t rows = 0;
  for (int s = 0; s < a.count; ++s) rows += a.seg[s].n;
  if (rows >= 8192) {
    launch_m1_rows<4>(a, stream);
  } else if (rows >= 4096) {
    launch_m1_rows<2>(a, stream);
  } else {
    launch_m1_rows<1>(a, stream);
  }
}

template <int MT, int kRows, bool kBlock>
void launch_config(const Fp8GemvArgs& a, bool vec, cudaStream_t stream) {
  const auto blocks = static_cast<unsigned>((a.n + kRows - 1) / kRows);
  if (vec) {
    fp8_gemv_kernel<MT, kRows, kBlock, true><<<blocks, kThreads, 0, stream>>>(a);
  } else {
    fp8_gemv_kernel<MT, kRows, kBlock, false><<<blocks, kThreads, 0, stream>>>(a);
  }
}

template <bool kBlock>
void launch_scheme(const Fp8GemvArgs& a, bool vec, cudaStream_t stream) {
  if (a.m <= 1) {
    launch_config<1, kRowsPerBlock, kBlock>(a, vec, stream);
  } else if (a.m <= 2) {
    launch_config<2, kRowsPerBlock, kBlock>(a, vec, stream);
  } else if (a.m <= 4) {
    launch_config<4, kRowsPerBlock, kBlock>(a, vec, stream);
  } else if (a.m <= 8) {
    launch_config<8, kRowsPerBlock, kBlock>(a, vec, stream);
  } else {
    launch_config<16, kRowsPerBlock, kBlock>(a, vec, stream);
  }
}

bool aligned16(const void* p) {
  return (reinterpret_cast<uintptr_t>(p) & 15u) == 0;
}

}  // namespace

void launch_fp8_gemv(const Fp8GemvArgs& a, cudaStream_t stream) {
  if (a.m < 1 || a.m > kFp8GemvMaxRows)
    throw std::invalid_argument("launch_fp8_gemv: m must be in 1..16");
  if (a.n <= 0 || a.k <= 0) throw std::invalid_argument("launch_fp8_gemv: empty weight");
  if (a.ldy < a.n) throw std::invalid_argument("launch_fp8_gemv: ldy < n");
  if ((a.y == nullptr) == (a.y_f32 == nullptr))
    throw std::invalid_argument("launch_fp8_gemv: set exactly one of y and y_f32");
  const bool vec = a.k % kChunk == 0 && aligned16(a.xq) && aligned16(a.wq);
  // One row with fp32 output, its block scales contiguous: the decode kernel; up to
  // kFp8GemvTcMaxRows rows of fp32 output (rows ldy apart) on the tensor cores: the same kernel, a
  // token a column.
  const bool one = a.m == 1 && (a.scheme == Fp8Scheme::Row || a.xs_ld <= 1);
  const bool few = a.m > 1 && a.tensor_cores && fp8_gemv_tc_supports(a.m, a.k);
  if (vec && a.y_f32 != nullptr && (one || few)) {
    Fp8GemvGroupArgs g;
    g.scheme = a.scheme;
    g.xq = a.xq;
    g.xs = a.xs;
    g.xs_ld = std::max<int64_t>(a.xs_ld, 1);
    g.m = a.m;
    g.k = a.k;
    g.count = 1;
    g.seg[0] = {a.wq, a.ws, a.ws_ld, a.n, a.bias, a.y_f32, a.ldy};
    g.tensor_cores = a.tensor_cores;
    launch_group(g, stream);
  } else if (a.scheme == Fp8Scheme::Block) {
    launch_scheme<true>(a, vec, stream);
  } else {
    launch_scheme<false>(a, vec, stream);
  }
  CUDA_CHECK_LAUNCH();
}

bool fp8_gemv_group_supports(const uint8_t* xq, const uint8_t* wq, int64_t k) {
  return k > 0 && k % kChunk == 0 && aligned16(xq) && aligned16(wq);
}

void launch_fp8_gemv_group(const Fp8GemvGroupArgs& a, cudaStream_t stream) {
  if (a.count < 1 || a.count > kFp8GemvMaxGroup)
    throw std::invalid_argument("launch_fp8_gemv_group: 1 to 4 weights");
  if (a.m != 1 && !(a.tensor_cores && fp8_gemv_tc_supports(a.m, a.k)))
    throw std::invalid_argument("launch_fp8_gemv_group: several tokens need the tensor cores");
  if (a.lora.x != nullptr && !(a.tensor_cores && fp8_gemv_tc_supports(a.m, a.k)))
    throw std::invalid_argument("launch_fp8_gemv_group: LoRA needs the tensor-core kernel");
  for (int s = 0; s < a.count; ++s) {
    if (a.seg[s].n <= 0 || a.seg[s].y == nullptr ||
        !fp8_gemv_group_supports(a.xq, a.seg[s].wq, a.k))
      throw std::invalid_argument("launch_fp8_gemv_group: empty weight, no output, or K % 16 != 0");
  }
  launch_group(a, stream);
  CUDA_CHECK_LAUNCH();
}

}  // namespace fp8llm::cuda
