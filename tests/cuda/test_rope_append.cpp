// RoPE and the KV append reading q, k and v from anywhere (QkvRows): from the columns of one
// joined q/k/v output, as qkv_rope_append_kv reads them, the cache and the rotated q get the bits
// the in-place call over three separate arrays gives, the joined output is left as it was, and the
// rotation is the definition's.
#include <gtest/gtest.h>

#include <cmath>
#include <cstdint>
#include <cstring>
#include <random>
#include <string>
#include <vector>

#include "backend/cuda/kernels/paged_attention.h"
#include "backend/cuda/runtime/cuda_check.h"
#include "backend/cuda/runtime/device.h"
#include "backend/cuda/runtime/device_buffer.h"
#include "paged_attention_fixture.h"

namespace fp8llm::cuda {
namespace {

using test::PagedAttentionFixture;
using test::PassSeq;

template <typename T>
std::vector<T> host_copy(const DeviceBuffer& b, size_t count) {
  std::vector<T> out(count);
  CUDA_CHECK(cudaMemcpy(out.data(), b.data(), count * sizeof(T), cudaMemcpyDeviceToHost));
  return out;
}

void expect_same_bytes(const DeviceBuffer& a, const DeviceBuffer& b, size_t bytes,
                       const char* what) {
  const auto ha = host_copy<uint8_t>(a, bytes);
  const auto hb = host_copy<uint8_t>(b, bytes);
  size_t differ = 0;
  for (size_t i = 0; i < bytes; ++i) differ += ha[i] != hb[i];
  EXPECT_EQ(differ, 0u) << what << ": " << differ << " of " << bytes << " bytes differ";
}

class RopeAppend : public ::testing::Test {
 protected:
  void SetUp() override {
    if (!device_available()) GTEST_SKIP() << "no CUDA device";
  }
};

TEST_F(RopeAppend, JoinedRowsGiveTheInPlaceBits) {
  const std::vector<PassSeq> seqs = {{0, 0}, {5, 9}, {17, 17}, {30, 44}, {1000, 1000}};
  for (const KvCacheDtype dtype : {KvCacheDtype::F32, KvCacheDtype::BF16, KvCacheDtype::Fp8}) {
    for (const int64_t head_dim : {int64_t{64}, int64_t{128}}) {
      SCOPED_TRACE("dtype " + std::to_string(static_cast<int>(dtype)) + ", head_dim " +
                   std::to_string(head_dim));
      const int64_t heads = 8, kv_heads = 2;
      // Two caches alike: one written the old way, one from the joined rows.
      PagedAttentionFixture a(heads, kv_heads, head_dim, dtype, seqs, 91);
      PagedAttentionFixture b(heads, kv_heads, head_dim, dtype, seqs, 91);
      const int64_t t = a.tokens;
      const int64_t nq = heads * head_dim, nkv = kv_heads * head_dim;
      const int64_t ld = nq + 2 * nkv + 4;  // a joined GEMM's row, with room past it
      std::mt19937 rng(92);
      std::normal_distribution<float> normal(0.0f, 1.0f);
      std::vector<float> joined(static_cast<size_t>(t * ld));
      for (float& x : joined) x = normal(rng);
      std::vector<float> hq(static_cast<size_t>(t * nq)), hk(static_cast<size_t>(t * nkv)),
          hv(static_cast<size_t>(t * nkv));
      for (int64_t r = 0; r < t; ++r) {
        std::memcpy(&hq[r * nq], &joined[r * ld], nq * sizeof(float));
        std::memcpy(&hk[r * nkv], &joined[r * ld + nq], nkv * sizeof(float));
        std::memcpy(&hv[r * nkv], &joined[r * ld + nq + nkv], nkv * sizeof(float));
      }
      std::vector<float> inv_freq(static_cast<size_t>(head_dim / 2));
      for (size_t i = 0; i < inv_freq.size(); ++i)
        inv_freq[i] = static_cast<float>(
            1.0 / std::pow(500000.0, 2.0 * static_cast<double>(i) / static_cast<double>(head_dim)));
      DeviceBuffer d_freq = to_device(inv_freq);
      DeviceBuffer dq = to_device(hq), dk = to_device(hk), dv = to_device(hv);
      DeviceBuffer d_joined = to_device(joined);
      DeviceBuffer q_out(static_cast<size_t>(t * nq) * sizeof(float));

      launch_rope_append_kv(dq.as<float>(), dk.as<float>(), dv.as<float>(), heads, kv_heads,
                            head_dim, d_freq.as<float>(), a.batch, a.kv, nullptr);
      const float* y = d_joined.as<float>();
      launch_rope_append_kv(QkvRows{.q = y,
                                    .k = y + nq,
                                    .v = y + nq + nkv,
                                    .q_ld = ld,
                                    .k_ld = ld,
                                    .v_ld = ld,
                                    .q_out = q_out.as<float>(),
                                    .k_out = nullptr},
                            heads, kv_heads, head_dim, d_freq.as<float>(), b.batch, b.kv, nullptr);
      CUDA_CHECK(cudaDeviceSynchronize());

      expect_same_bytes(dq, q_out, static_cast<size_t>(t * nq) * sizeof(float), "rotated q");
      const size_t elem = dtype == KvCacheDtype::F32 ? 4 : dtype == KvCacheDtype::BF16 ? 2 : 1;
      const size_t cache_bytes = a.k_cache.size();
      ASSERT_EQ(cache_bytes, b.k_cache.size());
      ASSERT_EQ(cache_bytes % elem, 0u);
      expect_same_bytes(a.k_cache, b.k_cache, cache_bytes, "key cache");
      expect_same_bytes(a.v_cache, b.v_cache, cache_bytes, "value cache");
      if (dtype == KvCacheDtype::Fp8) {
        expect_same_bytes(a.k_scale, b.k_scale, a.k_scale.size(), "key scales");
        expect_same_bytes(a.v_scale, b.v_scale, a.v_scale.size(), "value scales");
      }
      // The joined output is only read.
      EXPECT_EQ(host_copy<float>(d_joined, joined.size()), joined);

      // The rotation itself: pairs (i, i + half) of each head turned by position * inv_freq[i].
      const auto rotated = host_copy<float>(q_out, static_cast<size_t>(t * nq));
      const int64_t half = head_dim / 2;
      double worst = 0;
      for (int64_t r = 0; r < t; ++r) {
        const float pos = static_cast<float>(a.positions[static_cast<size_t>(r)]);
        for (int64_t h = 0; h < heads; ++h) {
          for (int64_t i = 0; i < half; ++i) {
            const double angle = static_cast<double>(inv_freq[static_cast<size_t>(i)] * pos);
            const double x0 = hq[r * nq + h * head_dim + i];
            const double x1 = hq[r * nq + h * head_dim + i + half];
            const double want0 = x0 * std::cos(angle) - x1 * std::sin(angle);
            const double want1 = x1 * std::cos(angle) + x0 * std::sin(angle);
            worst = std::max(worst, std::fabs(rotated[r * nq + h * head_dim + i] - want0));
            worst = std::max(worst, std::fabs(rotated[r * nq + h * head_dim + i + half] - want1));
          }
        }
      }
      EXPECT_LT(worst, 1e-5);
    }
  }
}

TEST_F(RopeAppend, RejectsRowsShorterThanTheirHeads) {
  const std::vector<PassSeq> seqs = {{0, 3}};
  PagedAttentionFixture f(4, 2, 64, KvCacheDtype::BF16, seqs, 93);
  DeviceBuffer rows(static_cast<size_t>(f.tokens * 8 * 64) * sizeof(float));
  DeviceBuffer freq(32 * sizeof(float));
  const float* y = rows.as<float>();
  QkvRows short_k{.q = y, .k = y, .v = y, .q_ld = 256, .k_ld = 64, .v_ld = 128};
  short_k.q_out = rows.as<float>();
  EXPECT_THROW(launch_rope_append_kv(short_k, 4, 2, 64, freq.as<float>(), f.batch, f.kv, nullptr),
               std::invalid_argument);
  QkvRows no_out{.q = y, .k = y, .v = y, .q_ld = 256, .k_ld = 128, .v_ld = 128};
  EXPECT_THROW(launch_rope_append_kv(no_out, 4, 2, 64, freq.as<float>(), f.batch, f.kv, nullptr),
               std::invalid_argument);
}

}  // namespace
}  // namespace fp8llm::cuda
