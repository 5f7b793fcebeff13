// The decode attention kernels (decode_attention.h) against the general fp32 kernel of
// paged_attention.cu, which computes the same function with its sums in another order: one pass of
// decode tokens whose sequences hold from one key to 36 key ranges, for every KV element
// type, head sizes 64, 128 and 256, and one to sixteen query heads per KV head (seven: a block of
// four and one of three on CUDA cores). A bf16 or e4m3 cache of head size 64 or 128 with up to
// eight heads a KV head takes the tensor-core kernel, the other layouts the CUDA-core one. All sum
// in fp32 (the tensor-core kernel splits its fp32 operands into exact bf16 terms), so they agree to
// fp32 rounding. A token alone gets bit for bit what it gets in the batch, and a second launch the
// same bits (the last range of each token resets its counter). Skipped without a GPU.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <string>
#include <utility>
#include <vector>

#include "backend/cuda/kernels/decode_attention.h"
#include "backend/cuda/kernels/paged_attention.h"
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

class CudaDecodeAttention : public ::testing::TestWithParam<Case> {
 protected:
  void SetUp() override {
    if (!device_available()) GTEST_SKIP() << "no CUDA device";
  }
};

// Token t of the fixture's pass run alone (its q row, position and sequence as a batch of one)
// gets the bits `got` holds for it from the whole pass.
void expect_alone_as_in_batch(test::PagedAttentionFixture& f, int64_t heads, int64_t kv_heads,
                              int64_t head_dim, const std::vector<float>& got, int64_t t) {
  const size_t row = static_cast<size_t>(heads * head_dim);
  PagedBatch one = f.batch;
  one.tokens = 1;
  one.positions += t;
  one.slots += t;
  one.token_seq += t;
  DeviceBuffer alone(row * sizeof(float));
  launch_decode_attention(f.q.as<float>() + t * heads * head_dim, heads, kv_heads, head_dim, one, 1,
                          f.kv, f.scratch(), alone.as<float>(), nullptr);
  ASSERT_EQ(cudaDeviceSynchronize(), cudaSuccess);
  EXPECT_EQ(
      std::memcmp(to_host<float>(alone, row).data(), got.data() + t * row, row * sizeof(float)), 0)
      << "token " << t << " (" << f.positions[t] + 1 << " keys) alone";
}

void check_against_general_kernel(const Case& c) {
  const int64_t H = c.heads, D = c.head_dim;
  ASSERT_TRUE(decode_attention_supported(c.kv, D));
  // Keys 1, 5, 63, 64, 65, 101, 1001, 2101 and 9000: one range up to 64 keys, then 2, 16 (of
  // 64), 14 (of 160) and 36 (of 256).
  test::PagedAttentionFixture f(H, c.kv_heads, D, c.kv,
                                {{0, 0},
                                 {4, 4},
                                 {62, 62},
                                 {63, 63},
                                 {64, 64},
                                 {100, 100},
                                 {1000, 1000},
                                 {2100, 2100},
                                 {8999, 8999}},
                                42);
  const size_t n = f.out_elems();
  DeviceBuffer general(n * sizeof(float)), decode(n * sizeof(float));
  launch_paged_attention(f.q.as<float>(), H, c.kv_heads, D, f.batch, /*decode_tokens=*/0, f.kv,
                         f.scratch(), general.as<float>(), nullptr, PrefillAttention::Fp32);
  launch_decode_attention(f.q.as<float>(), H, c.kv_heads, D, f.batch, f.tokens, f.kv, f.scratch(),
                          decode.as<float>(), nullptr);
  ASSERT_EQ(cudaDeviceSynchronize(), cudaSuccess);
  const std::vector<float> want = to_host<float>(general, n);
  const std::vector<float> got = to_host<float>(decode, n);
  double worst = 0;
  for (int64_t t = 0; t < f.tokens; ++t) {
    for (int64_t h = 0; h < H; ++h) {
      const size_t at = static_cast<size_t>((t * H + h) * D);
      const double err = test::rel_l2(got.data() + at, want.data() + at, static_cast<size_t>(D));
      worst = std::max(worst, err);
      ASSERT_LT(err, 1e-5) << "token " << t << " (" << f.positions[t] + 1 << " keys) head " << h;
    }
  }
  std::printf("heads %lld/%lld, head_dim %lld, kv %s: worst rel L2 %.3e\n",
              static_cast<long long>(H), static_cast<long long>(c.kv_heads),
              static_cast<long long>(D), std::string(to_string(c.kv)).c_str(), worst);

  // Again: the counters were left at zero, so the ranges merge as before.
  DeviceBuffer again(n * sizeof(float));
  launch_decode_attention(f.q.as<float>(), H, c.kv_heads, D, f.batch, f.tokens, f.kv, f.scratch(),
                          again.as<float>(), nullptr);
  ASSERT_EQ(cudaDeviceSynchronize(), cudaSuccess);
  EXPECT_EQ(std::memcmp(to_host<float>(again, n).data(), got.data(), n * sizeof(float)), 0);

  // Each token alone.
  for (int64_t t = 0; t < f.tokens; ++t) expect_alone_as_in_batch(f, H, c.kv_heads, D, got, t);
}

