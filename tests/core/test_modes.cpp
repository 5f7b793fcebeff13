#include "fp8llm/modes.h"

#include <gtest/gtest.h>

#include <string>

#include "core/error.h"

namespace fp8llm::test {
namespace {

std::string error_of(auto parse, std::string_view text) {
  try {
    parse(text);
  } catch (const Error& e) {
    return e.what();
  }
  return "no error";
}

TEST(Modes, EverySpellingRoundTrips) {
  for (Quantization q :
       {Quantization::Auto, Quantization::None, Quantization::Fp8Row, Quantization::Fp8Block})
    EXPECT_EQ(parse_quantization(to_string(q)), q);
  for (Device d : {Device::Cpu, Device::Cuda}) EXPECT_EQ(parse_device(to_string(d)), d);
  for (Fp8Gemm g : {Fp8Gemm::TensorCore, Fp8Gemm::Fp32}) EXPECT_EQ(parse_fp8_gemm(to_string(g)), g);
  for (KvCacheDtype k :
       {KvCacheDtype::Auto, KvCacheDtype::F32, KvCacheDtype::BF16, KvCacheDtype::Fp8})
    EXPECT_EQ(parse_kv_cache_dtype(to_string(k)), k);
  EXPECT_EQ(to_string(FinishReason::Stop), "stop");
  EXPECT_EQ(to_string(FinishReason::Length), "length");
  EXPECT_EQ(to_string(FinishReason::Cancelled), "cancelled");
}

TEST(Modes, UnknownSpellingsNameTheFieldAndTheChoices) {
  EXPECT_EQ(error_of([](std::string_view t) { return parse_quantization(t); }, "int4"),
            "--quantization: 'int4' is not one of auto, none, fp8-row, fp8-block");
  EXPECT_EQ(error_of([](std::string_view t) { return parse_device(t); }, "tpu"),
            "--device: 'tpu' is not one of cpu, cuda");
  EXPECT_EQ(error_of([](std::string_view t) { return parse_fp8_gemm(t, "fp8_gemm"); }, "fast"),
            "fp8_gemm: 'fast' is not one of tensor-core, fp32");
  EXPECT_EQ(error_of([](std::string_view t) { return parse_kv_cache_dtype(t); }, "FP8"),
            "--kv-cache-dtype: 'FP8' is not one of auto, fp32, bf16, fp8");
}

}  // namespace
}  // namespace fp8llm::test
