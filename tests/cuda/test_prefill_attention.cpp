// The tensor-core prompt attention (prefill_attention.h) against the fp32 kernel it stands in for,
// on one pass mixing a decode token, a 200-token prompt, a chunk after a 100-token cached prefix
// and a 5-token prompt (so 64-row tiles straddle sequences), with shuffled blocks, for both head
// sizes it takes, grouped-query layouts and every KV element type. The only difference allowed is
// the bf16 rounding of Q, K, V and P on the way into the products; the decode token goes through
// the same kernel in both runs and must match bit for bit. Skipped without a GPU.
#include <gtest/gtest.h>

#include <algorithm>
#include <cstdio>
#include <cstring>
#include <string>
#include <vector>

#include "backend/cuda/kernels/paged_attention.h"
#include "backend/cuda/kernels/prefill_attention.h"
#include "backend/cuda/runtime/device.h"
#include "backend/cuda/runtime/device_buffer.h"
#include "paged_attention_fixture.h"
#include "test_util.h"

namespace fp8llm::cuda {
namespace {

struct Case {
  int64_t heads, kv_heads, head_dim;
  KvCacheDtype kv;
};

class CudaPrefillAttention : public ::testing::TestWithParam<Case> {
 protected:
  void SetUp() override {
    if (!device_available()) GTEST_SKIP() << "no CUDA device";
  }
};

TEST_P(CudaPrefillAttention, MatchesTheFp32KernelWithinBf16Rounding) {
  const Case c = GetParam();
  const int64_t H = c.heads, D = c.head_dim;
  // The decode token first, then the prompts, as a pass lays them out.
  test::PagedAttentionFixture f(H, c.kv_heads, D, c.kv, {{70, 70}, {0, 199}, {100, 136}, {0, 4}},
                                1234);
  const int64_t tokens = f.tokens;
  const std::vector<int64_t>& positions = f.positions;
  const std::vector<int32_t>& token_seq = f.token_seq;
  ASSERT_TRUE(prefill_attention_supported(D))
      << "this device cannot hold the tiles of head size " << D;
  const size_t out_elems = static_cast<size_t>(tokens * H * D);
  std::vector<std::vector<float>> outs;
  for (PrefillAttention mode : {PrefillAttention::Fp32, PrefillAttention::TensorCores}) {
    DeviceBuffer out(out_elems * sizeof(float));
    launch_paged_attention(f.q.as<float>(), H, c.kv_heads, D, f.batch, /*decode_tokens=*/1, f.kv,
                           f.scratch(), out.as<float>(), nullptr, mode);
    ASSERT_EQ(cudaDeviceSynchronize(), cudaSuccess);
    outs.push_back(to_host<float>(out, out_elems));
  }
  const std::vector<float>& want = outs[0];
  const std::vector<float>& got = outs[1];
  // The decode token: the same kernel in both runs.
  EXPECT_EQ(std::memcmp(want.data(), got.data(), static_cast<size_t>(H * D) * sizeof(float)), 0);
  double worst = 0;
  for (int64_t t = 1; t < tokens; ++t) {
    for (int64_t h = 0; h < H; ++h) {
      const size_t at = static_cast<size_t>((t * H + h) * D);
      const double err = test::rel_l2(got.data() + at, want.data() + at, static_cast<size_t>(D));
      worst = std::max(worst, err);
      ASSERT_LT(err, 2e-2) << "token " << t << " (position " << positions[t] << ", sequence "
                           << token_seq[t] << ") head " << h;
    }
  }
  std::printf("heads %lld/%lld, head_dim %lld, kv %s: worst rel L2 %.3e\n",
              static_cast<long long>(H), static_cast<long long>(c.kv_heads),
              static_cast<long long>(D), std::string(to_string(c.kv)).c_str(), worst);
}

INSTANTIATE_TEST_SUITE_P(
    Layouts, CudaPrefillAttention,
    ::testing::Values(Case{4, 2, 64, KvCacheDtype::F32}, Case{4, 2, 64, KvCacheDtype::BF16},
                      Case{4, 2, 64, KvCacheDtype::Fp8}, Case{8, 1, 128, KvCacheDtype::F32},
                      Case{8, 1, 128, KvCacheDtype::BF16}, Case{8, 8, 128, KvCacheDtype::Fp8}),
    [](const ::testing::TestParamInfo<Case>& param_info) {
      const Case& c = param_info.param;
      return "h" + std::to_string(c.heads) + "_kv" + std::to_string(c.kv_heads) + "_d" +
             std::to_string(c.head_dim) + "_" + std::string(to_string(c.kv));
    });

TEST(PrefillAttentionSupport, HeadSizes) {
  if (!device_available()) GTEST_SKIP() << "no CUDA device";
  EXPECT_TRUE(prefill_attention_supported(64));
  EXPECT_TRUE(prefill_attention_supported(128));
  EXPECT_FALSE(prefill_attention_supported(96));
  EXPECT_FALSE(prefill_attention_supported(256));
}

}  // namespace
}  // namespace fp8llm::cuda
