// FP8LLM_ATTENTION_KERNELS: which of the attention kernels that compute the same run. Needs no GPU.
#include <gtest/gtest.h>

#include <string>

#include "backend/cuda/kernels/attention_kernels.h"
#include "core/error.h"

namespace fp8llm::cuda {
namespace {

TEST(AttentionKernels, EmptyTakesTheFasterKernels) {
  const AttentionKernels k = parse_attention_kernels("");
  EXPECT_EQ(k.decode, DecodeKvLoads::Pipelined);
  EXPECT_EQ(k.prefill, PrefillKernel::Mma);
  EXPECT_EQ(to_string(k), "decode=pipelined,prefill=mma");
}

TEST(AttentionKernels, EitherPartAloneOrBoth) {
  EXPECT_EQ(parse_attention_kernels("decode=measured").decode, DecodeKvLoads::Measured);
  EXPECT_EQ(parse_attention_kernels("decode=measured").prefill, PrefillKernel::Mma);
  EXPECT_EQ(parse_attention_kernels("prefill=wmma").prefill, PrefillKernel::Wmma);
  EXPECT_EQ(parse_attention_kernels("prefill=wmma").decode, DecodeKvLoads::Pipelined);
  const AttentionKernels both = parse_attention_kernels(" prefill = wmma , decode=measured ");
  EXPECT_EQ(to_string(both), "decode=measured,prefill=wmma");
  EXPECT_EQ(to_string(parse_attention_kernels(to_string(both))), to_string(both));
}

TEST(AttentionKernels, AnythingElseNamesTheVariableAndThePart) {
  for (const char* bad : {"decode", "decode=fast", "prefill=flash", "attention=mma", "decode=,"}) {
    try {
      parse_attention_kernels(bad);
      FAIL() << bad;
    } catch (const Error& e) {
      const std::string what = e.what();
      EXPECT_NE(what.find("FP8LLM_ATTENTION_KERNELS"), std::string::npos) << what;
      EXPECT_NE(what.find("cannot read"), std::string::npos) << what;
    }
  }
}

}  // namespace
}  // namespace fp8llm::cuda
