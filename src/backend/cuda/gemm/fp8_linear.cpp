#include "backend/cuda/gemm/fp8_linear.h"

#include <algorithm>
#include <cstdint>
#include <optional>
#include <stdexcept>
#include <type_traits>

#include "backend/cuda/kernels/elementwise.h"
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

bool Fp8Linear::gemv_groups(std::span<const Fp8DeviceWeight* const> ws, int64_t m) const {
  if (ws.size() > static_cast<size_t>(kFp8GemvMaxGroup)) return false;
  if (m != 1 &&
      !(accumulation_ == Fp8Accumulation::TensorCore && fp8_gemv_tc_supports(m, ws[0]->k)))
    return false;
  for (const Fp8DeviceWeight* w : ws) {
    if (!group_supports(*ws[0], *w)) return false;
  }
  return true;
}

std::optional<Fp8Linear::QuantizedInput> Fp8Linear::reserve_group_input(
    std::span<const Fp8DeviceWeight* const> ws, int64_t m) {
  if (ws.empty() || m <= 0) return std::nullopt;
  const Fp8DeviceWeight& first = *ws[0];
  const int64_t m_lt = gemm_rows(first, m, true);
  for (const Fp8DeviceWeight* w : ws) {
    if (w->scheme != first.scheme || w->k != first.k || w->n <= 0 || w->k <= 0 ||
        gemm_rows(*w, m, true) != m_lt)
      return std::nullopt;
  }
  return reserve_input(first.scheme, m, first.k, m_lt);
}

bool Fp8Linear::takes_lora(std::span<const Fp8DeviceWeight* const> ws, int64_t m) const {
  return accumulation_ == Fp8Accumulation::TensorCore && !ws.empty() &&
         fp8_gemv_tc_supports(m, ws[0]->k) && gemv_groups(ws, m) && gemm_rows(*ws[0], m, true) == 0;
}

void Fp8Linear::forward_group(std::span<const Fp8DeviceWeight* const> ws, const float* x, int64_t m,
                              std::span<float* const> ys, cudaStream_t stream,
                              const Fp8GemvLora* lora) {
  if (ws.size() != ys.size() || ws.empty()) throw std::invalid_argument("forward_group: sizes");
  if (m <= 0) return;
  const std::optional<QuantizedInput> in = reserve_group_input(ws, m);
  if (!in) {
    if (lora) throw std::invalid_argument("forward_group: LoRA outside the tensor-core GEMV");
    for (size_t i = 0; i < ws.size(); ++i) forward(*ws[i], x, m, ys[i], stream);
    return;
  }
  quantize_into(*in, x, stream);
  forward_group_quantized(ws, *in, ys, stream, lora);
}

void Fp8Linear::forward_group_quantized(std::span<const Fp8DeviceWeight* const> ws,
                                        const QuantizedInput& in, std::span<float* const> ys,
                                        cudaStream_t stream, const Fp8GemvLora* lora) {
  if (ws.size() != ys.size() || ws.empty())
    throw std::invalid_argument("forward_group_quantized: sizes");
  if (lora && (!takes_lora(ws, in.m) || in.m_lt != 0))
    throw std::invalid_argument("forward_group_quantized: LoRA outside the tensor-core GEMV");
  if (!gemv_groups(ws, in.m) || in.m_lt != 0) {
    const std::optional<Fp8DeviceWeight> all = joined(ws);
    const bool aligned = std::all_of(ys.begin(), ys.end(), [](const float* y) {
      return reinterpret_cast<uintptr_t>(y) % 16 == 0;
    });
    if (all && aligned && in.m_lt > 0 && in.m_lt <= std::min(joined_rows_, kFp8JoinMaxRows) &&
        static_cast<size_t>(in.m_lt * all->n) * sizeof(float) <= joined_.size()) {
      // One GEMM over the weights as one, its columns then copied out to each output.
      gemm_.gemm_fp8(all->scheme, in.q, in.s1, in.m_lt, all->q, all->scales, all->scale_ld, all->n,
                     in.k, nullptr, joined_.as<float>(), stream);
      SplitColumnsArgs split{.src = joined_.as<float>(), .rows = in.m_lt, .count = 0};
      for (size_t i = 0; i < ws.size(); ++i) split.parts[split.count++] = {ys[i], ws[i]->n};
      launch_split_columns(split, stream);
      for (size_t i = 0; i < ws.size(); ++i) multiply_tail(*ws[i], in, ys[i], stream);
      ++joined_calls_;
      return;
    }
    for (size_t i = 0; i < ws.size(); ++i) multiply(*ws[i], in, ys[i], stream);
    return;
  }
  // One token (up to kFp8GemvTcMaxRows on the tensor cores): one kernel computes every output.
  Fp8GemvGroupArgs a;
  a.scheme = in.scheme;
  a.xq = in.q;
  a.xs = in.s2;
  a.xs_ld = in.m;
  a.m = in.m;
  a.k = in.k;
  a.count = static_cast<int>(ws.size());
  a.tensor_cores = accumulation_ == Fp8Accumulation::TensorCore;
  for (size_t i = 0; i < ws.size(); ++i) {
    const Fp8DeviceWeight& w = *ws[i];
    a.seg[i] = {w.q, w.scales, w.scale_ld, w.n, w.bias, ys[i]};
  }
  if (lora) a.lora = *lora;
  launch_fp8_gemv_group(a, stream);
}