TEST_P(CudaDecodeAttention, MatchesTheGeneralKernelAndIgnoresTheBatch) {
  check_against_general_kernel(GetParam());
}

INSTANTIATE_TEST_SUITE_P(
    Layouts, CudaDecodeAttention,
    ::testing::Values(Case{8, 2, 64, KvCacheDtype::F32}, Case{8, 2, 64, KvCacheDtype::BF16},
                      Case{8, 2, 64, KvCacheDtype::Fp8}, Case{32, 8, 128, KvCacheDtype::BF16},
                      Case{28, 4, 128, KvCacheDtype::BF16}, Case{4, 4, 128, KvCacheDtype::F32},
                      Case{8, 1, 128, KvCacheDtype::Fp8}, Case{8, 1, 128, KvCacheDtype::BF16},
                      Case{4, 4, 64, KvCacheDtype::BF16}, Case{16, 1, 64, KvCacheDtype::BF16},
                      Case{32, 8, 128, KvCacheDtype::Fp8}, Case{28, 4, 128, KvCacheDtype::Fp8},
                      Case{16, 4, 256, KvCacheDtype::BF16}, Case{8, 2, 256, KvCacheDtype::Fp8}),
    [](const ::testing::TestParamInfo<Case>& param_info) {
      const Case& c = param_info.param;
      return "h" + std::to_string(c.heads) + "_kv" + std::to_string(c.kv_heads) + "_d" +
             std::to_string(c.head_dim) + "_" + std::string(to_string(c.kv));
    });

// A batch as the engine runs one at 128 in / 128 out: 256 decode tokens of 1 to 300
// keys, more blocks than the GPU holds at once, for both caches the tensor-core kernel takes.
void check_batch_of_256(KvCacheDtype dtype) {
  std::vector<test::PassSeq> seqs;
  for (int64_t s = 0; s < 256; ++s) {
    const int64_t last = (s * 7919) % 300;
    seqs.push_back({last, last});
  }
  const int64_t H = 32, KVH = 8, D = 128;
  test::PagedAttentionFixture f(H, KVH, D, dtype, seqs, 7);
  const size_t n = f.out_elems();
  DeviceBuffer general(n * sizeof(float));
  launch_paged_attention(f.q.as<float>(), H, KVH, D, f.batch, /*decode_tokens=*/0, f.kv,
                         f.scratch(), general.as<float>(), nullptr, PrefillAttention::Fp32);
  ASSERT_EQ(cudaDeviceSynchronize(), cudaSuccess);
  const std::vector<float> want = to_host<float>(general, n);
  DeviceBuffer got_buffer(n * sizeof(float));
  launch_decode_attention(f.q.as<float>(), H, KVH, D, f.batch, f.tokens, f.kv, f.scratch(),
                          got_buffer.as<float>(), nullptr);
  ASSERT_EQ(cudaDeviceSynchronize(), cudaSuccess);
  const std::vector<float> got = to_host<float>(got_buffer, n);
  for (int64_t r = 0; r < f.tokens * H; ++r) {
    const size_t at = static_cast<size_t>(r * D);
    ASSERT_LT(test::rel_l2(got.data() + at, want.data() + at, static_cast<size_t>(D)), 1e-5)
        << "token " << r / H << " head " << r % H;
  }
  // At this size one block walks all of a token's ranges; alone, each range gets its own block.
  // The bits must not change.
  int checked = 0;
  for (int64_t t = 0; t < f.tokens && checked < 4; ++t) {
    if (f.positions[t] < 200) continue;  // four ranges or more
    ++checked;
    expect_alone_as_in_batch(f, H, KVH, D, got, t);
  }
  EXPECT_EQ(checked, 4);
}

