// The FP8 GEMV of one to 16 tokens summed on the FP8 tensor cores (Fp8GemvGroupArgs::tensor_cores,
// what Fp8Accumulation::TensorCore asks for). The CUDA-core kernel (fp8_gemv.cu) spends about forty
// instructions on every 16 bytes of weights (widen, multiply, add) and holds them in fp32
// registers, so it runs one block of 8 warps an SM at its largest shape and cannot keep enough
// loads in flight for the H200's bandwidth. Here 16 bytes of weights cost half an mma, and a lane
// holds only the bytes it has requested.
//
// A block computes 16 output rows (the mma's M); its warps split K. For each 128-column block
// (the quantization block), lane (g, t) = (lane / 4, lane % 4) loads the 16 bytes at columns
// 16 t and 64 + 16 t of rows g and g + 8, and reads x's bytes at the same columns; it hands them
// to mma.m16n8k32 as columns 4 t .. 4 t + 3 and 16 + 4 t .. 16 + 4 t + 3 of its A and B fragments.
// A dot product does not depend on the order of its terms, so relabelling the columns alike in
// both operands gives the same sum. With one token every column of B is x, so every column of the
// 16 x 8 result is the same y: lane (g, t) keeps rows g and g + 8 of column 2 t. With several,
// column j of B is token j (of each tile of eight), and lane (g, t) keeps columns 2 t and 2 t + 1.
//
// The tensor cores keep about 14 bits while they sum long chains (docs/FP8.md). Here each
// 128-column block's four mmas start from zero, and their sum is scaled and added in fp32, so the
// error does not grow with K: within 3e-7 of a float64 sum on the H100, where cuBLASLt's FP8
// GEMMs land 1e-4 away (tests/cuda/test_gemm.cpp).
#include <cuda_bf16.h>

#include <cstdint>
#include <stdexcept>
#include <type_traits>

#include "backend/cuda/kernels/dependent_launch.cuh"
#include "backend/cuda/kernels/fp8_device.cuh"
#include "backend/cuda/kernels/fp8_gemv_group.cuh"
#include "backend/cuda/runtime/dependent_launch.h"
#include "backend/cuda/runtime/device.h"

