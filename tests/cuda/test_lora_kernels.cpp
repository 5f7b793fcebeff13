// The LoRA shrink and expand kernels (kernels/lora.h) against the definition computed in double
// from the same bf16 factors, for batches mixing three adapters and tokens without one, input
// widths and ranks that are and are not multiples of 16, one to three projections, and batches
// that take tiles of 8 and of 32 tokens; and a token's result is the same bit for bit alone as in
// the batch (the kernels' order of addition depends on nothing else). Skipped without a GPU.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <random>
#include <string>
#include <vector>

#include "backend/cuda/kernels/lora.h"
#include "backend/cuda/runtime/device.h"
#include "backend/cuda/runtime/device_buffer.h"
#include "core/dtype.h"

namespace fp8llm::cuda {
namespace {

struct Case {
  int64_t in, tokens, max_rank;
};

class CudaLoraKernels : public ::testing::TestWithParam<Case> {
 protected:
  void SetUp() override {
    if (!device_available()) GTEST_SKIP() << "no CUDA device";
  }
};

struct Problem {
  int64_t in = 0, max_rank = 16, slots = 3;
  std::vector<int64_t> outs;
  std::vector<uint16_t> factors;   // per slot: A_g [max_rank, in] then B_g [out_g, max_rank]
  std::vector<size_t> a_at, b_at;  // offsets in a slot's region
  size_t slot_elements = 0;
  std::vector<float> scales;

  Problem(int64_t in_, int64_t max_rank_, std::vector<int64_t> outs_, uint32_t seed)
      : in(in_), max_rank(max_rank_), outs(std::move(outs_)) {
    for (int64_t out : outs) {
      a_at.push_back(slot_elements);
      slot_elements += static_cast<size_t>((max_rank * in + 7) / 8 * 8);
      b_at.push_back(slot_elements);
      slot_elements += static_cast<size_t>((out * max_rank + 7) / 8 * 8);
    }
    std::mt19937 rng(seed);
    std::normal_distribution<float> n(0.0f, 0.1f);
    factors.resize(slot_elements * static_cast<size_t>(slots));
    for (uint16_t& f : factors) f = f32_to_bf16(n(rng));
    scales = {0.5f, 2.0f, 1.25f};
  }

  // y[t] after the kernels, given the batch's x, slots and starting y (per projection). With
  // `ld`, the projections' outputs are the columns of one [tokens, ld] array, side by side from
  // column 0, the columns past them holding NaN (which must stay untouched).
  std::vector<std::vector<float>> run(const std::vector<float>& x,
                                      const std::vector<int32_t>& token_lora,
                                      const std::vector<std::vector<float>>& y0,
                                      int64_t ld = 0) const {
    const auto tokens = static_cast<int64_t>(token_lora.size());
    std::vector<int32_t> rows(token_lora.size()), row_slots(token_lora.size());
    group_lora_rows(token_lora.data(), tokens, rows.data(), row_slots.data());
    const DeviceBuffer xd = to_device(x), fd = to_device(factors), sd = to_device(scales),
                       rd = to_device(rows), rsd = to_device(row_slots);
    const auto groups = static_cast<int>(outs.size());
    DeviceBuffer scratch(static_cast<size_t>(lora_scratch_floats(tokens, in, groups, max_rank)) *
                         sizeof(float));
    DeviceBuffer tile_counts(static_cast<size_t>(lora_tile_counts(tokens)) * sizeof(int32_t));
    tile_counts.fill_zero();
    std::vector<DeviceBuffer> yd;
    LoraLaunch l{.x = xd.as<float>(),
                 .tokens = tokens,
                 .in = in,
                 .max_rank = max_rank,
                 .groups = groups,
                 .slot_stride = static_cast<int64_t>(slot_elements),
                 .scales = sd.as<float>(),
                 .rows = rd.as<int32_t>(),
                 .row_slots = rsd.as<int32_t>(),
                 .scratch = scratch.as<float>(),
                 .tile_counts = tile_counts.as<int32_t>()};
    const auto* base = fd.as<__nv_bfloat16>();
    std::vector<float> joined(static_cast<size_t>(tokens * ld), NAN);
    int64_t col = 0;
    for (int g = 0; g < groups; ++g) {
      const int64_t out = outs[static_cast<size_t>(g)];
      for (int64_t t = 0; t < tokens && ld > 0; ++t)
        std::copy_n(&y0[static_cast<size_t>(g)][static_cast<size_t>(t * out)], out,
                    &joined[static_cast<size_t>(t * ld + col)]);
      col += out;
    }
    if (ld > 0) yd.push_back(to_device(joined));
    col = 0;
    for (int g = 0; g < groups; ++g) {
      if (ld == 0) yd.push_back(to_device(y0[static_cast<size_t>(g)]));
      l.proj[g] = {.a = base + a_at[static_cast<size_t>(g)],
                   .b = base + b_at[static_cast<size_t>(g)],
                   .y = yd.back().as<float>() + (ld > 0 ? col : 0),
                   .out = outs[static_cast<size_t>(g)],
                   .ld = ld};
      col += outs[static_cast<size_t>(g)];
    }
    launch_lora_shrink(l, nullptr);
    launch_lora_expand(l, nullptr);
    // The shrink leaves its tiles' counters at zero for the next launch.
    const std::vector<int32_t> counts =
        to_host<int32_t>(tile_counts, static_cast<size_t>(lora_tile_counts(tokens)));
    EXPECT_TRUE(std::all_of(counts.begin(), counts.end(), [](int32_t c) { return c == 0; }));
    std::vector<std::vector<float>> y;
    if (ld == 0) {
      for (int g = 0; g < groups; ++g)
        y.push_back(to_host<float>(yd[static_cast<size_t>(g)], y0[static_cast<size_t>(g)].size()));
      return y;
    }
    const std::vector<float> all = to_host<float>(yd[0], joined.size());
    col = 0;
    for (int g = 0; g < groups; ++g) {
      const int64_t out = outs[static_cast<size_t>(g)];
      y.emplace_back(static_cast<size_t>(tokens * out));
      for (int64_t t = 0; t < tokens; ++t)
        std::copy_n(&all[static_cast<size_t>(t * ld + col)], out,
                    &y.back()[static_cast<size_t>(t * out)]);
      col += out;
    }
    for (int64_t t = 0; t < tokens; ++t)
      for (int64_t c = col; c < ld; ++c)
        EXPECT_TRUE(std::isnan(all[static_cast<size_t>(t * ld + c)])) << "column " << c;
    return y;
  }

