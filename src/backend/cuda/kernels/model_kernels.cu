// Kernels of the forward pass besides the GEMMs (model_kernels.h).
#include <cuda_fp16.h>

#include <type_traits>

#include <cmath>
#include <stdexcept>

#include "backend/cuda/kernels/block_reduce.cuh"
#include "backend/cuda/kernels/model_kernels.h"
#include "backend/cuda/runtime/cuda_check.h"

namespace fp8llm::cuda {
namespace {

constexpr int kThreads = 256;

unsigned blocks_for(int64_t count, int threads) {
  return static_cast<unsigned>((count + threads - 1) / threads);
}

__global__ void embed_kernel(const __nv_bfloat16* __restrict__ table,
                             const int32_t* __restrict__ ids, int64_t hidden,
                             float* __restrict__ out) {
  const int64_t t = blockIdx.x;
  const __nv_bfloat16* src = table + static_cast<int64_t>(ids[t]) * hidden;
  float* dst = out + t * hidden;
  for (int64_t i = threadIdx.x; i < hidden; i += kThreads) dst[i] = __bfloat162float(src[i]);
}

// One block per row, each thread holding up to kPer elements of it in registers (dim <=
// kBlockThreads * kPer), so that the row is read once and all its loads are in flight together.
// With `residual` set, x += residual first (written back) and the sum is normalized: the residual
// add fused with the norm after it. out may alias x: every element is read before the barrier in
// block_sum_double and written by the same thread after it. The squares are summed in double, as
// the CPU backend sums them, which keeps the two backends within fp32 rounding.
template <int kBlockThreads, int kPer>
__global__ void __launch_bounds__(kBlockThreads)
    rms_norm_kernel(float* x, const float* __restrict__ residual, int64_t dim,
                    const __nv_bfloat16* __restrict__ w, float eps, float* out) {
  const int64_t row = blockIdx.x;
  float* xr = x + row * dim;
  float v[kPer];
#pragma unroll
  for (int j = 0; j < kPer; ++j) {
    const int64_t i = threadIdx.x + static_cast<int64_t>(j) * kBlockThreads;
    v[j] = i < dim ? xr[i] : 0.0f;
  }
  if (residual != nullptr) {
    const float* rr = residual + row * dim;
#pragma unroll
    for (int j = 0; j < kPer; ++j) {
      const int64_t i = threadIdx.x + static_cast<int64_t>(j) * kBlockThreads;
      if (i < dim) {
        v[j] = __fadd_rn(v[j], rr[i]);
        xr[i] = v[j];
      }
    }
  }
  double ss = 0.0;
#pragma unroll
  for (int j = 0; j < kPer; ++j) ss += __fmul_rn(v[j], v[j]);
  ss = block_sum_double<kBlockThreads>(ss);
  const float variance = static_cast<float>(ss / static_cast<double>(dim));
  const float inv_rms = static_cast<float>(1.0 / sqrt(static_cast<double>(variance + eps)));
  float* yr = out + row * dim;
#pragma unroll
  for (int j = 0; j < kPer; ++j) {
    const int64_t i = threadIdx.x + static_cast<int64_t>(j) * kBlockThreads;
    if (i < dim) yr[i] = __fmul_rn(__bfloat162float(w[i]), __fmul_rn(v[j], inv_rms));
  }
}

// grid (heads, tokens); thread i < head_dim/2 rotates the pair (i, i + half).
__global__ void rope_kernel(float* x, int64_t heads, int64_t head_dim,
                            const int64_t* __restrict__ positions,
                            const float* __restrict__ inv_freq) {
  const int64_t h = blockIdx.x;
  const int64_t t = blockIdx.y;
  const int64_t half = head_dim / 2;
  const float pos = static_cast<float>(positions[t]);
  float* v = x + (t * heads + h) * head_dim;
  for (int64_t i = threadIdx.x; i < half; i += blockDim.x) {
    const double angle = static_cast<double>(__fmul_rn(inv_freq[i], pos));
    const float c = static_cast<float>(cos(angle));
    const float s = static_cast<float>(sin(angle));
    const float a = v[i];
    const float b = v[i + half];
    v[i] = __fsub_rn(__fmul_rn(a, c), __fmul_rn(b, s));
    v[i + half] = __fadd_rn(__fmul_rn(b, c), __fmul_rn(a, s));
  }
}

// grid (heads + kv_heads, tokens): blocks below `heads` rotate a head of q; the others rotate a
// head of k and write it, with the same head of v, into the caches at row positions[t]. The same
// arithmetic as rope_kernel.
__global__ void rope_qk_append_kernel(float* q, float* k, const float* __restrict__ v,
                                      int64_t heads, int64_t kv_heads, int64_t head_dim,
                                      const int64_t* __restrict__ positions,
                                      const float* __restrict__ inv_freq,
                                      float* __restrict__ k_cache, float* __restrict__ v_cache) {
  const int64_t hh = blockIdx.x;
  const int64_t t = blockIdx.y;
  const int64_t half = head_dim / 2;
  const bool is_q = hh < heads;
  const int64_t h = is_q ? hh : hh - heads;
  const int64_t kv_dim = kv_heads * head_dim;
  float* x = is_q ? q + (t * heads + h) * head_dim : k + t * kv_dim + h * head_dim;
  const int64_t pos = positions[t];
  const float fpos = static_cast<float>(pos);
  float* kc = k_cache + pos * kv_dim + h * head_dim;
  float* vc = v_cache + pos * kv_dim + h * head_dim;
  const float* vr = v + t * kv_dim + h * head_dim;
  for (int64_t i = threadIdx.x; i < half; i += blockDim.x) {
    const double angle = static_cast<double>(__fmul_rn(inv_freq[i], fpos));
    const float c = static_cast<float>(cos(angle));
    const float s = static_cast<float>(sin(angle));
    const float a = x[i];
    const float b = x[i + half];
    const float lo = __fsub_rn(__fmul_rn(a, c), __fmul_rn(b, s));
    const float hi = __fadd_rn(__fmul_rn(b, c), __fmul_rn(a, s));
    x[i] = lo;
    x[i + half] = hi;
    if (!is_q) {
      kc[i] = lo;
      kc[i + half] = hi;
      vc[i] = vr[i];
      vc[i + half] = vr[i + half];
    }
  }
}

constexpr int kAttnWarps = 8;

// grid (heads, tokens, splits), kAttnWarps warps. Block z takes the z-th of `splits` equal ranges
// of the keys; its warp w takes keys w, w + kAttnWarps, ... of the range; lane l holds head
// elements l*kPer .. l*kPer + kPer - 1. Each warp keeps its own online-softmax state; the warps'
// states are merged at the end. With one split the block writes the output. With several (decoding:
// one query row has too few blocks to fill the GPU) each block writes its (max, sum, weighted
// values) to `partial`, and the last block of a (token, head) to finish, counted in `counters`
// (zero between launches: the last block resets its count), merges them. The ranges follow the
// position read on the device, so a recorded decode step replays at any length.
template <int kPer>
__global__ void __launch_bounds__(kAttnWarps * 32)
    attention_kernel(const float* __restrict__ q, int64_t heads, int64_t kv_heads, int64_t head_dim,
                     const float* __restrict__ k_cache, const float* __restrict__ v_cache,
                     const int64_t* __restrict__ positions, float scale, float* __restrict__ out,
                     int splits, float* __restrict__ partial, int* __restrict__ counters) {
  __shared__ bool s_last;
  __shared__ float s_m[kAttnWarps];
  __shared__ float s_l[kAttnWarps];
  __shared__ float s_acc[kAttnWarps][kPer * 32];
  const int64_t h = blockIdx.x;
  const int64_t t = blockIdx.y;
  const int lane = threadIdx.x & 31;
  const int warp = threadIdx.x >> 5;
  const int64_t kvh = h / (heads / kv_heads);
  const int64_t kv_dim = kv_heads * head_dim;
  const int64_t keys = positions[t] + 1;  // causal: the keys up to this token's position

  float qv[kPer];
  float acc[kPer];
  const float* qr = q + (t * heads + h) * head_dim;
#pragma unroll
  for (int e = 0; e < kPer; ++e) {
    const int64_t d = lane * kPer + e;
    qv[e] = d < head_dim ? qr[d] : 0.0f;
    acc[e] = 0.0f;
  }
  const int64_t chunk = (keys + splits - 1) / splits;
  const int64_t j_begin = static_cast<int64_t>(blockIdx.z) * chunk;
  const int64_t j_end = j_begin + chunk < keys ? j_begin + chunk : keys;
  float m = -INFINITY;
  float l = 0.0f;
  for (int64_t j = j_begin + warp; j < j_end; j += kAttnWarps) {
    const float* kr = k_cache + j * kv_dim + kvh * head_dim;
    const float* vr = v_cache + j * kv_dim + kvh * head_dim;
    float dot = 0.0f;
#pragma unroll
    for (int e = 0; e < kPer; ++e) {
      const int64_t d = lane * kPer + e;
      if (d < head_dim) dot += qv[e] * kr[d];
    }
    const float s = warp_sum(dot) * scale;
    const float m_new = fmaxf(m, s);
    const float corr = expf(m - m_new);
    const float p = expf(s - m_new);
    l = l * corr + p;
#pragma unroll
    for (int e = 0; e < kPer; ++e) {
      const int64_t d = lane * kPer + e;
      const float vv = d < head_dim ? vr[d] : 0.0f;
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
  const int64_t row = t * heads + h;
  const int64_t stride = head_dim + 2;
  float* mine = partial + (row * splits + blockIdx.z) * stride;
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
  const float* parts = partial + row * splits * stride;
  float top = -INFINITY;
  for (int z = 0; z < splits; ++z) top = fmaxf(top, __ldcg(parts + z * stride));
  float denominator = 0.0f;
  for (int z = 0; z < splits; ++z) {
    const float mz = __ldcg(parts + z * stride);
    if (mz != -INFINITY) denominator += __ldcg(parts + z * stride + 1) * expf(mz - top);
  }
  const float inv = 1.0f / denominator;
  for (int64_t d = threadIdx.x; d < head_dim; d += kAttnWarps * 32) {
    float sum = 0.0f;
    for (int z = 0; z < splits; ++z) {
      const float mz = __ldcg(parts + z * stride);
      if (mz != -INFINITY) sum += __ldcg(parts + z * stride + 2 + d) * expf(mz - top);
    }
    o[d] = sum * inv;
  }
  if (threadIdx.x == 0) counters[row] = 0;
}

// One block: the first index of the largest logit, then log(sum(exp(logit - max))) summed in
// double, as the host's top_token does.
constexpr int kTopThreads = 1024;

__global__ void __launch_bounds__(kTopThreads)
    top_token_kernel(const float* __restrict__ logits, int64_t n, int32_t* __restrict__ id_out,
                     float* __restrict__ logprob_out) {
  __shared__ float s_val[kTopThreads / 32];
  __shared__ int64_t s_idx[kTopThreads / 32];
  const int lane = threadIdx.x & 31;
  const int warp = threadIdx.x >> 5;
  float best = -INFINITY;
  int64_t best_i = n;
  for (int64_t i = threadIdx.x; i < n; i += kTopThreads) {
    const float v = logits[i];
    if (v > best || best_i == n) {
      best = v;
      best_i = i;
    }
  }
  // Larger value wins; on equal values the smaller index.
  const auto better = [](float v, int64_t i, float bv, int64_t bi) {
    return v > bv || (v == bv && i < bi);
  };
#pragma unroll
  for (int off = 16; off > 0; off >>= 1) {
    const float v = __shfl_xor_sync(0xffffffffu, best, off);
    const int64_t i = __shfl_xor_sync(0xffffffffu, best_i, off);
    if (better(v, i, best, best_i)) {
      best = v;
      best_i = i;
    }
  }
  if (lane == 0) {
    s_val[warp] = best;
    s_idx[warp] = best_i;
  }
  __syncthreads();
  best = s_val[0];
  best_i = s_idx[0];
  for (int w = 1; w < kTopThreads / 32; ++w) {
    if (better(s_val[w], s_idx[w], best, best_i)) {
      best = s_val[w];
      best_i = s_idx[w];
    }
  }
  double sum = 0.0;
  for (int64_t i = threadIdx.x; i < n; i += kTopThreads)
    sum += exp(static_cast<double>(logits[i]) - best);
  sum = block_sum_double<kTopThreads>(sum);
  if (threadIdx.x == 0) {
    *id_out = static_cast<int32_t>(best_i);
    *logprob_out = static_cast<float>(static_cast<double>(best) - best - log(sum));
  }
}

// One block: a draw from softmax(logits / T) by inverse transform in index order. Each thread
// sums exp((logit - max) / T) over its contiguous slice (in double); a scan over the threads finds
// the slice where the running sum passes uniform * total, and that thread walks its slice.
__global__ void __launch_bounds__(kTopThreads)
    sample_token_kernel(const float* __restrict__ logits, int64_t n, float inv_temperature,
                        double uniform, int32_t* __restrict__ id_out,
                        float* __restrict__ logprob_out) {
  __shared__ double s_scan[kTopThreads];
  __shared__ float s_max[kTopThreads / 32];
  __shared__ int64_t s_pick;
  const int lane = threadIdx.x & 31;
  const int warp = threadIdx.x >> 5;
  float m = -INFINITY;
  for (int64_t i = threadIdx.x; i < n; i += kTopThreads) m = fmaxf(m, logits[i]);
#pragma unroll
  for (int off = 16; off > 0; off >>= 1) m = fmaxf(m, __shfl_xor_sync(0xffffffffu, m, off));
  if (lane == 0) s_max[warp] = m;
  if (threadIdx.x == 0) s_pick = -1;
  __syncthreads();
  m = s_max[0];
  for (int w = 1; w < kTopThreads / 32; ++w) m = fmaxf(m, s_max[w]);

  const int64_t slice = (n + kTopThreads - 1) / kTopThreads;
  const int64_t begin = threadIdx.x * slice;
  const int64_t end = begin + slice < n ? begin + slice : n;
  double tempered = 0.0, raw = 0.0;
  for (int64_t i = begin; i < end; ++i) {
    const double d = static_cast<double>(logits[i]) - m;
    tempered += exp(d * inv_temperature);
    raw += exp(d);
  }
  // Inclusive scan of the tempered sums over the threads.
  block_inclusive_scan<kTopThreads>(tempered, s_scan);
  const double total = s_scan[kTopThreads - 1];
  const double target = uniform * total;
  const double before = threadIdx.x > 0 ? s_scan[threadIdx.x - 1] : 0.0;
  if (tempered > 0.0 && before <= target && target < s_scan[threadIdx.x]) {
    double acc = before;
    int64_t pick = end - 1;
    for (int64_t i = begin; i < end; ++i) {
      acc += exp((static_cast<double>(logits[i]) - m) * inv_temperature);
      if (acc > target) {
        pick = i;
        break;
      }
    }
    s_pick = pick;
  }
  const double raw_total = block_sum_double<kTopThreads>(raw);  // its barriers publish s_pick
  if (threadIdx.x == 0) {
    int64_t pick = s_pick;
    if (pick < 0) {
      // uniform * total rounded up to the total: the last token with any weight.
      pick = n - 1;
      while (pick > 0 && exp((static_cast<double>(logits[pick]) - m) * inv_temperature) == 0.0)
        --pick;
    }
    *id_out = static_cast<int32_t>(pick);
    *logprob_out = static_cast<float>(static_cast<double>(logits[pick]) - m - log(raw_total));
  }
}

// grid (tokens); copies row t of k and v into the caches at row positions[t].
__global__ void kv_append_kernel(const float* __restrict__ k, const float* __restrict__ v,
                                 int64_t kv_dim, const int64_t* __restrict__ positions,
                                 float* __restrict__ k_cache, float* __restrict__ v_cache) {
  const int64_t t = blockIdx.x;
  const int64_t row = positions[t];
  for (int64_t i = threadIdx.x; i < kv_dim; i += kThreads) {
    k_cache[row * kv_dim + i] = k[t * kv_dim + i];
    v_cache[row * kv_dim + i] = v[t * kv_dim + i];
  }
}

__global__ void silu_mul_kernel(const float* gate, const float* up, int64_t count, float* out) {
  for (int64_t i = blockIdx.x * int64_t{kThreads} + threadIdx.x; i < count;
       i += int64_t{gridDim.x} * kThreads) {
    const float g = gate[i];
    const float silu = __fdiv_rn(g, 1.0f + expf(-g));
    out[i] = __fmul_rn(silu, up[i]);
  }
}

__global__ void add_kernel(float* x, const float* __restrict__ y, int64_t count) {
  for (int64_t i = blockIdx.x * int64_t{kThreads} + threadIdx.x; i < count;
       i += int64_t{gridDim.x} * kThreads) {
    x[i] = __fadd_rn(x[i], y[i]);
  }
}

template <typename T>
__global__ void to_bf16_kernel(const T* __restrict__ in, int64_t count,
                               __nv_bfloat16* __restrict__ out) {
  for (int64_t i = blockIdx.x * int64_t{kThreads} + threadIdx.x; i < count;
       i += int64_t{gridDim.x} * kThreads) {
    if constexpr (std::is_same_v<T, __half>) {
      out[i] = __float2bfloat16_rn(__half2float(in[i]));
    } else {
      out[i] = __float2bfloat16_rn(in[i]);
    }
  }
}

template <typename T>
__global__ void scales_to_f32_kernel(const T* __restrict__ in, bool broadcast, int64_t rows,
                                     int64_t cols, int64_t ld, float* __restrict__ out) {
  for (int64_t i = blockIdx.x * int64_t{kThreads} + threadIdx.x; i < rows * cols;
       i += int64_t{gridDim.x} * kThreads) {
    const T v = in[broadcast ? 0 : i];
    float f;
    if constexpr (std::is_same_v<T, float>) {
      f = v;
    } else if constexpr (std::is_same_v<T, __half>) {
      f = __half2float(v);
    } else {
      f = __bfloat162float(v);
    }
    out[(i / cols) * ld + i % cols] = f;
  }
}

// Grid-stride kernels: enough blocks to fill the GPU, never more than the work needs.
unsigned elementwise_blocks(int64_t count) {
  const unsigned need = blocks_for(count, kThreads);
  return need < 4096 ? need : 4096;
}

}  // namespace

void launch_embed(const __nv_bfloat16* table, const int32_t* ids, int64_t tokens, int64_t hidden,
                  float* out, cudaStream_t stream) {
  if (tokens <= 0) return;
  embed_kernel<<<static_cast<unsigned>(tokens), kThreads, 0, stream>>>(table, ids, hidden, out);
  CUDA_CHECK_LAUNCH();
}

namespace {

template <int kBlockThreads, int kPer>
void launch_norm(float* x, const float* residual, int64_t rows, int64_t dim, const __nv_bfloat16* w,
                 float eps, float* out, cudaStream_t stream) {
  rms_norm_kernel<kBlockThreads, kPer>
      <<<static_cast<unsigned>(rows), kBlockThreads, 0, stream>>>(x, residual, dim, w, eps, out);
}

void launch_norm_any(float* x, const float* residual, int64_t rows, int64_t dim,
                     const __nv_bfloat16* w, float eps, float* out, cudaStream_t stream) {
  if (rows <= 0) return;
  if (dim <= 256) {
    launch_norm<128, 2>(x, residual, rows, dim, w, eps, out, stream);
  } else if (dim <= 4096) {
    launch_norm<512, 8>(x, residual, rows, dim, w, eps, out, stream);
  } else if (dim <= 16384) {
    launch_norm<1024, 16>(x, residual, rows, dim, w, eps, out, stream);
  } else {
    throw std::invalid_argument("launch_rms_norm: rows longer than 16384 are not supported");
  }
  CUDA_CHECK_LAUNCH();
}

}  // namespace

void launch_rms_norm(const float* x, int64_t rows, int64_t dim, const __nv_bfloat16* w, float eps,
                     float* out, cudaStream_t stream) {
  // Without a residual the kernel does not write x.
  launch_norm_any(const_cast<float*>(x), nullptr, rows, dim, w, eps, out, stream);
}

void launch_add_rms_norm(float* x, const float* residual, int64_t rows, int64_t dim,
                         const __nv_bfloat16* w, float eps, float* out, cudaStream_t stream) {
  launch_norm_any(x, residual, rows, dim, w, eps, out, stream);
}

void launch_rope(float* x, int64_t tokens, int64_t heads, int64_t head_dim,
                 const int64_t* positions, const float* inv_freq, cudaStream_t stream) {
  if (tokens <= 0) return;
  const int64_t half = head_dim / 2;
  const int threads = half >= 128 ? 128 : static_cast<int>((half + 31) / 32 * 32);
  rope_kernel<<<dim3(static_cast<unsigned>(heads), static_cast<unsigned>(tokens)), threads, 0,
                stream>>>(x, heads, head_dim, positions, inv_freq);
  CUDA_CHECK_LAUNCH();
}

void launch_attention(const float* q, int64_t tokens, int64_t heads, int64_t kv_heads,
                      int64_t head_dim, const float* k_cache, const float* v_cache,
                      const int64_t* positions, float* out, cudaStream_t stream,
                      const AttentionSplit& split) {
  if (tokens <= 0) return;
  if (head_dim > kAttentionMaxHeadDim || kv_heads <= 0 || heads % kv_heads != 0)
    throw std::invalid_argument("launch_attention: unsupported head layout");
  const int splits = split.splits > 1 ? split.splits : 1;
  if (splits > 1 && (split.partial == nullptr || split.counters == nullptr))
    throw std::invalid_argument("launch_attention: splitting needs scratch");
  const dim3 grid(static_cast<unsigned>(heads), static_cast<unsigned>(tokens),
                  static_cast<unsigned>(splits));
  const float scale = 1.0f / std::sqrt(static_cast<float>(head_dim));
  const int threads = kAttnWarps * 32;
  if (head_dim <= 64) {
    attention_kernel<2><<<grid, threads, 0, stream>>>(q, heads, kv_heads, head_dim, k_cache,
                                                      v_cache, positions, scale, out, splits,
                                                      split.partial, split.counters);
  } else if (head_dim <= 128) {
    attention_kernel<4><<<grid, threads, 0, stream>>>(q, heads, kv_heads, head_dim, k_cache,
                                                      v_cache, positions, scale, out, splits,
                                                      split.partial, split.counters);
  } else {
    attention_kernel<8><<<grid, threads, 0, stream>>>(q, heads, kv_heads, head_dim, k_cache,
                                                      v_cache, positions, scale, out, splits,
                                                      split.partial, split.counters);
  }
  CUDA_CHECK_LAUNCH();
}

void launch_top_token(const float* logits, int64_t n, int32_t* id_out, float* logprob_out,
                      cudaStream_t stream) {
  if (n <= 0) throw std::invalid_argument("launch_top_token: no logits");
  top_token_kernel<<<1, kTopThreads, 0, stream>>>(logits, n, id_out, logprob_out);
  CUDA_CHECK_LAUNCH();
}

void launch_rope_qk_append(float* q, float* k, const float* v, int64_t tokens, int64_t heads,
                           int64_t kv_heads, int64_t head_dim, const int64_t* positions,
                           const float* inv_freq, float* k_cache, float* v_cache,
                           cudaStream_t stream) {
  if (tokens <= 0) return;
  const int64_t half = head_dim / 2;
  const int threads = half >= 128 ? 128 : static_cast<int>((half + 31) / 32 * 32);
  rope_qk_append_kernel<<<dim3(static_cast<unsigned>(heads + kv_heads),
                               static_cast<unsigned>(tokens)),
                          threads, 0, stream>>>(q, k, v, heads, kv_heads, head_dim, positions,
                                                inv_freq, k_cache, v_cache);
  CUDA_CHECK_LAUNCH();
}

void launch_sample_token(const float* logits, int64_t n, float temperature, double uniform,
                         int32_t* id_out, float* logprob_out, cudaStream_t stream) {
  if (n <= 0 || !(temperature > 0.0f))
    throw std::invalid_argument("launch_sample_token: no logits, or temperature <= 0");
  sample_token_kernel<<<1, kTopThreads, 0, stream>>>(logits, n, 1.0f / temperature, uniform, id_out,
                                                     logprob_out);
  CUDA_CHECK_LAUNCH();
}

void launch_kv_append(const float* k, const float* v, int64_t tokens, int64_t kv_dim,
                      const int64_t* positions, float* k_cache, float* v_cache,
                      cudaStream_t stream) {
  if (tokens <= 0) return;
  kv_append_kernel<<<static_cast<unsigned>(tokens), kThreads, 0, stream>>>(k, v, kv_dim, positions,
                                                                           k_cache, v_cache);
  CUDA_CHECK_LAUNCH();
}

void launch_silu_mul(const float* gate, const float* up, int64_t count, float* out,
                     cudaStream_t stream) {
  if (count <= 0) return;
  silu_mul_kernel<<<elementwise_blocks(count), kThreads, 0, stream>>>(gate, up, count, out);
  CUDA_CHECK_LAUNCH();
}

void launch_add(float* x, const float* y, int64_t count, cudaStream_t stream) {
  if (count <= 0) return;
  add_kernel<<<elementwise_blocks(count), kThreads, 0, stream>>>(x, y, count);
  CUDA_CHECK_LAUNCH();
}

void launch_to_bf16(DType dtype, const void* in, int64_t count, __nv_bfloat16* out,
                    cudaStream_t stream) {
  if (count <= 0) return;
  switch (dtype) {
    case DType::BF16:
      CUDA_CHECK(cudaMemcpyAsync(out, in, static_cast<size_t>(count) * 2, cudaMemcpyDeviceToDevice,
                                 stream));
      return;
    case DType::F16:
      to_bf16_kernel<<<elementwise_blocks(count), kThreads, 0, stream>>>(
          static_cast<const __half*>(in), count, out);
      break;
    case DType::F32:
      to_bf16_kernel<<<elementwise_blocks(count), kThreads, 0, stream>>>(
          static_cast<const float*>(in), count, out);
      break;
    default:
      throw std::invalid_argument("launch_to_bf16: source must be BF16, F16 or F32");
  }
  CUDA_CHECK_LAUNCH();
}

void launch_scales_to_f32(DType dtype, const void* in, int64_t in_count, int64_t rows, int64_t cols,
                          int64_t ld, float* out, cudaStream_t stream) {
  if (rows * cols <= 0) return;
  if (in_count != 1 && in_count != rows * cols)
    throw std::invalid_argument("launch_scales_to_f32: source size does not match the scales");
  const bool broadcast = in_count == 1;
  const unsigned blocks = elementwise_blocks(rows * cols);
  switch (dtype) {
    case DType::F32:
      scales_to_f32_kernel<<<blocks, kThreads, 0, stream>>>(static_cast<const float*>(in),
                                                            broadcast, rows, cols, ld, out);
      break;
    case DType::F16:
      scales_to_f32_kernel<<<blocks, kThreads, 0, stream>>>(static_cast<const __half*>(in),
                                                            broadcast, rows, cols, ld, out);
      break;
    case DType::BF16:
      scales_to_f32_kernel<<<blocks, kThreads, 0, stream>>>(static_cast<const __nv_bfloat16*>(in),
                                                            broadcast, rows, cols, ld, out);
      break;
    default:
      throw std::invalid_argument("launch_scales_to_f32: scales must be F32, BF16 or F16");
  }
  CUDA_CHECK_LAUNCH();
}

}  // namespace fp8llm::cuda