namespace fp8llm::cuda::detail {
namespace {

constexpr int kTile = 16;  // output rows a block computes: the mma's M
// A block's warps split K: as many as keep every tile's block resident at once, from 4 to 8. A
// 4,096-row weight has 256 tiles: at four warps each, the H100 held 8 warps an SM and streamed
// at 62-71% of its bandwidth; at eight, two blocks an SM hold them all. q, k and v together have
// 384: eight warps a block would leave 120 of them to a second wave, five hold them in one (three
// blocks an SM). The large weights (thousands of tiles) take 4. Not 16: 512 threads a block would
// cap a thread's registers at 128 and spill the ring.
constexpr int kMinWarps = 4;
constexpr int kMaxWarps = 8;
// 128-column blocks each lane has requested ahead of the one it sums: 256 bytes a lane, 64
// registers (two and six were 2-4% slower at batch 1 on the H100: docs/PERFORMANCE.md).
constexpr int kRing = 4;
constexpr size_t kMaxSharedBytes = 48 * 1024;  // what a block gets without opting in

// d += a (16 x 32 e4m3, row-major) * b (32 x 8 e4m3, column-major), summed by the tensor cores.
__device__ __forceinline__ void mma_e4m3(float (&d)[4], uint32_t a0, uint32_t a1, uint32_t a2,
                                         uint32_t a3, uint32_t b0, uint32_t b1) {
#if defined(__CUDA_ARCH__) && __CUDA_ARCH__ >= 890
  asm("mma.sync.aligned.m16n8k32.row.col.f32.e4m3.e4m3.f32 {%0, %1, %2, %3}, {%4, %5, %6, %7}, "
      "{%8, %9}, {%0, %1, %2, %3};\n"
      : "+f"(d[0]), "+f"(d[1]), "+f"(d[2]), "+f"(d[3])
      : "r"(a0), "r"(a1), "r"(a2), "r"(a3), "r"(b0), "r"(b1));
#else
  __trap();  // the backend is built for sm_89 and later only
#endif
}

// Pieces of the input width each token's x · Aᵀ is split into (a block each), so that no block
// streams all of a wide A (down's 14,336 columns) alone.
__host__ __device__ constexpr int lora_pieces(int64_t k) {
  return static_cast<int>((k + kFp8GemvLoraPiece - 1) / kFp8GemvLoraPiece);
}

// A LoRA shrink block (Fp8GemvLora): unit = (segment * m + token) * pieces + piece. Each thread
// takes four columns at a time and keeps sixteen ranks' sums; the warps' sums are added in warp
// order, so the result depends only on the token's x and factors.
__device__ void lora_shrink_block(const Fp8GemvGroupArgs& p, int unit, int m) {
  const Fp8GemvLora& L = p.lora;
  const int pieces = lora_pieces(p.k);
  const int piece = unit % pieces;
  const int t = (unit / pieces) % m;
  const int s = unit / pieces / m;
  __shared__ float sums[kMaxWarps][16];
  wait_for_prior_grids();
  const int slot = __ldg(L.token_slot + t);
  const int warps = static_cast<int>(blockDim.x >> 5), warp = threadIdx.x >> 5;
  const int lane = threadIdx.x & 31;
  const int64_t c0 = piece * kFp8GemvLoraPiece;
  const int quads = static_cast<int>((min(p.k, c0 + kFp8GemvLoraPiece) - c0) / 4);
  const float4* x = reinterpret_cast<const float4*>(L.x + t * p.k + c0);
  float* u = L.u + static_cast<int64_t>(unit) * L.max_rank;
  if (slot >= 0) {
    const __nv_bfloat16* a = L.a[s] + slot * L.slot_stride + c0;
    for (int r0 = 0; r0 < L.max_rank; r0 += 16) {
      const int ranks = min(16, static_cast<int>(L.max_rank) - r0);
      float acc[16] = {};
      for (int i = threadIdx.x; i < quads; i += blockDim.x) {
        const float4 xv = __ldg(x + i);
#pragma unroll
        for (int r = 0; r < 16; ++r) {
          if (r < ranks) {
            const uint2 av = __ldg(reinterpret_cast<const uint2*>(a + (r0 + r) * p.k) + i);
            const float2 lo = __bfloat1622float2(*reinterpret_cast<const __nv_bfloat162*>(&av.x));
            const float2 hi = __bfloat1622float2(*reinterpret_cast<const __nv_bfloat162*>(&av.y));
            acc[r] = fmaf(xv.x, lo.x, acc[r]);
            acc[r] = fmaf(xv.y, lo.y, acc[r]);
            acc[r] = fmaf(xv.z, hi.x, acc[r]);
            acc[r] = fmaf(xv.w, hi.y, acc[r]);
          }
        }
      }
#pragma unroll
      for (int r = 0; r < 16; ++r) {
        float v = acc[r];
#pragma unroll
        for (int o = 16; o > 0; o >>= 1) v += __shfl_xor_sync(0xffffffffu, v, o);
        if (lane == 0) sums[warp][r] = v;
      }
      __syncthreads();
      if (threadIdx.x < ranks) {
        float v = 0.0f;
        for (int w = 0; w < warps; ++w) v += sums[w][threadIdx.x];
        u[r0 + threadIdx.x] = v;
      }
      __syncthreads();
    }
  }
  // The weights' blocks read u once they see every shrink block counted.
  __threadfence();
  __syncthreads();
  if (threadIdx.x == 0) atomicAdd(L.done, 1);
}

// A thread's (row, token) pairs at the end of a weights' block with LoRA: i and i + blockDim.x (a
// block has at least 128 threads, and 16 rows of at most 16 tokens).
static_assert(2 * 32 * kMinWarps >= kTile * kFp8GemvTcMaxRows);

// Each of the thread's pairs' adapter slot (-1: none), read before the main loop.
__device__ void lora_pair_slots(const Fp8GemvLora& L, int m, int (&slot)[2]) {
#pragma unroll
  for (int j = 0; j < 2; ++j) {
    const int i = static_cast<int>(threadIdx.x) + j * static_cast<int>(blockDim.x);
    slot[j] = i < kTile * m ? __ldg(L.token_slot + i / kTile) : -1;
  }
}

// The end of a weights' block with LoRA: its rows' outputs for each token, plus the token's
// adapter. The first 16 ranks of each pair's B row are requested before the wait for the shrink
// blocks, so that their latency and the wait's overlap.
template <bool kBlock, int kTokens>
__device__ void lora_epilogue(const GroupLayout& g, int s, int64_t n0, int m, int warps,
                              const float (&partial)[kMaxWarps][kTile][kTokens],
                              const int (&pair_slot)[2]) {
  const Fp8GemvGroupArgs& p = g.args;
  const Fp8GemvSegment& seg = p.seg[s];
  const Fp8GemvLora& L = p.lora;
  const int rank = static_cast<int>(L.max_rank);
  const bool vec = rank % 8 == 0;  // B's rows 16-byte aligned
  __shared__ float u[kTokens][kFp8GemvLoraMaxRank];
  int slot[2];
  bool live[2];
  const __nv_bfloat16* brow[2];
  uint4 b[2][2];
#pragma unroll
  for (int j = 0; j < 2; ++j) {
    const int i = static_cast<int>(threadIdx.x) + j * static_cast<int>(blockDim.x);
    const int64_t nn = n0 + i % kTile;
    live[j] = i < kTile * m && nn < seg.n;
    slot[j] = live[j] ? pair_slot[j] : -1;
    brow[j] = slot[j] >= 0 ? L.b[s] + slot[j] * L.slot_stride + nn * rank : nullptr;
    if (slot[j] >= 0 && vec) {
      b[j][0] = __ldg(reinterpret_cast<const uint4*>(brow[j]));
      if (rank > 8) b[j][1] = __ldg(reinterpret_cast<const uint4*>(brow[j]) + 1);
    }
  }
  // The shrink blocks started before any of this launch's weight blocks (blocks start in order of
  // their index), so they are running or done.
  const int shrink_blocks = g.begin[0];
  if (threadIdx.x == 0) {
    while (*reinterpret_cast<volatile const int32_t*>(L.done) < shrink_blocks) __nanosleep(32);
    __threadfence();
  }
  __syncthreads();
  const int pieces = lora_pieces(p.k);
  for (int i = threadIdx.x; i < m * rank; i += blockDim.x) {
    const int t = i / rank, r = i % rank;
    const float* from = L.u + (static_cast<int64_t>(s * m + t) * pieces) * rank + r;
    float v = 0.0f;
    for (int q = 0; q < pieces; ++q) v += __ldcg(from + q * rank);
    u[t][r] = v;
  }
  __syncthreads();
#pragma unroll
  for (int j = 0; j < 2; ++j) {
    if (!live[j]) continue;
    const int i = static_cast<int>(threadIdx.x) + j * static_cast<int>(blockDim.x);
    const int r = i % kTile, t = i / kTile;
    const int64_t nn = n0 + r;
    float sum = 0.0f;
    for (int v = 0; v < warps; ++v) sum += partial[v][r][t];
    float out = kBlock ? sum : sum * __ldg(p.xs + t) * __ldg(seg.ws + nn);
    if (seg.bias != nullptr) out += __bfloat162float(seg.bias[nn]);
    if (slot[j] >= 0) {
      // Ranks in order, eight at a time where the rows allow.
      float d = 0.0f;
      if (vec) {
#pragma unroll
        for (int c = 0; c < kFp8GemvLoraMaxRank / 8; ++c) {
          if (8 * c >= rank) break;
          const uint4 bc = c < 2 ? b[j][c] : __ldg(reinterpret_cast<const uint4*>(brow[j]) + c);
          const __nv_bfloat162* pair = reinterpret_cast<const __nv_bfloat162*>(&bc);
#pragma unroll
          for (int e = 0; e < 4; ++e) {
            const float2 f = __bfloat1622float2(pair[e]);
            d = fmaf(u[t][8 * c + 2 * e], f.x, d);
            d = fmaf(u[t][8 * c + 2 * e + 1], f.y, d);
          }
        }
      } else {
        for (int q = 0; q < rank; ++q) d = fmaf(u[t][q], __bfloat162float(brow[j][q]), d);
      }
      out = fmaf(__ldg(L.slot_scales + slot[j]), d, out);
    }
    seg.y[t * (seg.ldy > 0 ? seg.ldy : seg.n) + nn] = out;
  }
  // Every shrink block has been counted (this block saw them all): the last weights' block to get
  // here leaves the counters at zero for the next launch.
  if (threadIdx.x == 0) {
    const int weight_blocks = static_cast<int>(gridDim.x) - shrink_blocks;
    if (atomicAdd(L.done + 1, 1) == weight_blocks - 1) {
      atomicExch(L.done, 0);
      atomicExch(L.done + 1, 0);
    }
  }
}

// kTiles = 0: one token, staged in shared memory and copied into every column of the mma.
// Otherwise (1 or 2) x holds up to 8 kTiles tokens (GroupArgs::m), read straight from global memory
// (eight tokens of a 14,336-wide x would not fit the shared memory): each 16-row tile of weights
// meets kTiles mmas a step, token 8 c + j in column j of the c-th. A token's sums are the same
// operations in every form, so its outputs do not depend on the tokens beside it.
// kLora: the launch's first g.begin[0] blocks are LoRA shrink blocks (Fp8GemvLora).
template <bool kBlock, int kTiles, bool kLora>
__global__ void __launch_bounds__(32 * kMaxWarps) fp8_gemv_tc_kernel(GroupLayout g) {
  constexpr int kCols = kTiles == 0 ? 1 : kTiles;  // mma column tiles
  constexpr int kTokens = kTiles == 0 ? 1 : 8 * kTiles;
  extern __shared__ uint4 x_shared[];  // one token: x's codes [k / 16], then its block scales
  __shared__ float partial[kMaxWarps][kTile][kTokens];
  const int warps = static_cast<int>(blockDim.x >> 5);
  const Fp8GemvGroupArgs& p = g.args;
  if constexpr (kLora) {
    if (static_cast<int>(blockIdx.x) < g.begin[0])
      return lora_shrink_block(p, static_cast<int>(blockIdx.x),
                               kTiles == 0 ? 1 : static_cast<int>(p.m));
  }
  const int s = segment_of(g);
  const Fp8GemvSegment& seg = p.seg[s];
  const int lane = threadIdx.x & 31;
  const int warp = threadIdx.x >> 5;
  const int row = lane >> 2;
  const int quad = lane & 3;
  const int64_t n0 = static_cast<int64_t>(static_cast<int>(blockIdx.x) - g.begin[s]) * kTile;
  const int k_blocks = static_cast<int>(p.k / kQuantBlock);
  // Warp w takes 128-column blocks w, w + warps, ...: at any moment the block's warps have
  // requested a long run of each row, not one short run per warp (a little faster on the H100).
  const int count = warp < k_blocks ? (k_blocks - warp + warps - 1) / warps : 0;
  const int64_t first_col = static_cast<int64_t>(warp) * kQuantBlock + 16 * quad;
  // Rows past N re-read the last row (valid memory); their results are dropped.
  const uint8_t* lo = seg.wq + min(n0 + row, seg.n - 1) * p.k + first_col;
  const uint8_t* hi = seg.wq + min(n0 + row + 8, seg.n - 1) * p.k + first_col;
  // 16 divides 128, so the block's rows share one row of block scales.
  const float* ws_row = kBlock ? seg.ws + (n0 / kQuantBlock) * seg.ws_ld + warp : nullptr;
  // Several tokens: in column tile c this lane's B column is token 8 c + `row`, and its outputs
  // are tokens 8 c + 2 quad and 8 c + 2 quad + 1 (tokens past m re-read the last one; their
  // results are dropped).
  const int m = kTiles == 0 ? 1 : static_cast<int>(p.m);
  const uint8_t* x_row[kCols];
  int tok[kCols][2];
#pragma unroll
  for (int c = 0; c < kCols; ++c) {
    x_row[c] = p.xq + static_cast<int64_t>(min(8 * c + row, m - 1)) * p.k + first_col;
    tok[c][0] = min(8 * c + 2 * quad, m - 1);
    tok[c][1] = min(8 * c + 2 * quad + 1, m - 1);
  }

  uint4 w[kRing][4];
  float wscale[kRing];
  const auto load = [&](int u, int j) {
    if (j < count) {
      const int64_t off = static_cast<int64_t>(j) * warps * kQuantBlock;
      w[u][0] = __ldcs(reinterpret_cast<const uint4*>(lo + off));
      w[u][1] = __ldcs(reinterpret_cast<const uint4*>(lo + off + 64));
      w[u][2] = __ldcs(reinterpret_cast<const uint4*>(hi + off));
      w[u][3] = __ldcs(reinterpret_cast<const uint4*>(hi + off + 64));
      if constexpr (kBlock) wscale[u] = __ldg(ws_row + j * warps);
    }
  };
  // The weights do not depend on the kernels before this one (launched with launch_dependent):
  // the first are requested while those finish, and only x waits for them.
#pragma unroll
  for (int u = 0; u < kRing; ++u) load(u, u);
  wait_for_prior_grids();
  int lora_slot[2] = {-1, -1};
  if constexpr (kLora) lora_pair_slots(p.lora, m, lora_slot);
  const int chunks = static_cast<int>(p.k / 16);
  auto* x_scale = reinterpret_cast<float*>(x_shared + chunks);
  if constexpr (kTiles == 0) {
    for (int i = threadIdx.x; i < chunks; i += blockDim.x)
      x_shared[i] = __ldg(reinterpret_cast<const uint4*>(p.xq) + i);
    if constexpr (kBlock) {
      for (int i = threadIdx.x; i < k_blocks; i += blockDim.x) x_scale[i] = __ldg(p.xs + i);
    }
    __syncthreads();
  }
  allow_dependent_grids();

  // Per column tile: rows `row` and `row` + 8 of tokens tok[c][0] and tok[c][1] ([0], [1] and
  // [2], [3]; with one token only [0] and [2] are kept).
  float acc[kCols][4] = {};
  for (int j0 = 0; j0 < count; j0 += kRing) {
#pragma unroll
    for (int u = 0; u < kRing; ++u) {
      const int j = j0 + u;
      if (j < count) {
        const int kb = warp + j * warps;
        const int64_t off = static_cast<int64_t>(j) * warps * kQuantBlock;
#pragma unroll
        for (int c = 0; c < kCols; ++c) {
          uint4 xa, xb;
          if constexpr (kTiles == 0) {
            xa = x_shared[kb * 8 + quad];
            xb = x_shared[kb * 8 + 4 + quad];
          } else {
            xa = __ldg(reinterpret_cast<const uint4*>(x_row[c] + off));
            xb = __ldg(reinterpret_cast<const uint4*>(x_row[c] + off + 64));
          }
          float d[4] = {0.0f, 0.0f, 0.0f, 0.0f};
          mma_e4m3(d, w[u][0].x, w[u][2].x, w[u][0].y, w[u][2].y, xa.x, xa.y);
          mma_e4m3(d, w[u][0].z, w[u][2].z, w[u][0].w, w[u][2].w, xa.z, xa.w);
          mma_e4m3(d, w[u][1].x, w[u][3].x, w[u][1].y, w[u][3].y, xb.x, xb.y);
          mma_e4m3(d, w[u][1].z, w[u][3].z, w[u][1].w, w[u][3].w, xb.z, xb.w);
          if constexpr (kBlock) {
            const float scale0 =
                (kTiles == 0 ? x_scale[kb] : __ldg(p.xs + kb * p.xs_ld + tok[c][0])) * wscale[u];
            const float scale1 =
                kTiles == 0 ? scale0 : __ldg(p.xs + kb * p.xs_ld + tok[c][1]) * wscale[u];
            acc[c][0] = fmaf(d[0], scale0, acc[c][0]);
            acc[c][1] = fmaf(d[1], scale1, acc[c][1]);
            acc[c][2] = fmaf(d[2], scale0, acc[c][2]);
            acc[c][3] = fmaf(d[3], scale1, acc[c][3]);
          } else {
#pragma unroll
            for (int e = 0; e < 4; ++e) acc[c][e] += d[e];
          }
        }
        load(u, j + kRing);
      }
    }
  }

  if constexpr (kTiles == 0) {
    if (quad == 0) {
      partial[warp][row][0] = acc[0][0];
      partial[warp][row + 8][0] = acc[0][2];
    }
  } else {
#pragma unroll
    for (int c = 0; c < kCols; ++c) {
      partial[warp][row][8 * c + 2 * quad] = acc[c][0];
      partial[warp][row][8 * c + 2 * quad + 1] = acc[c][1];
      partial[warp][row + 8][8 * c + 2 * quad] = acc[c][2];
      partial[warp][row + 8][8 * c + 2 * quad + 1] = acc[c][3];
    }
  }
  __syncthreads();
  if constexpr (kLora) {
    lora_epilogue<kBlock, kTokens>(g, s, n0, m, warps, partial, lora_slot);
  } else {
    for (int i = threadIdx.x; i < kTile * m; i += blockDim.x) {
      const int r = i % kTile, t = i / kTile;
      const int64_t nn = n0 + r;
      if (nn < seg.n) {
        float sum = 0.0f;
        for (int v = 0; v < warps; ++v) sum += partial[v][r][t];
        float out = kBlock ? sum : sum * __ldg(p.xs + t) * __ldg(seg.ws + nn);
        if (seg.bias != nullptr) out += __bfloat162float(seg.bias[nn]);
        seg.y[t * (seg.ldy > 0 ? seg.ldy : seg.n) + nn] = out;
      }
    }
  }
}

}  // namespace

bool launch_fp8_gemv_group_tc(const Fp8GemvGroupArgs& a, cudaStream_t stream) {
  if (!fp8_gemv_tc_supports(a.m, a.k)) return false;
  const bool lora = a.lora.x != nullptr;
  if (lora && (a.lora.max_rank < 1 || a.lora.max_rank > kFp8GemvLoraMaxRank ||
               a.lora.u == nullptr || a.lora.done == nullptr || a.lora.token_slot == nullptr))
    throw std::invalid_argument("launch_fp8_gemv_group: LoRA arguments");
  const size_t shared =
      a.m > 1 ? 0 : static_cast<size_t>(a.k) + static_cast<size_t>(a.k / kQuantBlock) * 4;
  const int shrink_blocks = lora ? a.count * static_cast<int>(a.m) * lora_pieces(a.k) : 0;
  const GroupLayout g = group_layout(a, kTile, shrink_blocks);
  const int blocks = g.begin[a.count];  // the shrink's blocks and the weights' tiles
  const int sms = device_multiprocessors();
  const dim3 grid(static_cast<unsigned>(blocks));
  const auto launch = [&](auto kernel) {
    int warps = kMaxWarps;
    while (warps > kMinWarps && static_cast<int64_t>(resident_blocks_per_sm(
                                    reinterpret_cast<const void*>(kernel), 32 * warps, shared)) *
                                        sms <
                                    blocks)
      --warps;
    launch_dependent(Overlap::kWeights, kernel, grid, dim3(32 * warps), shared, stream, g);
  };
  const auto launch_tiles = [&](auto block, auto with_lora) {
    constexpr bool kBlock = decltype(block)::value, kLora = decltype(with_lora)::value;
    if (a.m == 1) {
      launch(fp8_gemv_tc_kernel<kBlock, 0, kLora>);
    } else if (a.m <= 8) {
      launch(fp8_gemv_tc_kernel<kBlock, 1, kLora>);
    } else {
      launch(fp8_gemv_tc_kernel<kBlock, 2, kLora>);
    }
  };
  const auto with_scheme = [&](auto with_lora) {
    if (a.scheme == Fp8Scheme::Block) {
      launch_tiles(std::true_type{}, with_lora);
    } else {
      launch_tiles(std::false_type{}, with_lora);
    }
  };
  if (lora) {
    with_scheme(std::true_type{});
  } else {
    with_scheme(std::false_type{});
  }
  return true;
}

}  // namespace fp8llm::cuda::detail

namespace fp8llm::cuda {

int64_t fp8_gemv_lora_scratch_floats(int count, int64_t m, int64_t k, int64_t max_rank) {
  return static_cast<int64_t>(count) * m * detail::lora_pieces(k) * max_rank;
}

bool fp8_gemv_tc_supports(int64_t m, int64_t k) {
  if (m < 1 || m > kFp8GemvTcMaxRows || k <= 0 || k % detail::kQuantBlock != 0) return false;
  // One token stages x and its scales in a block's default shared memory.
  return m > 1 || static_cast<size_t>(k) + static_cast<size_t>(k / detail::kQuantBlock) * 4 <=
                      detail::kMaxSharedBytes;
}

}  // namespace fp8llm::cuda