  // scale * (x[t] · Aᵀ) for projection g of `slot`, in double.
  std::vector<double> shrunk(const std::vector<float>& x, int64_t t, int32_t slot, size_t g) const {
    const size_t region = static_cast<size_t>(slot) * slot_elements;
    std::vector<double> u(static_cast<size_t>(max_rank));
    for (int64_t r = 0; r < max_rank; ++r)
      for (int64_t k = 0; k < in; ++k)
        u[static_cast<size_t>(r)] +=
            double(x[static_cast<size_t>(t * in + k)]) *
            bf16_to_f32(factors[region + a_at[g] + static_cast<size_t>(r * in + k)]);
    for (double& v : u) v *= scales[static_cast<size_t>(slot)];
    return u;
  }
  double expanded(const std::vector<double>& u, int32_t slot, size_t g, int64_t n) const {
    const size_t region = static_cast<size_t>(slot) * slot_elements;
    double d = 0;
    for (int64_t r = 0; r < max_rank; ++r)
      d += u[static_cast<size_t>(r)] *
           bf16_to_f32(factors[region + b_at[g] + static_cast<size_t>(n * max_rank + r)]);
    return d;
  }
};

TEST_P(CudaLoraKernels, MatchTheDefinitionAndGiveATokenTheSameAloneAsInABatch) {
  const int64_t in = GetParam().in, tokens = GetParam().tokens;
  for (const std::vector<int64_t>& outs :
       {std::vector<int64_t>{72}, std::vector<int64_t>{96, 40}, std::vector<int64_t>{64, 24, 24}}) {
    const Problem p(in, GetParam().max_rank, outs, static_cast<uint32_t>(in + outs.size()));
    std::mt19937 rng(5);
    std::normal_distribution<float> n(0.0f, 1.0f);
    std::vector<float> x(static_cast<size_t>(tokens * in));
    for (float& v : x) v = n(rng);
    std::vector<int32_t> token_lora(static_cast<size_t>(tokens));
    for (int32_t& s : token_lora) s = static_cast<int32_t>(rng() % 4) - 1;  // -1: none
    std::vector<std::vector<float>> y0;
    for (int64_t out : outs) {
      y0.emplace_back(static_cast<size_t>(tokens * out));
      for (float& v : y0.back()) v = n(rng);
    }
    const std::vector<std::vector<float>> y = p.run(x, token_lora, y0);
    double worst = 0;
    for (size_t g = 0; g < outs.size(); ++g) {
      for (int64_t t = 0; t < tokens; ++t) {
        const int32_t slot = token_lora[static_cast<size_t>(t)];
        const std::vector<double> u = slot < 0 ? std::vector<double>() : p.shrunk(x, t, slot, g);
        for (int64_t c = 0; c < outs[g]; ++c) {
          const size_t i = static_cast<size_t>(t * outs[g] + c);
          if (slot < 0) {
            ASSERT_EQ(y[g][i], y0[g][i]) << "a token without an adapter changed";
            continue;
          }
          const double want = y0[g][i] + p.expanded(u, slot, g, c);
          worst = std::max(worst, std::fabs(y[g][i] - want) / (1.0 + std::fabs(want)));
        }
      }
    }
    EXPECT_LT(worst, 1e-4) << "in " << in << ", " << outs.size() << " projections";
    // Tokens alone, from the first tile, a later one, and the last.
    for (const int64_t t : {int64_t{3}, int64_t{20}, tokens - 1}) {
      if (t >= tokens) continue;
      const std::vector<float> xt(x.begin() + t * in, x.begin() + (t + 1) * in);
      std::vector<std::vector<float>> yt0;
      for (size_t g = 0; g < outs.size(); ++g)
        yt0.emplace_back(y0[g].begin() + t * outs[g], y0[g].begin() + (t + 1) * outs[g]);
      const std::vector<std::vector<float>> alone =
          p.run(xt, {token_lora[static_cast<size_t>(t)]}, yt0);
      for (size_t g = 0; g < outs.size(); ++g)
        EXPECT_TRUE(std::equal(alone[g].begin(), alone[g].end(), y[g].begin() + t * outs[g]))
            << "token " << t << " alone differs from the batch (in " << in << ")";
    }
  }
}

// Host code: runs without a GPU.
// The expand adding into the columns of one output a row stride apart (q, k and v where their
// joined GEMM wrote them) gives each projection the bits it gets in an array of its own.
TEST_P(CudaLoraKernels, ARowStrideGivesTheSameBitsAsOutputsApart) {
  const int64_t in = GetParam().in, tokens = GetParam().tokens;
  const std::vector<int64_t> outs{64, 24, 40};
  const Problem p(in, GetParam().max_rank, outs, static_cast<uint32_t>(in + 7));
  std::mt19937 rng(6);
  std::normal_distribution<float> n(0.0f, 1.0f);
  std::vector<float> x(static_cast<size_t>(tokens * in));
  for (float& v : x) v = n(rng);
  std::vector<int32_t> token_lora(static_cast<size_t>(tokens));
  for (int32_t& s : token_lora) s = static_cast<int32_t>(rng() % 4) - 1;
  std::vector<std::vector<float>> y0;
  for (int64_t out : outs) {
    y0.emplace_back(static_cast<size_t>(tokens * out));
    for (float& v : y0.back()) v = n(rng);
  }
  const auto apart = p.run(x, token_lora, y0);
  const auto strided = p.run(x, token_lora, y0, 64 + 24 + 40 + 4);
  for (size_t g = 0; g < outs.size(); ++g) EXPECT_EQ(strided[g], apart[g]) << "projection " << g;
}

TEST(GroupLoraRows, SlotsInOrderEachInBatchOrderTokensWithoutOneLast) {
  const std::vector<int32_t> token_lora = {2, -1, 0, 2, 0, -1, 1, 0};
  std::vector<int32_t> rows(token_lora.size()), row_slots(token_lora.size());
  group_lora_rows(token_lora.data(), static_cast<int64_t>(token_lora.size()), rows.data(),
                  row_slots.data());
  EXPECT_EQ(rows, (std::vector<int32_t>{2, 4, 7, 6, 0, 3, 1, 5}));
  EXPECT_EQ(row_slots, (std::vector<int32_t>{0, 0, 0, 1, 2, 2, -1, -1}));
}

std::string case_name(const ::testing::TestParamInfo<Case>& param) {
  const Case& c = param.param;
  return "in" + std::to_string(c.in) + "_tokens" + std::to_string(c.tokens) + "_rank" +
         std::to_string(c.max_rank);
}

// Widths: 256, one piece; 1000, several, not a multiple of 16 (masked steps); 1001, odd;
// 14336, pieces of 1024. 150 tokens take tiles of 32, their tokens alone tiles of 8. Ranks 12 and
// 24 are not multiples of 16 (masked steps of the expand). Rank 80 over three projections is
// more rows than a cluster's shared memory holds (the last block adds the pieces).
INSTANTIATE_TEST_SUITE_P(Widths, CudaLoraKernels,
                         ::testing::Values(Case{256, 37, 16}, Case{1000, 37, 16},
                                           Case{1001, 37, 12}, Case{14336, 37, 16},
                                           Case{4096, 150, 16}, Case{1000, 150, 24},
                                           Case{4096, 5, 64}, Case{2048, 20, 80}),
                         case_name);

}  // namespace
}  // namespace fp8llm::cuda
