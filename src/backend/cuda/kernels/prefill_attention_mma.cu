// The prompt attention kernel of prefill_attention.h, written for Hopper's and Ada's mma.sync. As
// FlashAttention-2 does, a warp keeps its 16 rows of Q (as A fragments), of the scores and of the
// output in registers; the scores become the A fragments of P V without leaving them; and the
// next 64 keys' K and V rows are requested (cp.async for a bf16 cache) while the current ones are
// multiplied. Q (scaled by 1/sqrt(head_dim)), K, V and P are rounded to bf16, products summed in
// fp32, the softmax online in fp32 per row.
#include <cuda_bf16.h>

#include <cmath>
#include <cstdint>
#include <stdexcept>
#include <type_traits>

#include "backend/cuda/kernels/async_copy.cuh"
#include "backend/cuda/kernels/kv_elements.cuh"
#include "backend/cuda/kernels/mma_bf16.cuh"
#include "backend/cuda/kernels/paged_slot.cuh"
#include "backend/cuda/kernels/prefill_attention.h"
#include "backend/cuda/kernels/prefill_launch.cuh"
#include "backend/cuda/runtime/cuda_check.h"

namespace fp8llm::cuda {
namespace {

using detail::bf16_pair;
using detail::cp_async16;
using detail::cp_async_commit;
using detail::cp_async_wait;
using detail::ldmatrix_x4;
using detail::ldmatrix_x4_trans;
using detail::mma_bf16;
using detail::Row16;

constexpr int kRows = detail::kPrefillRows;  // query rows of a tile: 16 per warp
constexpr int kKeys = 64;                    // keys per step
constexpr int kThreads = detail::kPrefillThreads;
constexpr int kPad = 8;  // bf16 elements of row padding: ldmatrix rows fall on distinct banks

template <int D>
struct Layout {
  static constexpr int kLd = D + kPad;
  static constexpr size_t kTile = sizeof(__nv_bfloat16) * kKeys * kLd;  // one K or V tile
  // Q [64][D + 8] passes through the K tiles' room: it is in registers before they are filled.
  // Without its own room a block of the 128-wide head takes 70 KiB, and an SM holds three.
  static constexpr size_t q = 0;
  static constexpr size_t k = 0;                                // [2][64][D + 8]
  static constexpr size_t v = k + 2 * kTile;                    // [2][64][D + 8]
  static constexpr size_t pos = v + 2 * kTile;                  // int64 per row
  static constexpr size_t seq = pos + sizeof(int64_t) * kRows;  // int32 per row
  static constexpr size_t bytes = seq + sizeof(int32_t) * kRows;
  static_assert(sizeof(__nv_bfloat16) * kRows * kLd <= 2 * kTile, "Q fits the K tiles' room");
  static_assert(v % 128 == 0 && kTile % 16 == 0, "16-byte aligned rows");
};

// Blocks an SM should hold: three of the 128-wide head fit its shared memory, and the register
// budget that leaves (170 a thread) holds the bf16 and e4m3 caches' kernels with a few words
// spilled (three blocks were 10-20% faster than two on the H100); the fp32 cache's widening needs
// more.
template <typename T>
constexpr int kBlocksPerSm = std::is_same_v<T, float> ? 1 : 3;

// Which keys of a step a thread requests: the step's 64 rows go in 16-byte pieces, and thread i
// takes piece i % kPieces of keys i / kPieces + n * kKeysPerPass for n < kPasses.
template <typename T, int D>
struct TileShare {
  static constexpr int kPieces = D / Row16<T>::kElems;
  static constexpr int kKeysPerPass = kThreads / kPieces;
  static constexpr int kPasses = kKeys / kKeysPerPass;
  static_assert(kThreads % kPieces == 0 && kKeys % kKeysPerPass == 0, "whole keys per pass");
};

// The block-table entries of the keys this thread requests in the step at key0 (0 past the
// sequence's last key). Loaded a step before their rows are requested: the row addresses wait on
// them, and a load of the table issued right before each copy would put one trip to memory per
// key in front of every step.
template <typename T, int D>
__device__ __forceinline__ void load_entries(const int32_t* __restrict__ table,
                                             const detail::PagedSlot& slot_of, int64_t key0,
                                             int64_t keys,
                                             int32_t (&entries)[TileShare<T, D>::kPasses]) {
  using S = TileShare<T, D>;
#pragma unroll
  for (int n = 0; n < S::kPasses; ++n) {
    const int64_t key = key0 + threadIdx.x / S::kPieces + n * S::kKeysPerPass;
    entries[n] = key < keys ? __ldg(table + slot_of.entry(key)) : 0;
  }
}

// Requests keys key0 .. key0 + 63 of one KV head of a sequence into the tiles kt and vt
// [64][D + 8] as bf16, with the table entries load_entries gave: a bf16 cache with cp.async (rows
// past `keys` zero-filled), the others widened as the fp32 kernel widens them (Row16) and rounded
// to bf16 here.
template <typename T, int D>
__device__ __forceinline__ void request_tiles(const T* __restrict__ k_cache,
                                              const T* __restrict__ v_cache,
                                              const float* __restrict__ k_scales,
                                              const float* __restrict__ v_scales,
                                              const detail::PagedSlot& slot_of,
                                              const int32_t (&entries)[TileShare<T, D>::kPasses],
                                              int64_t key0, int64_t keys, int64_t kv_heads,
                                              int64_t kvh, __nv_bfloat16* kt, __nv_bfloat16* vt) {
  using S = TileShare<T, D>;
  constexpr int kE = Row16<T>::kElems;
  const int piece = threadIdx.x % S::kPieces;
#pragma unroll
  for (int n = 0; n < S::kPasses; ++n) {
    const int j = threadIdx.x / S::kPieces + n * S::kKeysPerPass;
    const int64_t key = key0 + j;
    const bool present = key < keys;
    // The key's row of this KV head, in slots * kv_heads + kvh.
    const int64_t at = present ? slot_of.slot(entries[n], key) * kv_heads + kvh : 0;
    const int64_t from = at * D + piece * kE;
    __nv_bfloat16* kd = kt + j * Layout<D>::kLd + piece * kE;
    __nv_bfloat16* vd = vt + j * Layout<D>::kLd + piece * kE;
    if constexpr (std::is_same_v<T, __nv_bfloat16>) {
      cp_async16(kd, k_cache + from, present ? 16 : 0);
      cp_async16(vd, v_cache + from, present ? 16 : 0);
    } else {
      detail::widen_row16_to_bf16(present ? k_cache + from : nullptr,
                                  k_scales != nullptr && present ? k_scales[at] : 1.0f, kd);
      detail::widen_row16_to_bf16(present ? v_cache + from : nullptr,
                                  v_scales != nullptr && present ? v_scales[at] : 1.0f, vd);
    }
  }
}

// The online softmax of one row (g or g + 8 of the warp's, x = 0 or 1) over a step's scores s:
// the step's running maximum and the weights P V uses, rounded to bf16 in s; returns the
// rescaling of the row's earlier sums. kMasked: some key of the step lies past the row's last
// (`seen`, the last visible key as an offset into the step, -1 for none); otherwise all are seen.
template <bool kMasked>
__device__ __forceinline__ float softmax_step(float (&s)[kKeys / 8][4], int x, int tq, int seen,
                                              bool in_sequence, float& m, float& l) {
  constexpr int kKeyTiles = kKeys / 8;
  constexpr float kLog2e = 1.4426950408889634f;
  const auto visible = [&](int j, int e) { return !kMasked || 8 * j + 2 * tq + e <= seen; };
  float top = -INFINITY;
#pragma unroll
  for (int j = 0; j < kKeyTiles; ++j) {
#pragma unroll
    for (int e = 0; e < 2; ++e) {
      if (visible(j, e)) top = fmaxf(top, s[j][2 * x + e]);
    }
  }
  top = fmaxf(top, __shfl_xor_sync(0xffffffffu, top, 1));
  top = fmaxf(top, __shfl_xor_sync(0xffffffffu, top, 2));
  const float m_new = fmaxf(m, top);
  // exp(s - m) as 2^(s log2 e - m log2 e): one multiply-add before the exponential unit.
  const float shift = m_new == -INFINITY ? 0.0f : m_new * kLog2e;
  float sum = 0.0f;
#pragma unroll
  for (int j = 0; j < kKeyTiles; ++j) {
#pragma unroll
    for (int e = 0; e < 2; ++e) {
      float p = 0.0f;
      if (visible(j, e)) p = exp2f(fmaf(s[j][2 * x + e], kLog2e, -shift));
      const float rounded = __bfloat162float(__float2bfloat16_rn(p));
      s[j][2 * x + e] = rounded;  // the weight P V uses
      sum += rounded;
    }
  }
  sum += __shfl_xor_sync(0xffffffffu, sum, 1);
  sum += __shfl_xor_sync(0xffffffffu, sum, 2);
  // No key of this row yet (or the row is not this sequence's): nothing to rescale.
  if (!in_sequence) return 1.0f;
  const float alpha = m_new == -INFINITY ? 1.0f : exp2f((m - m_new) * kLog2e);
  m = m_new;
  l = l * alpha + sum;
  return alpha;
}

// grid (ceil(rows / 64), heads), 128 threads. Warp w owns rows 16w .. 16w + 15 of the tile;
// lane l holds, of each 16x8 accumulator, rows g = l / 4 and g + 8, columns 2 (l % 4) and
// 2 (l % 4) + 1 (mma.sync's layout).
template <typename T, int D>
__global__ void __launch_bounds__(kThreads, kBlocksPerSm<T>) prefill_attention_mma_kernel(
    const float* __restrict__ q, int64_t heads, int64_t kv_heads, int64_t first_token,
    int64_t tokens, const int64_t* __restrict__ positions, const int32_t* __restrict__ token_seq,
    const int32_t* __restrict__ block_tables, int64_t max_blocks, int64_t block_size,
    const T* __restrict__ k_cache, const T* __restrict__ v_cache, const float* __restrict__ k_scale,
    const float* __restrict__ v_scale, float scale, float* __restrict__ out) {
  using L = Layout<D>;
  constexpr int kChunks = D / 16;  // 16-wide slices of the head dimension
  constexpr int kKeyTiles = kKeys / 8;
  constexpr int kDimTiles = D / 8;
  extern __shared__ __align__(128) unsigned char smem[];
  auto* sq = reinterpret_cast<__nv_bfloat16*>(smem + L::q);
  auto* sk = reinterpret_cast<__nv_bfloat16*>(smem + L::k);
  auto* sv = reinterpret_cast<__nv_bfloat16*>(smem + L::v);
  auto* spos = reinterpret_cast<int64_t*>(smem + L::pos);
  auto* sseq = reinterpret_cast<int32_t*>(smem + L::seq);

  const int lane = threadIdx.x & 31, warp = threadIdx.x >> 5;
  const int g = lane >> 2, tq = lane & 3;
  const int r0 = warp * 16;
  const int64_t h = blockIdx.y;
  const int64_t kvh = h / (heads / kv_heads);
  // A head's last tiles first: in a prompt they see the most keys, and started last they would
  // leave a tail of long blocks on a few SMs. (Heads vary slowest, so that the blocks running at
  // once share a few KV heads' keys in the L2.)
  const int64_t t0 = first_token + static_cast<int64_t>(gridDim.x - 1 - blockIdx.x) * kRows;

  for (int i = threadIdx.x; i < kRows; i += kThreads) {
    const int64_t t = t0 + i;
    sseq[i] = t < tokens ? token_seq[t] : -1;
    spos[i] = t < tokens ? positions[t] : -1;
  }
  for (int i = threadIdx.x; i < kRows * D / 2; i += kThreads) {
    const int r = i / (D / 2), d = 2 * (i % (D / 2));
    const int64_t t = t0 + r;
    float x0 = 0.0f, x1 = 0.0f;
    if (t < tokens) {
      x0 = q[(t * heads + h) * D + d] * scale;
      x1 = q[(t * heads + h) * D + d + 1] * scale;
    }
    *reinterpret_cast<__nv_bfloat162*>(sq + r * L::kLd + d) = __floats2bfloat162_rn(x0, x1);
  }
  __syncthreads();

  // The warp's rows of Q as A fragments, one per 16-wide slice of the head.
  uint32_t qa[kChunks][4];
#pragma unroll
  for (int c = 0; c < kChunks; ++c) {
    const int row = r0 + (lane & 7) + ((lane >> 3) & 1) * 8;
    ldmatrix_x4(qa[c], sq + row * L::kLd + c * 16 + (lane >> 4) * 8);
  }
  __syncthreads();  // Q's room is the K tiles'
  float o[kDimTiles][4];
#pragma unroll
  for (int n = 0; n < kDimTiles; ++n) o[n][0] = o[n][1] = o[n][2] = o[n][3] = 0.0f;
  float m[2] = {-INFINITY, -INFINITY}, l[2] = {0.0f, 0.0f};  // rows g and g + 8

  // One pass over the keys of each sequence present in the tile (its rows are consecutive, at
  // consecutive positions); the tile's other rows see no key of it.
  for (int seg = 0; seg < kRows && sseq[seg] >= 0;) {
    const int32_t s_id = sseq[seg];
    int seg_end = seg + 1;
    while (seg_end < kRows && sseq[seg_end] == s_id) ++seg_end;
    const int64_t keys = spos[seg_end - 1] + 1;
    const int32_t* table = block_tables + static_cast<int64_t>(s_id) * max_blocks;
    const detail::PagedSlot slot_of(block_size);
    int64_t limit[2];  // the last key rows g and g + 8 see (-1: none of this sequence's)
#pragma unroll
    for (int x = 0; x < 2; ++x) {
      const int r = r0 + g + 8 * x;
      limit[x] = r >= seg && r < seg_end ? spos[r] : -1;
    }
    const int64_t steps = (keys + kKeys - 1) / kKeys;
    int32_t entries[TileShare<T, D>::kPasses];
    load_entries<T, D>(table, slot_of, 0, keys, entries);
    request_tiles<T, D>(k_cache, v_cache, k_scale, v_scale, slot_of, entries, 0, keys, kv_heads,
                        kvh, sk, sv);
    cp_async_commit();
    load_entries<T, D>(table, slot_of, kKeys, keys, entries);
    for (int64_t step = 0; step < steps; ++step) {
      const int cur = static_cast<int>(step & 1);
      if (step + 1 < steps) {
        const size_t next = (cur ^ 1) * L::kTile / sizeof(__nv_bfloat16);
        request_tiles<T, D>(k_cache, v_cache, k_scale, v_scale, slot_of, entries,
                            (step + 1) * kKeys, keys, kv_heads, kvh, sk + next, sv + next);
        // The entries of the step after: in flight while this step multiplies.
        load_entries<T, D>(table, slot_of, (step + 2) * kKeys, keys, entries);
      }
      cp_async_commit();
      cp_async_wait<1>();  // this step's tiles (this thread's part of them) have landed
      __syncthreads();     // and every thread's part
      const __nv_bfloat16* kt = sk + cur * L::kTile / sizeof(__nv_bfloat16);
      const __nv_bfloat16* vt = sv + cur * L::kTile / sizeof(__nv_bfloat16);

      // S = Q Kᵀ: key tile j holds keys 8j .. 8j + 7 of the step.
      float s[kKeyTiles][4];
#pragma unroll
      for (int j = 0; j < kKeyTiles; ++j) {
        s[j][0] = s[j][1] = s[j][2] = s[j][3] = 0.0f;
#pragma unroll
        for (int c = 0; c < kChunks; c += 2) {
          uint32_t b[4];  // slices c and c + 1 of keys 8j .. 8j + 7
          ldmatrix_x4(b, kt + (8 * j + (lane & 7)) * L::kLd + c * 16 + (lane >> 3) * 8);
          mma_bf16(s[j], qa[c], b[0], b[1]);
          mma_bf16(s[j], qa[c + 1], b[2], b[3]);
        }
      }

      // The online softmax of rows g and g + 8 over this step's keys. Each row's last key as an
      // offset into this step, clamped to [-1, 64]: the masks compare 32-bit numbers. Steps
      // below the diagonal, where every row of the warp sees all 64 keys, skip the masks.
      const int64_t key0 = step * kKeys;
      int seen[2];
#pragma unroll
      for (int x = 0; x < 2; ++x) {
        const int64_t last = limit[x] - key0;
        seen[x] = last < 0 ? -1 : (last > kKeys ? kKeys : static_cast<int>(last));
      }
      const bool all_seen = __all_sync(0xffffffffu, seen[0] >= kKeys - 1 && seen[1] >= kKeys - 1);
      float alpha[2];
#pragma unroll
      for (int x = 0; x < 2; ++x) {
        alpha[x] = all_seen ? softmax_step<false>(s, x, tq, seen[x], true, m[x], l[x])
                            : softmax_step<true>(s, x, tq, seen[x], limit[x] >= 0, m[x], l[x]);
      }
#pragma unroll
      for (int n = 0; n < kDimTiles; ++n) {
        o[n][0] *= alpha[0];
        o[n][1] *= alpha[0];
        o[n][2] *= alpha[1];
        o[n][3] *= alpha[1];
      }

      // O += P V: P's 16-key slices are A fragments made from two key tiles of S.
#pragma unroll
      for (int kc = 0; kc < kKeys / 16; ++kc) {
        uint32_t pa[4];
        pa[0] = bf16_pair(__float2bfloat16_rn(s[2 * kc][0]), __float2bfloat16_rn(s[2 * kc][1]));
        pa[1] = bf16_pair(__float2bfloat16_rn(s[2 * kc][2]), __float2bfloat16_rn(s[2 * kc][3]));
        pa[2] =
            bf16_pair(__float2bfloat16_rn(s[2 * kc + 1][0]), __float2bfloat16_rn(s[2 * kc + 1][1]));
        pa[3] =
            bf16_pair(__float2bfloat16_rn(s[2 * kc + 1][2]), __float2bfloat16_rn(s[2 * kc + 1][3]));
#pragma unroll
        for (int n = 0; n < kDimTiles; n += 2) {
          uint32_t b[4];  // dims 8n .. 8n + 15 of keys 16kc .. 16kc + 15
          const int key = 16 * kc + (lane & 7) + ((lane >> 3) & 1) * 8;
          ldmatrix_x4_trans(b, vt + key * L::kLd + 8 * n + (lane >> 4) * 8);
          mma_bf16(o[n], pa, b[0], b[1]);
          mma_bf16(o[n + 1], pa, b[2], b[3]);
        }
      }
      __syncthreads();  // every warp is done with this step's tiles before they are refilled
    }
    seg = seg_end;
  }

#pragma unroll
  for (int x = 0; x < 2; ++x) {
    const int64_t t = t0 + r0 + g + 8 * x;
    if (t >= tokens) continue;
    float* row = out + (t * heads + h) * D;
#pragma unroll
    for (int n = 0; n < kDimTiles; ++n) {
      *reinterpret_cast<float2*>(row + 8 * n + 2 * tq) =
          make_float2(o[n][2 * x] / l[x], o[n][2 * x + 1] / l[x]);
    }
  }
}

}  // namespace

size_t prefill_attention_mma_shared_bytes(int64_t head_dim) {
  return head_dim == 64 ? Layout<64>::bytes : Layout<128>::bytes;
}

void launch_prefill_attention_mma(const float* q, int64_t heads, int64_t kv_heads, int64_t head_dim,
                                  const PagedBatch& batch, int64_t first_token, const PagedKv& kv,
                                  float* out, cudaStream_t stream) {
  detail::launch_prefill_kernel(
      [&]<typename T, int D>() { return &prefill_attention_mma_kernel<T, D>; },
      [&]<int D>() { return Layout<D>::bytes; }, q, heads, kv_heads, head_dim, batch, first_token,
      kv, out, stream);
}

}  // namespace fp8llm::cuda