std::optional<Fp8Linear::QuantizedInput> Fp8Linear::quantize_group_input(
    std::span<const Fp8DeviceWeight* const> ws, const float* x, int64_t m, cudaStream_t stream) {
  const std::optional<QuantizedInput> in = reserve_group_input(ws, m);
  if (in) quantize_into(*in, x, stream);
  return in;
}

std::optional<Fp8DeviceWeight> Fp8Linear::joins(std::span<const Fp8DeviceWeight* const> ws,
                                                const QuantizedInput& in) const {
  // The rows on cuBLASLt are what makes forward_group_quantized join (gemv_groups takes none).
  if (in.m_lt <= 0 || in.m > joined_rows_) return std::nullopt;
  const std::optional<Fp8DeviceWeight> all = joined(ws);
  if (!all || all->k != in.k || all->scheme != in.scheme ||
      static_cast<size_t>(in.m * all->n) * sizeof(float) > joined_.size())
    return std::nullopt;
  return all;
}

bool Fp8Linear::joins_rows(std::span<const Fp8DeviceWeight* const> ws, int64_t m) const {
  if (ws.empty() || m <= 0) return false;
  const Fp8DeviceWeight& first = *ws[0];
  const int64_t m_lt = gemm_rows(first, m, true);
  for (const Fp8DeviceWeight* w : ws) {
    if (w->scheme != first.scheme || w->k != first.k || gemm_rows(*w, m, true) != m_lt)
      return false;
  }
  QuantizedInput in;
  in.scheme = first.scheme;
  in.m = m;
  in.m_lt = m_lt;
  in.k = first.k;
  return joins(ws, in).has_value();
}

std::optional<Fp8Linear::JoinedOutput> Fp8Linear::forward_group_joined(
    std::span<const Fp8DeviceWeight* const> ws, const QuantizedInput& in, cudaStream_t stream) {
  const std::optional<Fp8DeviceWeight> all = joins(ws, in);
  if (!all) return std::nullopt;
  float* y = joined_.as<float>();
  gemm_.gemm_fp8(all->scheme, in.q, in.s1, in.m_lt, all->q, all->scales, all->scale_ld, all->n,
                 in.k, nullptr, y, stream);
  // The block scheme's last m % 4 rows: each weight's small-M kernel, into its columns.
  int64_t col = 0;
  for (const Fp8DeviceWeight* w : ws) {
    multiply_tail(*w, in, y + col, stream, all->n);
    col += w->n;
  }
  ++joined_calls_;
  return JoinedOutput{y, all->n};
}

std::optional<Fp8DeviceWeight> Fp8Linear::joined(std::span<const Fp8DeviceWeight* const> ws) {
  if (ws.size() < 2 || ws.size() > static_cast<size_t>(kSplitColumnsMaxParts)) return std::nullopt;
  Fp8DeviceWeight all = *ws[0];
  all.n = 0;
  for (const Fp8DeviceWeight* w : ws) {
    // Each part of the scratch's rows must start 16 bytes in (the split copies four floats).
    if (w->bias != nullptr || w->scheme != all.scheme || w->k != all.k || w->n % 4 != 0 ||
        w->scale_ld != all.scale_ld)
      return std::nullopt;
    const bool block = all.scheme == Fp8Scheme::Block;
    // Block scales cover 128 rows each: a weight that ends inside a block cannot share its rows.
    if (block && w->n % kFp8BlockSize != 0) return std::nullopt;
    const int64_t scale_rows = block ? all.n / kFp8BlockSize * all.scale_ld : all.n;
    if (w->q != all.q + all.n * all.k || w->scales != all.scales + scale_rows) return std::nullopt;
    all.n += w->n;
  }
  return all;
}

void Fp8Linear::reserve_joined(int64_t rows, int64_t n) {
  joined_rows_ = std::clamp<int64_t>(rows, 0, kFp8JoinInPlaceMaxRows);
  joined_.reserve_discard(static_cast<size_t>(std::max<int64_t>(joined_rows_ * n, 0)) *
                          sizeof(float));
}