TEST(CudaDecodeAttentionBatch, MatchesTheGeneralKernelAtBatch256) {
  if (!device_available()) GTEST_SKIP() << "no CUDA device";
  for (const KvCacheDtype dtype : {KvCacheDtype::BF16, KvCacheDtype::Fp8}) {
    SCOPED_TRACE(std::string(to_string(dtype)));
    check_batch_of_256(dtype);
  }
}

// The e4m3 NaN code reads as NaN in every kernel (the tensor-core one widens codes to bf16 on
// the way): values of NaN make every output NaN.
TEST(CudaDecodeAttentionE4m3, TheNanCodeStaysNan) {
  if (!device_available()) GTEST_SKIP() << "no CUDA device";
  test::PagedAttentionFixture f(32, 8, 128, KvCacheDtype::Fp8, {{0, 0}, {100, 100}, {2100, 2100}},
                                3);
  ASSERT_EQ(decode_kernel_for(KvCacheDtype::Fp8, 32, 8, 128), DecodeKernel::kTensorCores);
  ASSERT_EQ(cudaMemset(f.v_cache.as<uint8_t>(), 0x7f, f.v_cache.size()), cudaSuccess);
  const size_t n = f.out_elems();
  DeviceBuffer out(n * sizeof(float));
  launch_decode_attention(f.q.as<float>(), 32, 8, 128, f.batch, f.tokens, f.kv, f.scratch(),
                          out.as<float>(), nullptr);
  ASSERT_EQ(cudaDeviceSynchronize(), cudaSuccess);
  const std::vector<float> got = to_host<float>(out, n);
  EXPECT_TRUE(std::all_of(got.begin(), got.end(), [](float x) { return std::isnan(x); }));
}

// The grid choice runs on the host (no GPU needed): from two blocks an SM on, one block per
// (token, KV head) walks its ranges; below, the ranges spread out to fill a wave.
TEST(DecodeAttentionGrid, OneBlockATokenAtLargeBatches) {
  constexpr DecodeKernel kCuda = DecodeKernel::kCudaCores;
  EXPECT_EQ(choose_decode_grid(kCuda, 32, 8, 256, 132).range_blocks, 1);
  EXPECT_EQ(choose_decode_grid(kCuda, 32, 8, 64, 132).range_blocks, 1);  // 512 blocks
  EXPECT_EQ(choose_decode_grid(kCuda, 32, 8, 32, 132).range_blocks, 4);  // 256: 792 wanted
  EXPECT_EQ(choose_decode_grid(kCuda, 32, 8, 1, 132).range_blocks, kDecodeMaxSplits);
  // Seven query heads a KV head: two blocks of heads for each.
  EXPECT_EQ(choose_decode_grid(kCuda, 28, 4, 8, 132).range_blocks, 13);  // 64 blocks
  // A pass of short sequences launches no blocks for ranges none of them has.
  EXPECT_EQ(choose_decode_grid(kCuda, 32, 8, 1, 132, decode_ranges_bound(4096)).range_blocks, 16);
  EXPECT_EQ(choose_decode_grid(kCuda, 32, 8, 1, 132, decode_ranges_bound(4097)).range_blocks, 64);
  EXPECT_EQ(choose_decode_grid(kCuda, 32, 8, 1, 132, 3).range_blocks, 3);
}

// The tensor-core kernel takes a KV head's whole group in one block; below four blocks an SM it
// keeps three steps in flight and the SM two blocks, else two steps and three blocks.
TEST(DecodeAttentionGrid, TensorCoreBlocksTakeTheWholeGroup) {
  constexpr DecodeKernel kMma = DecodeKernel::kTensorCores;
  const auto grid = [](int64_t heads, int64_t kv_heads, int64_t tokens, int64_t bound = 0) {
    const DecodeGrid g = choose_decode_grid(kMma, heads, kv_heads, tokens, 132, bound);
    return std::pair<int64_t, int>(g.range_blocks, g.stages);
  };
  EXPECT_EQ(grid(32, 8, 256), std::make_pair(int64_t{1}, 2));
  EXPECT_EQ(grid(32, 8, 66), std::make_pair(int64_t{1}, 2));  // 528 blocks
  EXPECT_EQ(grid(32, 8, 64), std::make_pair(int64_t{1}, 3));  // 512
  EXPECT_EQ(grid(32, 8, 33), std::make_pair(int64_t{1}, 3));  // 264
  EXPECT_EQ(grid(32, 8, 16), std::make_pair(int64_t{3}, 3));  // 128: 264 wanted
  EXPECT_EQ(grid(28, 4, 8), std::make_pair(int64_t{9}, 3));   // 32 blocks
  EXPECT_EQ(grid(32, 8, 1, decode_ranges_bound(4096)), std::make_pair(int64_t{16}, 3));
  EXPECT_EQ(grid(32, 8, 1), std::make_pair(int64_t{33}, 3));
}

