#include "quant/fp8_scheme.h"

#include "core/dtype.h"

namespace fp8llm {

std::optional<Fp8Scheme> parse_fp8_scheme(std::string_view text) {
  if (text == "fp8-row" || text == "row") return Fp8Scheme::Row;
  if (text == "fp8-block" || text == "block") return Fp8Scheme::Block;
  return std::nullopt;
}

std::string_view fp8_scheme_name(Fp8Scheme scheme) {
  return scheme == Fp8Scheme::Row ? "row" : "block";
}

namespace {
int64_t ceil_div(int64_t a, int64_t b) {
  return (a + b - 1) / b;
}
}  // namespace

Shape weight_scale_shape(Fp8Scheme scheme, int64_t n, int64_t k) {
  if (scheme == Fp8Scheme::Row) return {n, 1};
  return {ceil_div(n, kFp8BlockSize), ceil_div(k, kFp8BlockSize)};
}

Shape activation_scale_shape(Fp8Scheme scheme, int64_t t, int64_t k) {
  if (scheme == Fp8Scheme::Row) return {t, 1};
  return {t, ceil_div(k, kFp8BlockSize)};
}

std::string weight_scale_name(Fp8Scheme scheme, std::string_view weight_name) {
  std::string name(weight_name);
  name += scheme == Fp8Scheme::Row ? "_scale" : "_scale_inv";
  return name;
}

float fp8_scale_from_amax(float amax, Fp8ScaleRule rule) {
  if (amax == 0.0f) return 1.0f;
  constexpr float kInverseMax = 1.0f / kE4M3Max;  // rounded once, as PyTorch on CUDA does
  return rule == Fp8ScaleRule::Divide ? amax / kE4M3Max : amax * kInverseMax;
}

}  // namespace fp8llm