int64_t Fp8Linear::gemm_rows(const Fp8DeviceWeight& w, int64_t m, bool f32_out) const {
  if (accumulation_ == Fp8Accumulation::Fp32) return 0;
  if (f32_out && fp8_gemv_tc_supports(m, w.k)) return 0;
  return cublaslt_rows(w, m);
}

Fp8Linear::QuantizedInput Fp8Linear::reserve_input(Fp8Scheme scheme, int64_t m, int64_t k,
                                                   int64_t m_lt) {
  const int64_t m_tail = m - m_lt;
  // scratch: q[m, k] | scales of rows [0, m_lt) | scales of rows [m_lt, m), each 256-byte aligned
  const int64_t q_bytes = round_up(m * k, 256);
  const int64_t s1_bytes = round_up(activation_scale_elems(scheme, m_lt, k) * 4, 256);
  const int64_t s2_bytes = round_up(activation_scale_elems(scheme, m_tail, k) * 4, 256);
  scratch_.reserve_discard(static_cast<size_t>(q_bytes + s1_bytes + s2_bytes));
  auto* q = scratch_.as<uint8_t>();
  return {scheme,
          q,
          reinterpret_cast<float*>(q + q_bytes),
          reinterpret_cast<float*>(q + q_bytes + s1_bytes),
          m,
          m_lt,
          k};
}

template <typename T>
void Fp8Linear::quantize_into(const QuantizedInput& in, const T* x, cudaStream_t stream) {
  const int64_t m_tail = in.m - in.m_lt;
  if (in.m_lt > 0) launch_quantize_activations(in.scheme, x, in.m_lt, in.k, in.q, in.s1, stream);
  if (m_tail > 0) {
    launch_quantize_activations(in.scheme, x + in.m_lt * in.k, m_tail, in.k, in.q + in.m_lt * in.k,
                                in.s2, stream);
  }
}

template <typename T>
void Fp8Linear::multiply(const Fp8DeviceWeight& w, const QuantizedInput& in, T* y,
                         cudaStream_t stream) {
  if (in.m_lt > 0) {
    gemm_.gemm_fp8(w.scheme, in.q, in.s1, in.m_lt, w.q, w.scales, w.scale_ld, w.n, in.k, w.bias, y,
                   stream);
  }
  multiply_tail(w, in, y, stream);
}

template <typename T>
void Fp8Linear::multiply_tail(const Fp8DeviceWeight& w, const QuantizedInput& in, T* y,
                              cudaStream_t stream, int64_t ldy) {
  if (ldy == 0) ldy = w.n;
  const int64_t k = in.k;
  const int64_t m_tail = in.m - in.m_lt;
  const uint8_t* q2 = in.q + in.m_lt * k;
  // The tensor-core GEMV takes all the rows in one launch where it applies (fp32 output).
  const bool one_launch = accumulation_ == Fp8Accumulation::TensorCore &&
                          std::is_same_v<T, float> && fp8_gemv_tc_supports(m_tail, k);
  const int64_t step = one_launch ? m_tail : kFp8GemvMaxRows;
  for (int64_t r0 = 0; r0 < m_tail; r0 += step) {
    Fp8GemvArgs a;
    a.scheme = w.scheme;
    a.xq = q2 + r0 * k;
    a.xs = in.s2 + r0;
    a.xs_ld = m_tail;
    a.m = std::min(step, m_tail - r0);
    a.wq = w.q;
    a.ws = w.scales;
    a.ws_ld = w.scale_ld;
    a.n = w.n;
    a.k = k;
    a.bias = w.bias;
    a.tensor_cores = accumulation_ == Fp8Accumulation::TensorCore;
    if constexpr (std::is_same_v<T, float>) {
      a.y_f32 = y + (in.m_lt + r0) * ldy;
    } else {
      a.y = y + (in.m_lt + r0) * ldy;
    }
    a.ldy = ldy;
    launch_fp8_gemv(a, stream);
  }
}

template <typename T>
void Fp8Linear::forward_impl(const Fp8DeviceWeight& w, const T* x, int64_t m, T* y,
                             cudaStream_t stream) {
  if (m <= 0) return;
  if (w.n <= 0 || w.k <= 0) throw std::invalid_argument("Fp8Linear: empty weight");
  const QuantizedInput in =
      reserve_input(w.scheme, m, w.k, gemm_rows(w, m, std::is_same_v<T, float>));
  quantize_into(in, x, stream);
  multiply(w, in, y, stream);
}

}  // namespace fp8llm::cuda