// Which kernel a layout gets: the choice never looks at the batch.
TEST(DecodeAttentionSupport, TensorCoresForBf16AndE4m3GroupsOfUpToEight) {
  EXPECT_EQ(decode_kernel_for(KvCacheDtype::BF16, 32, 8, 128), DecodeKernel::kTensorCores);
  EXPECT_EQ(decode_kernel_for(KvCacheDtype::BF16, 8, 1, 64), DecodeKernel::kTensorCores);
  EXPECT_EQ(decode_kernel_for(KvCacheDtype::BF16, 4, 4, 128), DecodeKernel::kTensorCores);
  EXPECT_EQ(decode_kernel_for(KvCacheDtype::BF16, 16, 1, 128), DecodeKernel::kCudaCores);
  EXPECT_EQ(decode_kernel_for(KvCacheDtype::BF16, 16, 4, 256), DecodeKernel::kCudaCores);
  EXPECT_EQ(decode_kernel_for(KvCacheDtype::Fp8, 32, 8, 128), DecodeKernel::kTensorCores);
  EXPECT_EQ(decode_kernel_for(KvCacheDtype::Fp8, 8, 2, 256), DecodeKernel::kCudaCores);
  EXPECT_EQ(decode_kernel_for(KvCacheDtype::F32, 32, 8, 128), DecodeKernel::kCudaCores);
}

// decode_ranges_bound holds: no sequence of its class has more ranges.
TEST(DecodeAttentionGrid, RangeBoundHoldsForEveryLength) {
  for (int64_t keys = 1; keys <= 40000; ++keys) {
    const int64_t chunk = decode_chunk(keys);
    ASSERT_LE((keys + chunk - 1) / chunk, decode_ranges_bound(keys)) << keys;
  }
  EXPECT_EQ(decode_ranges_bound(1), 16);
  EXPECT_EQ(decode_ranges_bound(4096), 16);
  EXPECT_EQ(decode_ranges_bound(4097), kDecodeMaxSplits);
}

// The cut into ranges: 16 ranges up to 4,096 keys, then ranges of 256 keys up to 64 of them.
TEST(DecodeAttentionGrid, RangesGrowWithTheContext) {
  const auto splits = [](int64_t keys) {
    const int64_t chunk = decode_chunk(keys);
    EXPECT_EQ(chunk % 32, 0) << keys;
    return (keys + chunk - 1) / chunk;
  };
  EXPECT_EQ(decode_chunk(1), 64);
  EXPECT_EQ(splits(64), 1);
  EXPECT_EQ(splits(65), 2);
  EXPECT_EQ(splits(1000), 16);
  EXPECT_EQ(splits(4096), 16);
  EXPECT_EQ(decode_chunk(4096), 256);
  EXPECT_EQ(splits(8192), 32);
  EXPECT_EQ(splits(16384), 64);
  EXPECT_EQ(splits(32832), 61);  // chunk 544
  for (int64_t keys = 1; keys <= (int64_t{1} << 20); keys = keys * 3 / 2 + 1)
    EXPECT_LE(splits(keys), kDecodeMaxSplits) << keys;
}

TEST(DecodeAttentionSupport, Layouts) {
  EXPECT_TRUE(decode_attention_supported(KvCacheDtype::BF16, 128));
  EXPECT_TRUE(decode_attention_supported(KvCacheDtype::Fp8, 256));
  EXPECT_FALSE(decode_attention_supported(KvCacheDtype::F32, 256));
  EXPECT_FALSE(decode_attention_supported(KvCacheDtype::BF16, 96));
}

}  // namespace
}  // namespace fp8llm::cuda
