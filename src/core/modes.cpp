#include "fp8llm/modes.h"

#include <array>
#include <utility>

#include "core/error.h"

namespace fp8llm {
namespace {

template <typename E, size_t N>
using Names = std::array<std::pair<E, std::string_view>, N>;

constexpr Names<Quantization, 4> kQuantization{{{Quantization::Auto, "auto"},
                                                {Quantization::None, "none"},
                                                {Quantization::Fp8Row, "fp8-row"},
                                                {Quantization::Fp8Block, "fp8-block"}}};
constexpr Names<Device, 2> kDevice{{{Device::Cpu, "cpu"}, {Device::Cuda, "cuda"}}};
constexpr Names<Fp8Gemm, 2> kFp8Gemm{
    {{Fp8Gemm::TensorCore, "tensor-core"}, {Fp8Gemm::Fp32, "fp32"}}};
constexpr Names<KvCacheDtype, 4> kKvCacheDtype{{{KvCacheDtype::Auto, "auto"},
                                                {KvCacheDtype::F32, "fp32"},
                                                {KvCacheDtype::BF16, "bf16"},
                                                {KvCacheDtype::Fp8, "fp8"}}};
constexpr Names<FinishReason, 4> kFinishReason{{{FinishReason::Stop, "stop"},
                                                {FinishReason::Length, "length"},
                                                {FinishReason::Cancelled, "cancelled"},
                                                {FinishReason::Error, "error"}}};

template <typename E, size_t N>
std::string_view name_of(const Names<E, N>& names, E value) {
  for (const auto& [v, n] : names)
    if (v == value) return n;
  return "?";
}

template <typename E, size_t N>
E parse(const Names<E, N>& names, std::string_view text, std::string_view what) {
  std::string known;
  for (const auto& [v, n] : names) {
    if (n == text) return v;
    known += known.empty() ? "" : ", ";
    known += n;
  }
  fail("{}: '{}' is not one of {}", what, text, known);
}

}  // namespace

std::string_view to_string(Quantization q) {
  return name_of(kQuantization, q);
}
std::string_view to_string(Device d) {
  return name_of(kDevice, d);
}
std::string_view to_string(Fp8Gemm g) {
  return name_of(kFp8Gemm, g);
}
std::string_view to_string(KvCacheDtype k) {
  return name_of(kKvCacheDtype, k);
}
std::string_view to_string(FinishReason f) {
  return name_of(kFinishReason, f);
}

Quantization parse_quantization(std::string_view text, std::string_view what) {
  return parse(kQuantization, text, what);
}
Device parse_device(std::string_view text, std::string_view what) {
  return parse(kDevice, text, what);
}
Fp8Gemm parse_fp8_gemm(std::string_view text, std::string_view what) {
  return parse(kFp8Gemm, text, what);
}
KvCacheDtype parse_kv_cache_dtype(std::string_view text, std::string_view what) {
  return parse(kKvCacheDtype, text, what);
}

}  // namespace fp8llm
