// Kernels of paged_attention.h.
#include <cmath>
#include <stdexcept>

#include "backend/cuda/kernels/block_reduce.cuh"
#include "backend/cuda/kernels/decode_attention.h"
#include "backend/cuda/kernels/dependent_launch.cuh"
#include "backend/cuda/kernels/fp8_device.cuh"
#include "backend/cuda/kernels/kv_elements.cuh"
#include "backend/cuda/kernels/paged_attention.h"
#include "backend/cuda/kernels/paged_slot.cuh"
#include "backend/cuda/kernels/prefill_attention.h"
#include "backend/cuda/runtime/cuda_check.h"
#include "backend/cuda/runtime/dependent_launch.h"

namespace fp8llm::cuda {
namespace {

using detail::e4m3_to_float;
using detail::fp8_quantize;
using detail::fp8_weight_scale_from_amax;
using detail::kv_load;
using detail::kv_store;
using detail::nan_max;

// A block takes eight rows (heads) of a token, a warp each.
constexpr int kAppendWarps = 8;
constexpr int kAppendThreads = kAppendWarps * 32;
constexpr int kAppendPairs = kPagedMaxHeadDim / 2 / 32;  // rotated pairs a lane holds at most

// grid (tokens, ceil(rows / 8)) over a token's rows: its q heads when rotating, then its kv
// heads. Warp w of block y takes row 8y + w. A q row is rotated into q_out; a kv row's k is
// rotated (when rotating; written back where k_out is set) and written with the same head of v
// into the cache at the token's slot, from the registers that hold them. Each block computes the
// token's rotation angles once for its eight rows (cos and sin in double, rope_kernel's
// arithmetic) while its warps' rows are on their way: a block per head computed them for every
// head, and the double-precision sin and cos were most of the kernel's time at a prompt's
// thousands of tokens.
template <typename T>
__global__ void __launch_bounds__(kAppendThreads)
    rope_append_kernel(QkvRows rows, int64_t heads, int64_t kv_heads, int64_t head_dim,
                       const float* __restrict__ inv_freq, const int64_t* __restrict__ positions,
                       const int64_t* __restrict__ slots, T* __restrict__ k_cache,
                       T* __restrict__ v_cache, float* __restrict__ k_scale,
                       float* __restrict__ v_scale) {
  wait_for_prior_grids();  // launched to overlap the kernel before it (launch_dependent)
  allow_dependent_grids();
  __shared__ float2 s_cs[kPagedMaxHeadDim / 2];  // (cos, sin) of pair i
  const int64_t t = blockIdx.x;
  const bool rotate = inv_freq != nullptr;
  const int64_t half = head_dim / 2;
  const int lane = threadIdx.x & 31;
  const int64_t q_rows = rotate ? heads : 0;
  const int64_t r = static_cast<int64_t>(blockIdx.y) * kAppendWarps + (threadIdx.x >> 5);
  const bool has_row = r < q_rows + kv_heads;
  const bool is_q = r < q_rows;
  const int64_t h = is_q ? r : r - q_rows;
  const float* x =
      is_q ? rows.q + t * rows.q_ld + h * head_dim : rows.k + t * rows.k_ld + h * head_dim;
  float* x_out = is_q                    ? rows.q_out + (t * heads + h) * head_dim
                 : rows.k_out != nullptr ? rows.k_out + t * rows.k_ld + h * head_dim
                                         : nullptr;
  // The lane's pairs (i, i + half), i = lane + 32p: of the row, and of v for a kv row.
  float a[kAppendPairs], b[kAppendPairs], va[kAppendPairs], vb[kAppendPairs];
  const float* vr = rows.v + t * rows.v_ld + h * head_dim;
#pragma unroll
  for (int p = 0; p < kAppendPairs; ++p) {
    const int64_t i = lane + 32 * p;
    const bool in = has_row && i < half;
    a[p] = in ? x[i] : 0.0f;
    b[p] = in ? x[i + half] : 0.0f;
    va[p] = in && !is_q ? vr[i] : 0.0f;
    vb[p] = in && !is_q ? vr[i + half] : 0.0f;
  }
  if (rotate) {
    const float pos = static_cast<float>(positions[t]);
    for (int64_t i = threadIdx.x; i < half; i += kAppendThreads) {
      const double angle = static_cast<double>(__fmul_rn(inv_freq[i], pos));
      s_cs[i] = make_float2(static_cast<float>(cos(angle)), static_cast<float>(sin(angle)));
    }
    __syncthreads();
  }
  if (!has_row) return;
  if (rotate) {
#pragma unroll
    for (int p = 0; p < kAppendPairs; ++p) {
      const int64_t i = lane + 32 * p;
      if (i >= half) break;
      const float2 cs = s_cs[i];
      const float ra = __fsub_rn(__fmul_rn(a[p], cs.x), __fmul_rn(b[p], cs.y));
      const float rb = __fadd_rn(__fmul_rn(b[p], cs.x), __fmul_rn(a[p], cs.y));
      a[p] = ra;
      b[p] = rb;
      if (x_out != nullptr) {
        x_out[i] = ra;
        x_out[i + half] = rb;
      }
    }
  }
  if (is_q) return;
  // k and v into the cache from the registers that hold them.
  const int64_t slot = slots[t];
  T* kd = k_cache + (slot * kv_heads + h) * head_dim;
  T* vd = v_cache + (slot * kv_heads + h) * head_dim;
  float ks = 1.0f, vs = 1.0f;
  if constexpr (std::is_same_v<T, uint8_t>) {
    float ka = 0.0f, vm = 0.0f;
#pragma unroll
    for (int p = 0; p < kAppendPairs; ++p) {
      if (lane + 32 * p >= half) break;
      ka = nan_max(ka, nan_max(fabsf(a[p]), fabsf(b[p])));
      vm = nan_max(vm, nan_max(fabsf(va[p]), fabsf(vb[p])));
    }
    ks = fp8_weight_scale_from_amax(detail::warp_max<true>(ka));
    vs = fp8_weight_scale_from_amax(detail::warp_max<true>(vm));
    if (lane == 0) {
      k_scale[slot * kv_heads + h] = ks;
      v_scale[slot * kv_heads + h] = vs;
    }
  }
#pragma unroll
  for (int p = 0; p < kAppendPairs; ++p) {
    const int64_t i = lane + 32 * p;
    if (i >= half) break;
    kv_store(kd, i, a[p], ks);
    kv_store(kd, i + half, b[p], ks);
    kv_store(vd, i, va[p], vs);
    kv_store(vd, i + half, vb[p], vs);
  }
}

constexpr int kAttnWarps = 8;

// grid (heads, tokens, the pass's bound on a token's ranges when kSplit else 1), kAttnWarps warps.
// The block takes a range of the token's keys (all of them without kSplit); its warp w takes keys
// w, w + kAttnWarps, ... of the range; lane l holds head elements l*kPer .. l*kPer + kPer - 1. Each
// warp keeps its own online-softmax state; the warps' states are merged in warp order. A token of
// one range writes its output; with several, each range writes (max, sum, weighted values) to
// `partial`, and the last to finish (counted in `counters`, which it resets) merges them in range
// order.
template <typename T, int kPer, bool kSplit>
__global__ void __launch_bounds__(kAttnWarps * 32)
    paged_attention_kernel(const float* __restrict__ q, int64_t heads, int64_t kv_heads,
                           int64_t head_dim, int64_t token_offset,
                           const int64_t* __restrict__ positions,
                           const int32_t* __restrict__ token_seq,
                           const int32_t* __restrict__ block_tables, int64_t max_blocks,
                           int64_t block_size, const T* __restrict__ k_cache,
                           const T* __restrict__ v_cache, const float* __restrict__ k_scale,
                           const float* __restrict__ v_scale, float scale, float* __restrict__ out,
                           float* __restrict__ partial, int* __restrict__ counters) {
  __shared__ bool s_last;
  __shared__ float s_m[kAttnWarps];
  __shared__ float s_l[kAttnWarps];
  __shared__ float s_acc[kAttnWarps][kPer * 32];
  const int64_t h = blockIdx.x;
  const int64_t t = token_offset + blockIdx.y;
  const int lane = threadIdx.x & 31;
  const int warp = threadIdx.x >> 5;
  const int64_t kvh = h / (heads / kv_heads);
  const int64_t keys = positions[t] + 1;
  int64_t chunk = keys, splits = 1;
  if constexpr (kSplit) {
    chunk = decode_chunk(keys);
    splits = (keys + chunk - 1) / chunk;
    if (static_cast<int64_t>(blockIdx.z) >= splits) return;
  }
  const int32_t* table = block_tables + static_cast<int64_t>(token_seq[t]) * max_blocks;
  const detail::PagedSlot slot_of(block_size);

  float qv[kPer];
  float acc[kPer];
  const float* qr = q + (t * heads + h) * head_dim;
#pragma unroll
  for (int e = 0; e < kPer; ++e) {
    const int64_t d = lane * kPer + e;
    qv[e] = d < head_dim ? qr[d] : 0.0f;
    acc[e] = 0.0f;
  }
  const int64_t j_begin = static_cast<int64_t>(blockIdx.z) * chunk;
  const int64_t j_end = j_begin + chunk < keys ? j_begin + chunk : keys;
  float m = -INFINITY;
  float l = 0.0f;
  for (int64_t j = j_begin + warp; j < j_end; j += kAttnWarps) {
    const int64_t slot = slot_of(table, j);
    const int64_t row = (slot * kv_heads + kvh) * head_dim;
    const float ks = k_scale != nullptr ? k_scale[slot * kv_heads + kvh] : 1.0f;
    const float vs = v_scale != nullptr ? v_scale[slot * kv_heads + kvh] : 1.0f;
    float dot = 0.0f;
#pragma unroll
    for (int e = 0; e < kPer; ++e) {
      const int64_t d = lane * kPer + e;
      if (d < head_dim) dot += qv[e] * kv_load(k_cache + row, d, ks);
    }
    const float s = warp_sum(dot) * scale;
    const float m_new = fmaxf(m, s);
    const float corr = expf(m - m_new);
    const float p = expf(s - m_new);
    l = l * corr + p;
#pragma unroll
    for (int e = 0; e < kPer; ++e) {
      const int64_t d = lane * kPer + e;
      const float vv = d < head_dim ? kv_load(v_cache + row, d, vs) : 0.0f;
      acc[e] = acc[e] * corr + p * vv;
    }
    m = m_new;
  }
  if (lane == 0) {
    s_m[warp] = m;
    s_l[warp] = l;
  }
#pragma unroll
  for (int e = 0; e < kPer; ++e) s_acc[warp][lane * kPer + e] = acc[e];
  __syncthreads();
  float big = -INFINITY;
#pragma unroll
  for (int w = 0; w < kAttnWarps; ++w) big = fmaxf(big, s_m[w]);
  float weights[kAttnWarps];
  float total = 0.0f;
#pragma unroll
  for (int w = 0; w < kAttnWarps; ++w) {
    weights[w] = s_m[w] == -INFINITY ? 0.0f : expf(s_m[w] - big);
    total += s_l[w] * weights[w];
  }
  float* o = out + (t * heads + h) * head_dim;
  if (splits == 1) {
    const float inv = 1.0f / total;
    for (int64_t d = threadIdx.x; d < head_dim; d += kAttnWarps * 32) {
      float sum = 0.0f;
#pragma unroll
      for (int w = 0; w < kAttnWarps; ++w) sum += s_acc[w][d] * weights[w];
      o[d] = sum * inv;
    }
    return;
  }
  const int64_t row = (t - token_offset) * heads + h;
  const int64_t stride = head_dim + 2;
  float* mine = partial + (row * kDecodeMaxSplits + blockIdx.z) * stride;
  for (int64_t d = threadIdx.x; d < head_dim; d += kAttnWarps * 32) {
    float sum = 0.0f;
#pragma unroll
    for (int w = 0; w < kAttnWarps; ++w) sum += s_acc[w][d] * weights[w];
    mine[2 + d] = sum;
  }
  if (threadIdx.x == 0) {
    mine[0] = big;
    mine[1] = total;
  }
  __threadfence();  // this block's partial is visible before it is counted
  __syncthreads();
  if (threadIdx.x == 0) s_last = atomicAdd(counters + row, 1) == splits - 1;
  __syncthreads();
  if (!s_last) return;
  __threadfence();
  const float* parts = partial + row * kDecodeMaxSplits * stride;
  float top = -INFINITY;
  for (int64_t z = 0; z < splits; ++z) top = fmaxf(top, __ldcg(parts + z * stride));
  float denominator = 0.0f;
  for (int64_t z = 0; z < splits; ++z) {
    const float mz = __ldcg(parts + z * stride);
    if (mz != -INFINITY) denominator += __ldcg(parts + z * stride + 1) * expf(mz - top);
  }
  const float inv = 1.0f / denominator;
  for (int64_t d = threadIdx.x; d < head_dim; d += kAttnWarps * 32) {
    float sum = 0.0f;
    for (int64_t z = 0; z < splits; ++z) {
      const float mz = __ldcg(parts + z * stride);
      if (mz != -INFINITY) sum += __ldcg(parts + z * stride + 2 + d) * expf(mz - top);
    }
    o[d] = sum * inv;
  }
  if (threadIdx.x == 0) counters[row] = 0;
}

template <typename T>
void append_typed(const QkvRows& rows, int64_t heads, int64_t kv_heads, int64_t head_dim,
                  const float* inv_freq, const PagedBatch& b, const PagedKv& kv,
                  cudaStream_t stream) {
  const int64_t row_count = (inv_freq != nullptr ? heads : 0) + kv_heads;
  const dim3 grid(static_cast<unsigned>(b.tokens),
                  static_cast<unsigned>((row_count + kAppendWarps - 1) / kAppendWarps));
  launch_dependent(Overlap::kAll, rope_append_kernel<T>, grid, dim3(kAppendThreads), 0, stream,
                   rows, heads, kv_heads, head_dim, inv_freq, b.positions, b.slots,
                   static_cast<T*>(kv.k), static_cast<T*>(kv.v), kv.k_scale, kv.v_scale);
  CUDA_CHECK_LAUNCH();
}

// The decode tokens on the split path, unless `decode` is false; the rest, unless `prefill` is
// false, one block per (token, head). Another kernel takes what this one does not.
template <typename T, int kPer>
void attend_typed(const float* q, int64_t heads, int64_t kv_heads, int64_t head_dim,
                  const PagedBatch& b, int64_t decode_tokens, bool decode, bool prefill,
                  const PagedKv& kv, const DecodeScratch& scratch, float* out,
                  cudaStream_t stream) {
  const float scale = 1.0f / std::sqrt(static_cast<float>(head_dim));
  const int threads = kAttnWarps * 32;
  const auto* kc = static_cast<const T*>(kv.k);
  const auto* vc = static_cast<const T*>(kv.v);
  if (decode && decode_tokens > 0) {
    // A block a range: as many as the pass's tokens may have (PagedBatch::max_ranges).
    const int64_t ranges =
        b.max_ranges > 0 && b.max_ranges < kDecodeMaxSplits ? b.max_ranges : kDecodeMaxSplits;
    const dim3 grid(static_cast<unsigned>(heads), static_cast<unsigned>(decode_tokens),
                    static_cast<unsigned>(ranges));
    paged_attention_kernel<T, kPer, true><<<grid, threads, 0, stream>>>(
        q, heads, kv_heads, head_dim, 0, b.positions, b.token_seq, b.block_tables, b.max_blocks,
        kv.block_size, kc, vc, kv.k_scale, kv.v_scale, scale, out, scratch.partial,
        scratch.counters);
    CUDA_CHECK_LAUNCH();
  }
  const int64_t rest = b.tokens - decode_tokens;
  if (prefill && rest > 0) {
    const dim3 grid(static_cast<unsigned>(heads), static_cast<unsigned>(rest), 1);
    paged_attention_kernel<T, kPer, false><<<grid, threads, 0, stream>>>(
        q, heads, kv_heads, head_dim, decode_tokens, b.positions, b.token_seq, b.block_tables,
        b.max_blocks, kv.block_size, kc, vc, kv.k_scale, kv.v_scale, scale, out, nullptr, nullptr);
    CUDA_CHECK_LAUNCH();
  }
}

template <typename T>
void attend_any(const float* q, int64_t heads, int64_t kv_heads, int64_t head_dim,
                const PagedBatch& b, int64_t decode_tokens, bool decode, bool prefill,
                const PagedKv& kv, const DecodeScratch& scratch, float* out, cudaStream_t stream) {
  if (head_dim <= 64) {
    attend_typed<T, 2>(q, heads, kv_heads, head_dim, b, decode_tokens, decode, prefill, kv, scratch,
                       out, stream);
  } else if (head_dim <= 128) {
    attend_typed<T, 4>(q, heads, kv_heads, head_dim, b, decode_tokens, decode, prefill, kv, scratch,
                       out, stream);
  } else {
    attend_typed<T, 8>(q, heads, kv_heads, head_dim, b, decode_tokens, decode, prefill, kv, scratch,
                       out, stream);
  }
}

void check_layout(int64_t heads, int64_t kv_heads, int64_t head_dim) {
  if (head_dim > kPagedMaxHeadDim || head_dim % 2 != 0 || kv_heads <= 0 || heads % kv_heads != 0)
    throw std::invalid_argument("paged attention: unsupported head layout");
}

}  // namespace

void launch_rope_append_kv(const QkvRows& rows, int64_t heads, int64_t kv_heads, int64_t head_dim,
                           const float* inv_freq, const PagedBatch& batch, const PagedKv& kv,
                           cudaStream_t stream) {
  if (batch.tokens <= 0) return;
  check_layout(heads, kv_heads, head_dim);
  if (inv_freq != nullptr && rows.q_out == nullptr)
    throw std::invalid_argument("launch_rope_append_kv: rotating q needs q_out");
  if (rows.k_ld < kv_heads * head_dim || rows.v_ld < kv_heads * head_dim ||
      (inv_freq != nullptr && rows.q_ld < heads * head_dim))
    throw std::invalid_argument("launch_rope_append_kv: a row stride is shorter than its row");
  switch (kv.dtype) {
    case KvCacheDtype::F32:
      return append_typed<float>(rows, heads, kv_heads, head_dim, inv_freq, batch, kv, stream);
    case KvCacheDtype::BF16:
      return append_typed<__nv_bfloat16>(rows, heads, kv_heads, head_dim, inv_freq, batch, kv,
                                         stream);
    case KvCacheDtype::Fp8:
      return append_typed<uint8_t>(rows, heads, kv_heads, head_dim, inv_freq, batch, kv, stream);
    case KvCacheDtype::Auto:
      break;
  }
  throw std::invalid_argument("launch_rope_append_kv: the KV element type is not settled");
}

void launch_rope_append_kv(float* q, float* k, const float* v, int64_t heads, int64_t kv_heads,
                           int64_t head_dim, const float* inv_freq, const PagedBatch& batch,
                           const PagedKv& kv, cudaStream_t stream) {
  const int64_t q_ld = heads * head_dim, kv_ld = kv_heads * head_dim;
  launch_rope_append_kv(QkvRows{.q = q,
                                .k = k,
                                .v = v,
                                .q_ld = q_ld,
                                .k_ld = kv_ld,
                                .v_ld = kv_ld,
                                .q_out = q,
                                .k_out = inv_freq != nullptr ? k : nullptr},
                        heads, kv_heads, head_dim, inv_freq, batch, kv, stream);
}

void launch_paged_attention(const float* q, int64_t heads, int64_t kv_heads, int64_t head_dim,
                            const PagedBatch& batch, int64_t decode_tokens, const PagedKv& kv,
                            const DecodeScratch& scratch, float* out, cudaStream_t stream,
                            PrefillAttention prefill) {
  if (batch.tokens <= 0) return;
  check_layout(heads, kv_heads, head_dim);
  if (decode_tokens > 0 && (scratch.partial == nullptr || scratch.counters == nullptr))
    throw std::invalid_argument("launch_paged_attention: decode tokens need scratch");
  const bool tensor_cores = prefill == PrefillAttention::TensorCores;
  const bool fp32_prefill = !tensor_cores;
  const bool own_decode = !decode_attention_supported(kv.dtype, head_dim);
  if (!own_decode)
    launch_decode_attention(q, heads, kv_heads, head_dim, batch, decode_tokens, kv, scratch, out,
                            stream);
  switch (kv.dtype) {
    case KvCacheDtype::F32:
      attend_any<float>(q, heads, kv_heads, head_dim, batch, decode_tokens, own_decode,
                        fp32_prefill, kv, scratch, out, stream);
      break;
    case KvCacheDtype::BF16:
      attend_any<__nv_bfloat16>(q, heads, kv_heads, head_dim, batch, decode_tokens, own_decode,
                                fp32_prefill, kv, scratch, out, stream);
      break;
    case KvCacheDtype::Fp8:
      attend_any<uint8_t>(q, heads, kv_heads, head_dim, batch, decode_tokens, own_decode,
                          fp32_prefill, kv, scratch, out, stream);
      break;
    case KvCacheDtype::Auto:
      throw std::invalid_argument("launch_paged_attention: the KV element type is not settled");
  }
  if (tensor_cores)
    launch_prefill_attention(q, heads, kv_heads, head_dim, batch, decode_tokens, kv, out, stream);
}

}  // namespace fp8llm::cuda
