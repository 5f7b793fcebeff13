#include "backend/cuda/gemm/fp8_linear.h"

#include <algorithm>
#include <cstdint>
#include <stdexcept>
#include <type_traits>

#include "backend/cuda/kernels/fp8_gemv.h"
#include "backend/cuda/kernels/fp8_quant.h"

namespace fp8llm::cuda {
namespace {

int64_t round_up(int64_t v, int64_t to) {
  return (v + to - 1) / to * to;
}

}  // namespace

void Fp8Linear::reserve(int64_t rows, int64_t k) {
  // The layout forward_impl uses, with every row's scales counted twice (either split).
  const int64_t q_bytes = round_up(rows * k, 256);
  const int64_t s_bytes = round_up(activation_scale_elems(Fp8Scheme::Block, rows, k) * 4, 256);
  scratch_.reserve_discard(static_cast<size_t>(q_bytes + 2 * s_bytes + 512));
}

int64_t Fp8Linear::cublaslt_rows(const Fp8DeviceWeight& w, int64_t m) {
  if (m < kFp8LinearMinCublasRows) return 0;
  const bool block = w.scheme == Fp8Scheme::Block;
  const int64_t rows = block ? m / 4 * 4 : m;
  if (!CublasLtGemm::fp8_supports(w.scheme, rows, w.n, w.k)) return 0;
  if (block && w.scale_ld % 4 != 0) return 0;
  return rows;
}

void Fp8Linear::forward(const Fp8DeviceWeight& w, const __nv_bfloat16* x, int64_t m,
                        __nv_bfloat16* y, cudaStream_t stream) {
  forward_impl(w, x, m, y, stream);
}

void Fp8Linear::forward(const Fp8DeviceWeight& w, const float* x, int64_t m, float* y,
                        cudaStream_t stream) {
  forward_impl(w, x, m, y, stream);
}

bool Fp8Linear::group_supports(const Fp8DeviceWeight& first, const Fp8DeviceWeight& w) {
  return w.scheme == first.scheme && w.k == first.k && w.k % 16 == 0 && w.n > 0 &&
         (reinterpret_cast<uintptr_t>(w.q) & 15u) == 0;
}

void Fp8Linear::forward_group(std::span<const Fp8DeviceWeight* const> ws, const float* x,
                              int64_t m, std::span<float* const> ys, cudaStream_t stream) {
  if (ws.size() != ys.size() || ws.empty()) throw std::invalid_argument("forward_group: sizes");
  if (m <= 0) return;
  if (m > 1) return forward_rows_group(ws, x, m, ys, stream);
  bool grouped = ws.size() <= static_cast<size_t>(kFp8GemvMaxGroup);
  for (const Fp8DeviceWeight* w : ws) grouped = grouped && group_supports(*ws[0], *w);
  if (!grouped) {
    for (size_t i = 0; i < ws.size(); ++i) forward(*ws[i], x, 1, ys[i], stream);
    return;
  }
  const Fp8DeviceWeight& first = *ws[0];
  const int64_t k = first.k;
  const int64_t q_bytes = round_up(k, 256);
  scratch_.reserve_discard(
      static_cast<size_t>(q_bytes + round_up(activation_scale_elems(first.scheme, 1, k) * 4, 256)));
  auto* q = scratch_.as<uint8_t>();
  auto* s = reinterpret_cast<float*>(q + q_bytes);
  launch_quantize_activations(first.scheme, x, 1, k, q, s, stream);
  Fp8GemvGroupArgs a;
  a.scheme = first.scheme;
  a.xq = q;
  a.xs = s;
  a.k = k;
  a.count = static_cast<int>(ws.size());
  for (size_t i = 0; i < ws.size(); ++i) {
    const Fp8DeviceWeight& w = *ws[i];
    a.seg[i] = {w.q, w.scales, w.scale_ld, w.n, w.bias, ys[i]};
  }
  launch_fp8_gemv_group(a, stream);
}

int64_t Fp8Linear::gemm_rows(const Fp8DeviceWeight& w, int64_t m) const {
  return accumulation_ == Fp8Accumulation::Fp32 ? 0 : cublaslt_rows(w, m);
}

void Fp8Linear::forward_rows_group(std::span<const Fp8DeviceWeight* const> ws, const float* x,
                                   int64_t m, std::span<float* const> ys, cudaStream_t stream) {
  const Fp8DeviceWeight& first = *ws[0];
  const int64_t m_lt = gemm_rows(first, m);
  bool shared = first.n > 0 && first.k > 0;
  for (const Fp8DeviceWeight* w : ws) {
    shared = shared && w->scheme == first.scheme && w->k == first.k && w->n > 0 &&
             gemm_rows(*w, m) == m_lt;
  }
  if (!shared) {
    for (size_t i = 0; i < ws.size(); ++i) forward(*ws[i], x, m, ys[i], stream);
    return;
  }
  const QuantizedRows in = quantize_rows(first.scheme, x, m, first.k, m_lt, stream);
  for (size_t i = 0; i < ws.size(); ++i) multiply(*ws[i], in, ys[i], stream);
}

template <typename T>
Fp8Linear::QuantizedRows Fp8Linear::quantize_rows(Fp8Scheme scheme, const T* x, int64_t m,
                                                  int64_t k, int64_t m_lt, cudaStream_t stream) {
  const int64_t m_tail = m - m_lt;
  // scratch: q[m, k] | scales of rows [0, m_lt) | scales of rows [m_lt, m), each 256-byte aligned
  const int64_t q_bytes = round_up(m * k, 256);
  const int64_t s1_bytes = round_up(activation_scale_elems(scheme, m_lt, k) * 4, 256);
  const int64_t s2_bytes = round_up(activation_scale_elems(scheme, m_tail, k) * 4, 256);
  scratch_.reserve_discard(static_cast<size_t>(q_bytes + s1_bytes + s2_bytes));
  auto* q = scratch_.as<uint8_t>();
  auto* s1 = reinterpret_cast<float*>(q + q_bytes);
  auto* s2 = reinterpret_cast<float*>(q + q_bytes + s1_bytes);
  if (m_lt > 0) launch_quantize_activations(scheme, x, m_lt, k, q, s1, stream);
  if (m_tail > 0) launch_quantize_activations(scheme, x + m_lt * k, m_tail, k, q + m_lt * k, s2, stream);
  return {q, s1, s2, m, m_lt, k};
}

template <typename T>
void Fp8Linear::multiply(const Fp8DeviceWeight& w, const QuantizedRows& in, T* y,
                         cudaStream_t stream) {
  const int64_t k = in.k;
  if (in.m_lt > 0) {
    gemm_.gemm_fp8(w.scheme, in.q, in.s1, in.m_lt, w.q, w.scales, w.scale_ld, w.n, k, w.bias, y,
                   stream);
  }
  const int64_t m_tail = in.m - in.m_lt;
  const uint8_t* q2 = in.q + in.m_lt * k;
  for (int64_t r0 = 0; r0 < m_tail; r0 += kFp8GemvMaxRows) {
    Fp8GemvArgs a;
    a.scheme = w.scheme;
    a.xq = q2 + r0 * k;
    a.xs = in.s2 + r0;
    a.xs_ld = m_tail;
    a.m = std::min(kFp8GemvMaxRows, m_tail - r0);
    a.wq = w.q;
    a.ws = w.scales;
    a.ws_ld = w.scale_ld;
    a.n = w.n;
    a.k = k;
    a.bias = w.bias;
    if constexpr (std::is_same_v<T, float>) {
      a.y_f32 = y + (in.m_lt + r0) * w.n;
    } else {
      a.y = y + (in.m_lt + r0) * w.n;
    }
    a.ldy = w.n;
    launch_fp8_gemv(a, stream);
  }
}

template <typename T>
void Fp8Linear::forward_impl(const Fp8DeviceWeight& w, const T* x, int64_t m, T* y,
                             cudaStream_t stream) {
  if (m <= 0) return;
  if (w.n <= 0 || w.k <= 0) throw std::invalid_argument("Fp8Linear: empty weight");
  const QuantizedRows in = quantize_rows(w.scheme, x, m, w.k, gemm_rows(w, m), stream);
  multiply(w, in, y, stream);
}

}  // namespace fp8llm::cuda
