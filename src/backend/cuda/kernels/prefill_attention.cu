// Kernels of prefill_attention.h.
#include <cuda_bf16.h>
#include <mma.h>

#include <algorithm>
#include <cmath>
#include <stdexcept>

#include "backend/cuda/kernels/kv_elements.cuh"
#include "backend/cuda/kernels/paged_slot.cuh"
#include "backend/cuda/kernels/prefill_attention.h"
#include "backend/cuda/kernels/prefill_launch.cuh"
#include "backend/cuda/runtime/cuda_check.h"

namespace fp8llm::cuda {
namespace {

namespace wmma = nvcuda::wmma;
using detail::Row16;

constexpr int kRows = detail::kPrefillRows;  // query rows of a tile: 16 per warp
constexpr int kKeys = 64;                    // keys per step
constexpr int kThreads = detail::kPrefillThreads;
// Row padding of the shared tiles (elements): keeps every 16-row fragment 32-byte aligned and
// spreads a column's rows over the banks.
constexpr int kPadBf16 = 8;
constexpr int kPadF32 = 4;

// The shared memory of one block, carved from the dynamic allocation in this order; every size is
// a multiple of 32 bytes, so every array starts 32-byte aligned (WMMA's requirement).
template <int D>
struct Smem {
  static constexpr int kLdQ = D + kPadBf16;      // Q, K, V: bf16 [64][D + 8]
  static constexpr int kLdP = kKeys + kPadBf16;  // P: bf16 [64][72]
  static constexpr int kLdS = kKeys + kPadF32;   // S: fp32 [64][68]
  static constexpr int kLdO = D + kPadF32;       // O: fp32 [64][D + 4]
  static constexpr size_t q = 0;
  // K, then V of the same keys, in one buffer: it keeps a block within the 99 KiB that Ada
  // (sm_89) grants at head size 128.
  static constexpr size_t kv = q + sizeof(__nv_bfloat16) * kRows * kLdQ;
  static constexpr size_t p = kv + sizeof(__nv_bfloat16) * kKeys * kLdQ;
  static constexpr size_t s = p + sizeof(__nv_bfloat16) * kRows * kLdP;
  static constexpr size_t o = s + sizeof(float) * kRows * kLdS;
  static constexpr size_t m = o + sizeof(float) * kRows * kLdO;  // running max per row
  static constexpr size_t l = m + sizeof(float) * kRows;         // running sum per row
  static constexpr size_t alpha = l + sizeof(float) * kRows;     // this step's rescale per row
  static constexpr size_t k_scale = alpha + sizeof(float) * kRows;
  static constexpr size_t v_scale = k_scale + sizeof(float) * kKeys;
  static constexpr size_t pos = v_scale + sizeof(float) * kKeys;  // int64 per row
  static constexpr size_t slot = pos + sizeof(int64_t) * kRows;   // int64 per key
  static constexpr size_t seq = slot + sizeof(int64_t) * kKeys;   // int32 per row
  static constexpr size_t bytes = seq + sizeof(int32_t) * kRows;
  static_assert(kv % 32 == 0 && p % 32 == 0 && s % 32 == 0 && o % 32 == 0,
                "WMMA tiles must start 32-byte aligned");
};

// The 64 cached rows of one KV head at `slots` (-1: past the last key, zeros), widened to fp32 as
// the fp32 kernel widens them and rounded to bf16 into `tile` [64][D + 8], 16 bytes of a row a
// load (the rows start 16-byte aligned: D elements of at least a byte each, D a multiple of 64).
template <typename T, int D>
__device__ void load_rows(const T* __restrict__ cache, const int64_t* slots, const float* scales,
                          int64_t kv_heads, int64_t kvh, __nv_bfloat16* tile) {
  constexpr int kE = Row16<T>::kElems;  // elements in 16 bytes: 4, 8 or 16
  constexpr int kPieces = D / kE;
  for (int i = threadIdx.x; i < kKeys * kPieces; i += kThreads) {
    const int j = i / kPieces, piece = i % kPieces;
    const int64_t slot = slots[j];
    detail::widen_row16_to_bf16(
        slot >= 0 ? cache + (slot * kv_heads + kvh) * D + piece * kE : nullptr, scales[j],
        tile + j * Smem<D>::kLdQ + piece * kE);
  }
}

// grid (ceil(rows / 64), heads), 128 threads. See prefill_attention.h.
template <typename T, int D>
__global__ void __launch_bounds__(kThreads) prefill_attention_kernel(
    const float* __restrict__ q, int64_t heads, int64_t kv_heads, int64_t first_token,
    int64_t tokens, const int64_t* __restrict__ positions, const int32_t* __restrict__ token_seq,
    const int32_t* __restrict__ block_tables, int64_t max_blocks, int64_t block_size,
    const T* __restrict__ k_cache, const T* __restrict__ v_cache, const float* __restrict__ k_scale,
    const float* __restrict__ v_scale, float scale, float* __restrict__ out) {
  using L = Smem<D>;
  extern __shared__ __align__(128) unsigned char smem[];
  auto* sq = reinterpret_cast<__nv_bfloat16*>(smem + L::q);
  auto* skv = reinterpret_cast<__nv_bfloat16*>(smem + L::kv);
  auto* sp = reinterpret_cast<__nv_bfloat16*>(smem + L::p);
  auto* ss = reinterpret_cast<float*>(smem + L::s);
  auto* so = reinterpret_cast<float*>(smem + L::o);
  auto* sm = reinterpret_cast<float*>(smem + L::m);
  auto* sl = reinterpret_cast<float*>(smem + L::l);
  auto* salpha = reinterpret_cast<float*>(smem + L::alpha);
  auto* sks = reinterpret_cast<float*>(smem + L::k_scale);
  auto* svs = reinterpret_cast<float*>(smem + L::v_scale);
  auto* spos = reinterpret_cast<int64_t*>(smem + L::pos);
  auto* sslot = reinterpret_cast<int64_t*>(smem + L::slot);
  auto* sseq = reinterpret_cast<int32_t*>(smem + L::seq);

  const int lane = threadIdx.x & 31;
  const int warp = threadIdx.x >> 5;
  const int64_t h = blockIdx.y;
  const int64_t kvh = h / (heads / kv_heads);
  const int64_t t0 = first_token + static_cast<int64_t>(blockIdx.x) * kRows;

  // The tile's rows: scaled queries in bf16, their sequence and position; rows past the pass
  // belong to no sequence (-1) and stay zero.
  for (int i = threadIdx.x; i < kRows; i += kThreads) {
    const int64_t t = t0 + i;
    sseq[i] = t < tokens ? token_seq[t] : -1;
    spos[i] = t < tokens ? positions[t] : -1;
    sm[i] = -INFINITY;
    sl[i] = 0.0f;
  }
  for (int i = threadIdx.x; i < kRows * D; i += kThreads) {
    const int r = i / D, d = i % D;
    const int64_t t = t0 + r;
    const float x = t < tokens ? q[(t * heads + h) * D + d] * scale : 0.0f;
    sq[r * L::kLdQ + d] = __float2bfloat16_rn(x);
    so[r * L::kLdO + d] = 0.0f;
  }
  __syncthreads();

  // One pass over the keys of each sequence present in the tile (the rows of a sequence are
  // consecutive, at consecutive positions).
  for (int seg = 0; seg < kRows && sseq[seg] >= 0;) {
    const int32_t s_id = sseq[seg];
    int seg_end = seg + 1;
    while (seg_end < kRows && sseq[seg_end] == s_id) ++seg_end;
    const int64_t keys = spos[seg_end - 1] + 1;
    const int32_t* table = block_tables + static_cast<int64_t>(s_id) * max_blocks;
    const detail::PagedSlot slot_of(block_size);
    for (int64_t kb = 0; kb < keys; kb += kKeys) {
      // Keys kb .. kb + 63 of the sequence: slots and scales, then their K rows.
      for (int j = threadIdx.x; j < kKeys; j += kThreads) {
        const int64_t key = kb + j;
        int64_t slot = -1;
        if (key < keys) slot = slot_of(table, key);
        sslot[j] = slot;
        sks[j] = (slot >= 0 && k_scale != nullptr) ? k_scale[slot * kv_heads + kvh] : 1.0f;
        svs[j] = (slot >= 0 && v_scale != nullptr) ? v_scale[slot * kv_heads + kvh] : 1.0f;
      }
      __syncthreads();
      load_rows<T, D>(k_cache, sslot, sks, kv_heads, kvh, skv);
      __syncthreads();

      // S = Q Kᵀ for the warp's 16 rows: Kᵀ read as a column-major [D][64] view of K's rows.
      const int r0 = warp * 16;
#pragma unroll
      for (int n = 0; n < kKeys / 16; ++n) {
        wmma::fragment<wmma::accumulator, 16, 16, 16, float> acc;
        wmma::fill_fragment(acc, 0.0f);
#pragma unroll
        for (int c = 0; c < D / 16; ++c) {
          wmma::fragment<wmma::matrix_a, 16, 16, 16, __nv_bfloat16, wmma::row_major> a;
          wmma::fragment<wmma::matrix_b, 16, 16, 16, __nv_bfloat16, wmma::col_major> b;
          wmma::load_matrix_sync(a, sq + r0 * L::kLdQ + c * 16, L::kLdQ);
          wmma::load_matrix_sync(b, skv + (n * 16) * L::kLdQ + c * 16, L::kLdQ);
          wmma::mma_sync(acc, a, b, acc);
        }
        wmma::store_matrix_sync(ss + r0 * L::kLdS + n * 16, acc, L::kLdS, wmma::mem_row_major);
      }
      __syncthreads();  // every warp is done with K: V takes its place
      load_rows<T, D>(v_cache, sslot, svs, kv_heads, kvh, skv);
      __syncthreads();

      // The online softmax of the warp's rows: lanes 2i and 2i + 1 take row r0 + i, 32 keys each.
      {
        const int r = r0 + (lane >> 1);
        const int c0 = (lane & 1) * (kKeys / 2);
        const bool active = r >= seg && r < seg_end;
        const int64_t limit = active ? spos[r] : -1;  // the last key this row sees
        float top = -INFINITY;
        for (int c = c0; c < c0 + kKeys / 2; ++c) {
          if (kb + c <= limit) top = fmaxf(top, ss[r * L::kLdS + c]);
        }
        top = fmaxf(top, __shfl_xor_sync(0xffffffffu, top, 1));
        const float m_old = sm[r];
        const float m_new = fmaxf(m_old, top);
        // No key of this row yet (or the row is not this sequence's): nothing to rescale.
        const float alpha = m_new == -INFINITY ? 1.0f : expf(m_old - m_new);
        float sum = 0.0f;
        for (int c = c0; c < c0 + kKeys / 2; ++c) {
          float p = 0.0f;
          if (kb + c <= limit) p = expf(ss[r * L::kLdS + c] - m_new);
          const __nv_bfloat16 pb = __float2bfloat16_rn(p);
          sp[r * L::kLdP + c] = pb;
          sum += __bfloat162float(pb);  // the weights the product below uses
        }
        sum += __shfl_xor_sync(0xffffffffu, sum, 1);
        if ((lane & 1) == 0) {
          if (active) {
            sm[r] = m_new;
            sl[r] = sl[r] * alpha + sum;
          }
          salpha[r] = active ? alpha : 1.0f;
        }
      }
      __syncwarp();
      for (int i = lane; i < 16 * D; i += 32) {
        const int r = r0 + i / D;
        so[r * L::kLdO + i % D] *= salpha[r];
      }
      __syncwarp();

      // O += P V for the warp's rows.
#pragma unroll
      for (int n = 0; n < D / 16; ++n) {
        wmma::fragment<wmma::accumulator, 16, 16, 16, float> acc;
        wmma::load_matrix_sync(acc, so + r0 * L::kLdO + n * 16, L::kLdO, wmma::mem_row_major);
#pragma unroll
        for (int c = 0; c < kKeys / 16; ++c) {
          wmma::fragment<wmma::matrix_a, 16, 16, 16, __nv_bfloat16, wmma::row_major> a;
          wmma::fragment<wmma::matrix_b, 16, 16, 16, __nv_bfloat16, wmma::row_major> b;
          wmma::load_matrix_sync(a, sp + r0 * L::kLdP + c * 16, L::kLdP);
          wmma::load_matrix_sync(b, skv + (c * 16) * L::kLdQ + n * 16, L::kLdQ);
          wmma::mma_sync(acc, a, b, acc);
        }
        wmma::store_matrix_sync(so + r0 * L::kLdO + n * 16, acc, L::kLdO, wmma::mem_row_major);
      }
      __syncthreads();  // every warp is done with this step's V
    }
    seg = seg_end;
  }

  for (int i = threadIdx.x; i < kRows * D; i += kThreads) {
    const int r = i / D, d = i % D;
    const int64_t t = t0 + r;
    if (t < tokens) out[(t * heads + h) * D + d] = so[r * L::kLdO + d] / sl[r];
  }
}

}  // namespace

bool prefill_attention_supported(int64_t head_dim) {
  if (head_dim != 64 && head_dim != 128) return false;
  // The shared memory a block may opt into on this device (99 KiB on Ada, 227 KiB on Hopper).
  int device = 0, limit = 0;
  if (cudaGetDevice(&device) != cudaSuccess ||
      cudaDeviceGetAttribute(&limit, cudaDevAttrMaxSharedMemoryPerBlockOptin, device) !=
          cudaSuccess)
    return false;
  const size_t need = std::max(head_dim == 64 ? Smem<64>::bytes : Smem<128>::bytes,
                               prefill_attention_mma_shared_bytes(head_dim));
  return need <= static_cast<size_t>(limit);
}

void launch_prefill_attention(const float* q, int64_t heads, int64_t kv_heads, int64_t head_dim,
                              const PagedBatch& batch, int64_t first_token, const PagedKv& kv,
                              float* out, cudaStream_t stream, PrefillKernel kernel) {
  if (batch.tokens <= first_token) return;
  if (!prefill_attention_supported(head_dim) || kv_heads <= 0 || heads % kv_heads != 0)
    throw std::invalid_argument("launch_prefill_attention: unsupported head layout");
  if (kernel == PrefillKernel::Mma)
    return launch_prefill_attention_mma(q, heads, kv_heads, head_dim, batch, first_token, kv, out,
                                        stream);
  detail::launch_prefill_kernel(
      [&]<typename T, int D>() { return &prefill_attention_kernel<T, D>; },
      [&]<int D>() { return Smem<D>::bytes; }, q, heads, kv_heads, head_dim, batch, first_token, kv,
      out, stream);
}

}  // namespace fp8llm::cuda
