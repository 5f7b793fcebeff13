// Kernels of lora.h.
#include <algorithm>
#include <cstdint>

#include <cooperative_groups.h>

#include "backend/cuda/kernels/dependent_launch.cuh"
#include "backend/cuda/kernels/lora.h"
#include "backend/cuda/kernels/mma_bf16.cuh"
#include "backend/cuda/runtime/cuda_check.h"
#include "backend/cuda/runtime/dependent_launch.h"

namespace fp8llm::cuda {
namespace {

using detail::bf16_pair;
using detail::mma_bf16;

constexpr int kWarps = 4;
constexpr int kThreads = kWarps * 32;
// The input width is cut into pieces of whole segments: enough blocks to keep the SMs reading at
// batch 1, few partial sums to add up.
constexpr int64_t kSegment = 256;
constexpr int kMaxSegments = 4;
constexpr int64_t kPreferredPieces = 16;
// Tokens a tile takes are 8 per n-tile of the products; tiles of 32 from this many tokens on,
// where reading each adapter row once for more tokens pays for the passes a tile makes.
constexpr int64_t kWideTilesFrom = 128;
constexpr int kNarrowTile = 8;
// The shrink's warps hold 16-row tiles of u, kChunkTiles at a time.
constexpr int kChunkTiles = 4;
constexpr int kChunkRows = 16 * kChunkTiles;

struct Pieces {
  int64_t count = 0, width = 0;
};

// Where the pieces' sums of a token's u are added up, in piece order either way (batch
// invariance): by the last block of the tile to finish the shrink, through global memory; or by
// the blocks of a thread block cluster that spans the tile's pieces, through each other's shared
// memory (no round trips to L2 on the way, which matter while the base model's GEMM beside the
// shrink keeps the memory busy).
enum class Reduce { LastBlock, Cluster };
// The cluster holds every piece of a tile: at most 16 blocks (H100's largest, non-portable), and
// their sums for at most this many rows of u in shared memory.
constexpr int64_t kClusterMaxPieces = 16;
constexpr int kClusterMaxRows = 192;

// Depends on `in` only (batch invariance: see lora.h).
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

// x (or u) as the bf16 value nearest it and the bf16 nearest what that leaves.
struct Split {
  uint32_t hi, lo;
};
__device__ __forceinline__ Split split_pair(float a, float b) {
  const __nv_bfloat16 ha = __float2bfloat16_rn(a), hb = __float2bfloat16_rn(b);
  return {bf16_pair(ha, hb), bf16_pair(__float2bfloat16_rn(a - __bfloat162float(ha)),
                                       __float2bfloat16_rn(b - __bfloat162float(hb)))};
}

// kN consecutive elements k .. k + kN - 1 of a row (nullptr: none), zero from `end` on, packed
// as bf16 pairs or as floats. kAligned: they are all inside the row and the load is aligned to
// its size.
template <int kN, bool kAligned>
__device__ __forceinline__ void load_bf16s(const __nv_bfloat16* row, int64_t k, int64_t end,
                                           uint32_t (&out)[kN / 2]) {
  static_assert(kN == 4 || kN == 8, "whole 8- or 16-byte loads");
  if (row == nullptr) {
#pragma unroll
    for (int i = 0; i < kN / 2; ++i) out[i] = 0;
  } else if constexpr (kAligned) {
    if constexpr (kN == 8) {
      const uint4 v = *reinterpret_cast<const uint4*>(row + k);
      out[0] = v.x, out[1] = v.y, out[2] = v.z, out[3] = v.w;
    } else {
      const uint2 v = *reinterpret_cast<const uint2*>(row + k);
      out[0] = v.x, out[1] = v.y;
    }
  } else {
    const __nv_bfloat16 zero = __float2bfloat16_rn(0.0f);
#pragma unroll
    for (int i = 0; i < kN / 2; ++i)
      out[i] = bf16_pair(k + 2 * i < end ? row[k + 2 * i] : zero,
                         k + 2 * i + 1 < end ? row[k + 2 * i + 1] : zero);
  }
}
template <int kN, bool kAligned>
__device__ __forceinline__ void load_floats(const float* row, int64_t k, int64_t end,
                                            float (&out)[kN]) {
  static_assert(kN % 4 == 0, "whole 16-byte loads");
  if (row == nullptr) {
#pragma unroll
    for (int i = 0; i < kN; ++i) out[i] = 0.0f;
  } else if constexpr (kAligned) {
#pragma unroll
    for (int i = 0; i < kN; i += 4) {
      const float4 v = *reinterpret_cast<const float4*>(row + k + i);
      out[i] = v.x, out[i + 1] = v.y, out[i + 2] = v.z, out[i + 3] = v.w;
    }
  } else {
#pragma unroll
    for (int i = 0; i < kN; ++i) out[i] = k + i < end ? row[k + i] : 0.0f;
  }
}

// Loads the slots and rows of the tile's tokens (positions t0.. of the grouped order; slot -1
// past the batch), in one round trip, and marks each slot's first token in the tile: a block
// makes one pass per marked token. Returns whether there is any (the same in every thread).
template <int kTok>
__device__ __forceinline__ bool load_tile(const int32_t* __restrict__ token_rows,
                                          const int32_t* __restrict__ row_slots, int64_t t0,
                                          int64_t tokens, int32_t* rows, int32_t* slots,
                                          bool* first) {
  if (threadIdx.x < kTok) {
    const int64_t t = t0 + threadIdx.x;
    slots[threadIdx.x] = t < tokens ? row_slots[t] : -1;
    rows[threadIdx.x] = t < tokens ? token_rows[t] : 0;
  }
  __syncthreads();
  if (threadIdx.x < kTok) {
    const int32_t s = slots[threadIdx.x];
    bool is_first = s >= 0;
    for (int i = 0; i < static_cast<int>(threadIdx.x); ++i) is_first = is_first && slots[i] != s;
    first[threadIdx.x] = is_first;
  }
  __syncthreads();
  bool any = false;
  for (int i = 0; i < kTok; ++i) any = any || first[i];
  return any;
}

// Asks L2 for slot s's B of every projection of the group, the blocks of the tile's pieces
// taking a share each: at one tile's batch sizes the expand waits on nothing else from memory,
// and the shrink runs beside the base GEMM, before the expand can start.
__device__ __forceinline__ void prefetch_b(const Group& group, int groups, int max_rank,
                                           int64_t slot_offset, int piece, int pieces) {
  constexpr int kLine = 64;  // bf16 elements of a 128-byte line
  for (int g = 0; g < groups; ++g) {
    const __nv_bfloat16* b = group.proj[g].b + slot_offset;
    const int64_t lines = (group.proj[g].out * max_rank + kLine - 1) / kLine;
    for (int64_t i = static_cast<int64_t>(piece) * kThreads + threadIdx.x; i < lines;
         i += static_cast<int64_t>(pieces) * kThreads)
      asm volatile("prefetch.global.L2 [%0];\n" ::"l"(b + i * kLine));
  }
}

// grid (pieces, tiles of 8 kNt tokens), kThreads. For each adapter s in the tile (first asking
// L2 for its B where `prefetch`), the warps split the piece's 32-column blocks (warp w: blocks
// w, w + 4, ...). In a block a lane reads 8 consecutive columns of each of its rows of A_s
// (16 bytes) and of x, and gives the first four to one mma step and the last four to the next;
// the mma's k order is a fixed permutation of the columns, the same for A and x, which changes no
// sum's order from batch to batch. Rows are the group's (g, r), g * max_rank + r, in 16-row
// tiles, kChunkTiles at a time. The four warps' sums are added in warp order into the piece's
// sums for the tokens of s (partial[t, piece, row], or the block's shared memory for a
// cluster), which kReduce adds up into u[t, row]. kFull: `in` is a multiple of 32, so every
// block of columns is whole and every load aligned.
template <int kNt, Reduce kReduce, bool kFull>
__global__ void __launch_bounds__(kThreads)
    lora_shrink_kernel(const float* __restrict__ x, int64_t tokens, int64_t in, int64_t width,
                       int pieces, int max_rank, int groups, Group group, int64_t slot_stride,
                       bool prefetch, const int32_t* __restrict__ token_rows,
                       const int32_t* __restrict__ row_slots, float* __restrict__ partial,
                       float* __restrict__ u, int32_t* __restrict__ tile_counts) {
  constexpr int kTok = 8 * kNt;
  // Column blocks whose loads a warp has in flight together.
  constexpr int kUnroll = kNt == 1 ? 2 : 1;
  __shared__ int32_t slots[kTok], trows[kTok];
  __shared__ bool first[kTok];
  __shared__ float sums[kWarps][kChunkRows][kTok + 1];
  __shared__ float piece_sums[kReduce == Reduce::Cluster ? kTok * kClusterMaxRows : 1];
  __shared__ bool last;
  const int64_t t0 = static_cast<int64_t>(blockIdx.y) * kTok;
  if (!load_tile<kTok>(token_rows, row_slots, t0, tokens, trows, slots, first)) return;
  const int piece = static_cast<int>(blockIdx.x);
  const int64_t k0 = piece * width, k1 = min(in, k0 + width);
  const int blocks = static_cast<int>((k1 - k0 + 31) / 32);
  const int lane = threadIdx.x & 31, warp = threadIdx.x >> 5, gid = lane >> 2, tig = lane & 3;
  const int rows = groups * max_rank;
  // The x rows of this lane's tokens (columns gid of each n-tile).
  const float* xr[kNt];
#pragma unroll
  for (int n = 0; n < kNt; ++n) {
    const int64_t t = t0 + n * 8 + gid;
    xr[n] = t < tokens ? x + static_cast<int64_t>(trows[n * 8 + gid]) * in : nullptr;
  }
  for (int f = 0; f < kTok; ++f) {
    if (!first[f]) continue;
    const int32_t s = slots[f];
    if (prefetch) prefetch_b(group, groups, max_rank, s * slot_stride, piece, pieces);
    for (int chunk = 0; chunk < rows; chunk += kChunkRows) {
      // This lane's rows of A_s: gid and gid + 8 of each row tile.
      const __nv_bfloat16* ar[kChunkTiles][2];
#pragma unroll
      for (int m = 0; m < kChunkTiles; ++m) {
#pragma unroll
        for (int h = 0; h < 2; ++h) {
          const int row = chunk + m * 16 + h * 8 + gid;
          const int g = row / max_rank, r = row - g * max_rank;
          ar[m][h] = row < rows ? group.proj[g].a + s * slot_stride + static_cast<int64_t>(r) * in
                                : nullptr;
        }
      }
      float acc[kChunkTiles][kNt][4] = {};
      for (int j0 = warp; j0 < blocks; j0 += kWarps * kUnroll) {
        uint32_t av[kUnroll][kChunkTiles][2][4];
        float xv[kUnroll][kNt][8];
#pragma unroll
        for (int q = 0; q < kUnroll; ++q) {
          const int j = j0 + q * kWarps;
          const int64_t k = k0 + static_cast<int64_t>(j) * 32 + tig * 8;
          const bool inside = j < blocks;
#pragma unroll
          for (int m = 0; m < kChunkTiles; ++m)
#pragma unroll
            for (int h = 0; h < 2; ++h)
              load_bf16s<8, kFull>(inside ? ar[m][h] : nullptr, k, k1, av[q][m][h]);
#pragma unroll
          for (int n = 0; n < kNt; ++n)
            load_floats<8, kFull>(inside ? xr[n] : nullptr, k, k1, xv[q][n]);
        }
#pragma unroll
        for (int q = 0; q < kUnroll; ++q) {
#pragma unroll
          for (int step = 0; step < 2; ++step) {
            Split b0[kNt], b1[kNt];
#pragma unroll
            for (int n = 0; n < kNt; ++n) {
              b0[n] = split_pair(xv[q][n][4 * step], xv[q][n][4 * step + 1]);
              b1[n] = split_pair(xv[q][n][4 * step + 2], xv[q][n][4 * step + 3]);
            }
#pragma unroll
            for (int m = 0; m < kChunkTiles; ++m) {
              if (chunk + m * 16 >= rows) continue;
              const uint32_t a[4] = {av[q][m][0][2 * step], av[q][m][1][2 * step],
                                     av[q][m][0][2 * step + 1], av[q][m][1][2 * step + 1]};
#pragma unroll
              for (int n = 0; n < kNt; ++n) {
                mma_bf16(acc[m][n], a, b0[n].hi, b1[n].hi);
                mma_bf16(acc[m][n], a, b0[n].lo, b1[n].lo);
              }
            }
          }
        }
      }
#pragma unroll
      for (int m = 0; m < kChunkTiles; ++m) {
#pragma unroll
        for (int n = 0; n < kNt; ++n) {
          const int c = n * 8 + tig * 2;
          sums[warp][m * 16 + gid][c] = acc[m][n][0];
          sums[warp][m * 16 + gid][c + 1] = acc[m][n][1];
          sums[warp][m * 16 + gid + 8][c] = acc[m][n][2];
          sums[warp][m * 16 + gid + 8][c + 1] = acc[m][n][3];
        }
      }
      __syncthreads();
      for (int i = threadIdx.x; i < kChunkRows * kTok; i += kThreads) {
        const int rr = i % kChunkRows, tt = i / kChunkRows, row = chunk + rr;
        if (row >= rows || slots[tt] != s) continue;
        const float v =
            __fadd_rn(__fadd_rn(__fadd_rn(sums[0][rr][tt], sums[1][rr][tt]), sums[2][rr][tt]),
                      sums[3][rr][tt]);
        if constexpr (kReduce == Reduce::Cluster) {
          piece_sums[tt * rows + row] = v;
        } else {
          partial[((t0 + tt) * pieces + piece) * rows + row] = v;
        }
      }
      __syncthreads();
    }
  }
  if constexpr (kReduce == Reduce::Cluster) {
#if defined(__CUDA_ARCH__) && __CUDA_ARCH__ >= 900
    namespace cg = cooperative_groups;
    const cg::cluster_group cluster = cg::this_cluster();
    cluster.sync();  // every piece's sums are in its block's shared memory
    // The cluster spans x: block `piece` holds piece `piece`; each adds a share of the sums.
    for (int i = piece * kThreads + static_cast<int>(threadIdx.x); i < kTok * rows;
         i += pieces * kThreads) {
      const int tt = i / rows;
      if (slots[tt] < 0) continue;
      float part[kClusterMaxPieces];
#pragma unroll
      for (int j = 0; j < kClusterMaxPieces; ++j)
        part[j] = j < pieces ? *cluster.map_shared_rank(&piece_sums[i], j) : 0.0f;
      float v = 0.0f;
#pragma unroll
      for (int j = 0; j < kClusterMaxPieces; ++j)
        if (j < pieces) v = __fadd_rn(v, part[j]);
      u[(t0 + tt) * rows + i % rows] = v;
    }
    cluster.sync();  // no block leaves while another reads its shared memory
#else
    __trap();  // clusters are Hopper's; plan_of() never picks them on older devices
#endif
  } else if constexpr (kReduce == Reduce::LastBlock) {
    // The last block of the tile adds the pieces (the others' writes are seen after the fence).
    __threadfence();
    __syncthreads();
    if (threadIdx.x == 0) last = atomicAdd(&tile_counts[blockIdx.y], 1) == pieces - 1;
    __syncthreads();
    if (!last) return;
    __threadfence();
    for (int i = threadIdx.x; i < kTok * rows; i += kThreads) {
      const int tt = i / rows, row = i % rows;
      if (slots[tt] < 0) continue;
      // The pieces' sums in the cluster's order, read past this SM's L1 (which may hold a line
      // of them from before another block wrote it).
      const float* p = partial + (t0 + tt) * pieces * rows + row;
      constexpr int kAtOnce = 16;
      float v = 0.0f;
      for (int j0 = 0; j0 < pieces; j0 += kAtOnce) {
        float part[kAtOnce];
#pragma unroll
        for (int j = 0; j < kAtOnce; ++j)
          part[j] = j0 + j < pieces ? __ldcg(p + static_cast<int64_t>(j0 + j) * rows) : 0.0f;
#pragma unroll
        for (int j = 0; j < kAtOnce; ++j)
          if (j0 + j < pieces) v = __fadd_rn(v, part[j]);
      }
      u[(t0 + tt) * rows + row] = v;
    }
    if (threadIdx.x == 0) tile_counts[blockIdx.y] = 0;
  }
}

// grid (warps / kWarps, tiles of 8 kNt tokens), kThreads. Each projection's outputs are cut into
// 16-row tiles, kTiles to a warp, projection by projection. For each adapter s in the
// tile: D = B_s[rows of the tiles] · u_gᵀ (both halves of u), K = max_rank in steps of 16 (a
// lane reads 4 consecutive columns of B and of u, the step's columns in a fixed permutation),
// and y_g[t, n] += scale_s * D[n, t] for the tokens of s. The outputs, B and u are requested
// together, before any product. kFull: max_rank is a multiple of 16.
template <int kNt, int kTiles, bool kFull>
__global__ void __launch_bounds__(kThreads)
    lora_expand_kernel(int64_t tokens, int max_rank, int groups, Group group, int64_t slot_stride,
                       const float* __restrict__ scales, const int32_t* __restrict__ token_rows,
                       const int32_t* __restrict__ row_slots, const float* __restrict__ u) {
  wait_for_prior_grids();   // launched to overlap the projection before it (launch_dependent)
  allow_dependent_grids();  // the kernel after it may start its own preamble
  constexpr int kTok = 8 * kNt;
  __shared__ int32_t slots[kTok], trows[kTok];
  __shared__ bool first[kTok];
  const int64_t t0 = static_cast<int64_t>(blockIdx.y) * kTok;
  if (!load_tile<kTok>(token_rows, row_slots, t0, tokens, trows, slots, first)) return;
  const int lane = threadIdx.x & 31, warp = threadIdx.x >> 5, gid = lane >> 2, tig = lane & 3;
  const int rows = groups * max_rank;
  int w = static_cast<int>(blockIdx.x) * kWarps + warp, g = 0;
  for (; g < groups; ++g) {
    const int warps = static_cast<int>((group.proj[g].out + 16 * kTiles - 1) / (16 * kTiles));
    if (w < warps) break;
    w -= warps;
  }
  if (g == groups) return;
  const LoraProjection pr = group.proj[g];
  const int64_t n0 = static_cast<int64_t>(w) * kTiles * 16;
  // The offsets in y of this lane's tokens' rows: tokens 2 tig, 2 tig + 1 of each n-tile.
  int64_t yrow[kNt][2];
#pragma unroll
  for (int n = 0; n < kNt; ++n)
#pragma unroll
    for (int c = 0; c < 2; ++c) {
      const int64_t t = t0 + n * 8 + tig * 2 + c;
      yrow[n][c] = t < tokens ? static_cast<int64_t>(trows[n * 8 + tig * 2 + c]) *
                                    (pr.ld > 0 ? pr.ld : pr.out)
                              : 0;
    }
  // This lane's rows of u: token gid of each n-tile.
  const float* ur[kNt];
#pragma unroll
  for (int n = 0; n < kNt; ++n) {
    const int64_t t = t0 + n * 8 + gid;
    ur[n] = t < tokens ? u + t * rows + g * max_rank : nullptr;
  }
  for (int f = 0; f < kTok; ++f) {
    if (!first[f]) continue;
    const int32_t s = slots[f];
    const float scale = scales[s];
    const auto mine = [&](int j, int n, int c) {
      return n0 + j * 16 + gid + (c >> 1) * 8 < pr.out && slots[n * 8 + tig * 2 + (c & 1)] == s;
    };
    const auto y_at = [&](int j, int n, int c) {
      return pr.y + yrow[n][c & 1] + n0 + j * 16 + gid + (c >> 1) * 8;
    };
    float yv[kTiles][kNt][4];
#pragma unroll
    for (int j = 0; j < kTiles; ++j)
#pragma unroll
      for (int n = 0; n < kNt; ++n)
#pragma unroll
        for (int c = 0; c < 4; ++c) yv[j][n][c] = mine(j, n, c) ? *y_at(j, n, c) : 0.0f;
    const __nv_bfloat16* bs = pr.b + s * slot_stride;
    float acc[kTiles][kNt][4] = {};
    for (int r0 = 0; r0 < max_rank; r0 += 16) {
      const int r = r0 + tig * 4;
      uint32_t a[kTiles][4];
#pragma unroll
      for (int j = 0; j < kTiles; ++j) {
        const int64_t na = n0 + j * 16 + gid, nb = na + 8;
        uint32_t pa[2], pb[2];
        load_bf16s<4, kFull>(na < pr.out ? bs + na * max_rank : nullptr, r, max_rank, pa);
        load_bf16s<4, kFull>(nb < pr.out ? bs + nb * max_rank : nullptr, r, max_rank, pb);
        a[j][0] = pa[0], a[j][1] = pb[0], a[j][2] = pa[1], a[j][3] = pb[1];
      }
      Split b0[kNt], b1[kNt];
#pragma unroll
      for (int n = 0; n < kNt; ++n) {
        float uv[4];
        load_floats<4, kFull>(ur[n], r, max_rank, uv);
        b0[n] = split_pair(uv[0], uv[1]);
        b1[n] = split_pair(uv[2], uv[3]);
      }
#pragma unroll
      for (int j = 0; j < kTiles; ++j)
#pragma unroll
        for (int n = 0; n < kNt; ++n) {
          mma_bf16(acc[j][n], a[j], b0[n].hi, b1[n].hi);
          mma_bf16(acc[j][n], a[j], b0[n].lo, b1[n].lo);
        }
    }
#pragma unroll
    for (int j = 0; j < kTiles; ++j)
#pragma unroll
      for (int n = 0; n < kNt; ++n)
#pragma unroll
        for (int c = 0; c < 4; ++c)
          if (mine(j, n, c))
            *y_at(j, n, c) = __fadd_rn(yv[j][n][c], __fmul_rn(scale, acc[j][n][c]));
  }
}

Group group_of(const LoraLaunch& l) {
  Group group;
  for (int g = 0; g < l.groups; ++g) group.proj[g] = l.proj[g];
  return group;
}

// How a launch is cut, from its shape alone (both halves must agree). Wide tiles take a prompt's
// tokens 32 at a time and add the pieces in the shrink's last block, once per token and row.
// Narrow ones take a decode batch's 8 at a time, and a thread block cluster adds the pieces
// where the device has clusters and the cluster can hold them; a warp of the expand takes one
// output tile at batch sizes of one tile (more warps, shorter chains of loads) and four above.
struct Plan {
  bool wide;
  int expand_tiles;
  Reduce reduce;
};
bool device_has_clusters() {
  static const bool has = [] {
    int device = 0, value = 0;
    CUDA_CHECK(cudaGetDevice(&device));
    CUDA_CHECK(cudaDeviceGetAttribute(&value, cudaDevAttrClusterLaunch, device));
    return value != 0;
  }();
  return has;
}

Plan plan_of(const LoraLaunch& l) {
  if (l.tokens >= kWideTilesFrom) return {true, 2, Reduce::LastBlock};
  const bool cluster = device_has_clusters() && pieces_of(l.in).count <= kClusterMaxPieces &&
                       l.groups * l.max_rank <= kClusterMaxRows;
  return {false, l.tokens <= kNarrowTile ? 1 : 4, cluster ? Reduce::Cluster : Reduce::LastBlock};
}

int64_t tiles_of(int64_t tokens, int tile) {
  return (tokens + tile - 1) / tile;
}

float* u_of(const LoraLaunch& l) {
  return l.scratch;
}
float* partial_of(const LoraLaunch& l) {
  return l.scratch + l.tokens * l.groups * l.max_rank;
}

template <int kNt, Reduce kReduce, bool kFull>
void shrink(const LoraLaunch& l, const Pieces& pieces, cudaStream_t stream) {
  constexpr auto kernel = lora_shrink_kernel<kNt, kReduce, kFull>;
  cudaLaunchConfig_t config{};
  config.gridDim =
      dim3(static_cast<unsigned>(pieces.count), static_cast<unsigned>(tiles_of(l.tokens, 8 * kNt)));
  config.blockDim = dim3(kThreads);
  config.stream = stream;
  // The shrink runs beside the base GEMM, which the expand waits for too: at the greatest
  // priority its blocks go to the SMs before the GEMM's waiting ones, not after the last of them.
  static const int greatest = [] {
    int least = 0, most = 0;
    CUDA_CHECK(cudaDeviceGetStreamPriorityRange(&least, &most));
    return most;
  }();
  cudaLaunchAttribute attrs[2]{};
  attrs[0].id = cudaLaunchAttributePriority;
  attrs[0].val.priority = greatest;
  config.attrs = attrs;
  config.numAttrs = 1;
  if constexpr (kReduce == Reduce::Cluster) {
    static const bool allowed = [] {
      CUDA_CHECK(cudaFuncSetAttribute(kernel, cudaFuncAttributeNonPortableClusterSizeAllowed, 1));
      return true;
    }();
    (void)allowed;
    attrs[1].id = cudaLaunchAttributeClusterDimension;
    attrs[1].val.clusterDim.x = static_cast<unsigned>(pieces.count);
    attrs[1].val.clusterDim.y = 1;
    attrs[1].val.clusterDim.z = 1;
    config.numAttrs = 2;
  }
  CUDA_CHECK(cudaLaunchKernelEx(&config, kernel, l.x, l.tokens, l.in, pieces.width,
                                static_cast<int>(pieces.count), static_cast<int>(l.max_rank),
                                l.groups, group_of(l), l.slot_stride, l.tokens <= kNarrowTile,
                                l.rows, l.row_slots, partial_of(l), u_of(l), l.tile_counts));
}

template <int kNt, int kTiles, bool kFull>
void expand(const LoraLaunch& l, cudaStream_t stream) {
  int64_t warps = 0;
  for (int g = 0; g < l.groups; ++g) warps += (l.proj[g].out + 16 * kTiles - 1) / (16 * kTiles);
  const dim3 grid(static_cast<unsigned>((warps + kWarps - 1) / kWarps),
                  static_cast<unsigned>(tiles_of(l.tokens, 8 * kNt)));
  // At one token the expand is a few microseconds of latency after the base projection: as a
  // dependent launch it is in place when that projection finishes.
  launch_dependent(Overlap::kAll, lora_expand_kernel<kNt, kTiles, kFull>, grid, dim3(kThreads), 0,
                   stream, l.tokens, static_cast<int>(l.max_rank), l.groups, group_of(l),
                   l.slot_stride, l.scales, l.rows, l.row_slots, u_of(l));
}

template <int kNt, int kTiles>
void expand_of(const LoraLaunch& l, cudaStream_t stream) {
  l.max_rank % 16 == 0 ? expand<kNt, kTiles, true>(l, stream)
                       : expand<kNt, kTiles, false>(l, stream);
}

template <Reduce kReduce>
void shrink_narrow(const LoraLaunch& l, const Pieces& pieces, cudaStream_t stream) {
  l.in % 32 == 0 ? shrink<1, kReduce, true>(l, pieces, stream)
                 : shrink<1, kReduce, false>(l, pieces, stream);
}

}  // namespace

int64_t lora_scratch_floats(int64_t tokens, int64_t in, int groups, int64_t max_rank) {
  // u, then the pieces' partial sums.
  return tokens * groups * max_rank * (1 + pieces_of(in).count);
}

int64_t lora_tile_counts(int64_t tokens) {
  return tiles_of(tokens, kNarrowTile);
}

void group_lora_rows(const int32_t* token_lora, int64_t tokens, int32_t* rows, int32_t* row_slots) {
  int32_t slots = 0;
  for (int64_t t = 0; t < tokens; ++t) slots = std::max(slots, token_lora[t] + 1);
  int64_t at = 0;
  // A pass over the tokens per slot: batches hold a few adapters and at most a few hundred rows.
  for (int32_t s = 0; s <= slots; ++s) {
    const int32_t want = s < slots ? s : -1;
    for (int64_t t = 0; t < tokens; ++t) {
      if ((token_lora[t] < 0 ? -1 : token_lora[t]) != want) continue;
      rows[at] = static_cast<int32_t>(t);
      row_slots[at++] = want;
    }
  }
}

void launch_lora_shrink(const LoraLaunch& l, cudaStream_t stream) {
  if (l.tokens <= 0) return;
  const Pieces pieces = pieces_of(l.in);
  const Plan p = plan_of(l);
  if (p.wide) {
    l.in % 32 == 0 ? shrink<4, Reduce::LastBlock, true>(l, pieces, stream)
                   : shrink<4, Reduce::LastBlock, false>(l, pieces, stream);
  } else if (p.reduce == Reduce::Cluster) {
    shrink_narrow<Reduce::Cluster>(l, pieces, stream);
  } else {
    shrink_narrow<Reduce::LastBlock>(l, pieces, stream);
  }
  CUDA_CHECK_LAUNCH();
}

void launch_lora_expand(const LoraLaunch& l, cudaStream_t stream) {
  if (l.tokens <= 0) return;
  const Plan p = plan_of(l);
  if (p.wide) {
    expand_of<4, 2>(l, stream);
  } else {
    p.expand_tiles == 1 ? expand_of<1, 1>(l, stream) : expand_of<1, 4>(l, stream);
  }
  CUDA_CHECK_LAUNCH();
}

}  // namespace fp8llm::cuda
