// The tensor-core prompt attention (prefill_attention.h) against the fp32 kernel it stands in for,
// on one pass mixing a decode token, a 200-token prompt, a chunk after a 100-token cached prefix
// and a 5-token prompt (so 64-row tiles straddle sequences), with shuffled blocks, for both head
// sizes it takes, grouped-query layouts and every KV element type. The only difference allowed is
// the bf16 rounding of Q, K, V and P on the way into the products; the decode token goes through
// the same kernel in both runs and must match bit for bit. Skipped without a GPU.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <numeric>
#include <random>
#include <string>
#include <vector>

#include "backend/cuda/kernels/paged_attention.h"
#include "backend/cuda/kernels/prefill_attention.h"
#include "backend/cuda/runtime/device.h"
#include "backend/cuda/runtime/device_buffer.h"
#include "core/dtype.h"
#include "test_util.h"

namespace fp8llm::cuda {
namespace {

struct Case {
  int64_t heads, kv_heads, head_dim;
  KvCacheDtype kv;
};

struct Seq {
  int64_t first, last;  // positions of this pass's tokens; keys 0 .. last
};

class CudaPrefillAttention : public ::testing::TestWithParam<Case> {
 protected:
  void SetUp() override {
    if (!device_available()) GTEST_SKIP() << "no CUDA device";
  }
};

TEST_P(CudaPrefillAttention, MatchesTheFp32KernelWithinBf16Rounding) {
  const Case c = GetParam();
  const int64_t H = c.heads, KVH = c.kv_heads, D = c.head_dim, block = 16;
  // The decode token first, then the prompts, as a pass lays them out.
  const std::vector<Seq> seqs = {{70, 70}, {0, 199}, {100, 136}, {0, 4}};
  std::mt19937 rng(1234);
  std::normal_distribution<float> normal(0.0f, 1.0f);

  int64_t max_blocks = 0;
  for (const Seq& s : seqs) max_blocks = std::max(max_blocks, s.last / block + 1);
  std::vector<int32_t> free_blocks(static_cast<size_t>(max_blocks * seqs.size()));
  std::iota(free_blocks.begin(), free_blocks.end(), 0);
  std::shuffle(free_blocks.begin(), free_blocks.end(), rng);
  std::vector<int32_t> tables(seqs.size() * static_cast<size_t>(max_blocks), 0);
  std::vector<int64_t> positions, slots;
  std::vector<int32_t> token_seq;
  size_t next = 0;
  for (size_t s = 0; s < seqs.size(); ++s) {
    for (int64_t b = 0; b <= seqs[s].last / block; ++b)
      tables[s * max_blocks + b] = free_blocks[next++];
    for (int64_t p = seqs[s].first; p <= seqs[s].last; ++p) {
      positions.push_back(p);
      slots.push_back(tables[s * max_blocks + p / block] * block + p % block);
      token_seq.push_back(static_cast<int32_t>(s));
    }
  }
  const int64_t tokens = static_cast<int64_t>(positions.size());
  const int64_t cache_slots = static_cast<int64_t>(free_blocks.size()) * block;
  const size_t cache_elems = static_cast<size_t>(cache_slots * KVH * D);

  // Every slot of the cache holds a random row (the prefix and this pass's keys alike).
  std::vector<float> k_values(cache_elems), v_values(cache_elems);
  for (auto& x : k_values) x = normal(rng);
  for (auto& x : v_values) x = normal(rng);
  std::vector<float> k_scale(static_cast<size_t>(cache_slots * KVH), 1.0f), v_scale = k_scale;
  DeviceBuffer k_cache, v_cache;
  if (c.kv == KvCacheDtype::F32) {
    k_cache = to_device(k_values);
    v_cache = to_device(v_values);
  } else if (c.kv == KvCacheDtype::BF16) {
    std::vector<uint16_t> kb(cache_elems), vb(cache_elems);
    for (size_t i = 0; i < cache_elems; ++i) {
      kb[i] = f32_to_bf16(k_values[i]);
      vb[i] = f32_to_bf16(v_values[i]);
    }
    k_cache = to_device(kb);
    v_cache = to_device(vb);
  } else {
    std::vector<uint8_t> kq(cache_elems), vq(cache_elems);
    for (size_t i = 0; i < cache_elems; ++i) {
      kq[i] = f32_to_e4m3(std::clamp(k_values[i] * 100.0f, -448.0f, 448.0f));
      vq[i] = f32_to_e4m3(std::clamp(v_values[i] * 100.0f, -448.0f, 448.0f));
    }
    for (auto& s : k_scale) s = 0.01f * (1.0f + 0.5f * std::fabs(normal(rng)));
    for (auto& s : v_scale) s = 0.01f * (1.0f + 0.5f * std::fabs(normal(rng)));
    k_cache = to_device(kq);
    v_cache = to_device(vq);
  }
  DeviceBuffer d_k_scale = to_device(k_scale), d_v_scale = to_device(v_scale);
  std::vector<float> q(static_cast<size_t>(tokens * H * D));
  for (auto& x : q) x = normal(rng);

  DeviceBuffer d_q = to_device(q), d_pos = to_device(positions), d_slots = to_device(slots),
               d_seq = to_device(token_seq), d_tables = to_device(tables);
  DeviceBuffer partial(static_cast<size_t>(tokens * H * kDecodeMaxSplits * (D + 2)) *
                       sizeof(float));
  DeviceBuffer counters(static_cast<size_t>(tokens * H) * sizeof(int));
  counters.fill_zero();
  const PagedBatch batch{.tokens = tokens,
                         .positions = d_pos.as<int64_t>(),
                         .slots = d_slots.as<int64_t>(),
                         .token_seq = d_seq.as<int32_t>(),
                         .block_tables = d_tables.as<int32_t>(),
                         .max_blocks = max_blocks};
  ASSERT_TRUE(prefill_attention_supported(D))
      << "this device cannot hold the tiles of head size " << D;
  const bool fp8 = c.kv == KvCacheDtype::Fp8;
  const PagedKv kv{.dtype = c.kv,
                   .k = k_cache.data(),
                   .v = v_cache.data(),
                   .k_scale = fp8 ? d_k_scale.as<float>() : nullptr,
                   .v_scale = fp8 ? d_v_scale.as<float>() : nullptr,
                   .block_size = block};
  const size_t out_elems = static_cast<size_t>(tokens * H * D);
  std::vector<std::vector<float>> outs;
  for (PrefillAttention mode : {PrefillAttention::Fp32, PrefillAttention::TensorCores}) {
    DeviceBuffer out(out_elems * sizeof(float));
    launch_paged_attention(d_q.as<float>(), H, KVH, D, batch, /*decode_tokens=*/1, kv,
                           {partial.as<float>(), counters.as<int>()}, out.as<float>(), nullptr,
                           mode);
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
              static_cast<long long>(H), static_cast<long long>(KVH), static_cast<long long>(D),
              std::string(to_string(c.kv)).c_str(), worst);
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
