// LoRA adapters added by the tensor-core GEMV in its own launch (Fp8GemvLora, kernels/fp8_gemv.h):
// against the base kernel's outputs plus the adapter's definition in double, from the same bf16
// factors, for one to three projections, 1 to 16 tokens mixing three adapters and tokens without
// one, inputs of one and of several pieces, ranks of 12, 16 and 64, both scalings. A token's
// outputs are the same bit for bit alone as in the batch; a token without an adapter gets the base
// outputs bit for bit; every launch leaves its counters at zero. Skipped without a GPU.
#include <gtest/gtest.h>

#include <cmath>
#include <random>
#include <string>
#include <vector>

#include "backend/cuda/kernels/fp8_gemv.h"
#include "backend/cuda/runtime/cuda_check.h"
#include "backend/cuda/runtime/device.h"
#include "backend/cuda/runtime/device_buffer.h"
#include "core/dtype.h"
#include "fp8_operands.h"

namespace fp8llm::cuda {
namespace {

class CudaGemvLora : public ::testing::Test {
 protected:
  void SetUp() override {
    if (!device_available()) GTEST_SKIP() << "no CUDA device";
  }
};

constexpr int kSlots = 3;

// Every slot's factors in one region each, A [rank, k] then B [n, rank] per projection, as
// CudaLora lays them out.
struct Factors {
  int64_t k = 0, rank = 0;
  std::vector<int64_t> ns;
  std::vector<size_t> a_at, b_at;
  size_t slot_elements = 0;
  std::vector<uint16_t> host;
  std::vector<float> scales = {0.5f, 2.0f, 1.25f};
  DeviceBuffer device, device_scales;

  Factors(int64_t k_, int64_t rank_, std::vector<int64_t> ns_, uint32_t seed)
      : k(k_), rank(rank_), ns(std::move(ns_)) {
    for (int64_t n : ns) {
      a_at.push_back(slot_elements);
      slot_elements += static_cast<size_t>((rank * k + 7) / 8 * 8);
      b_at.push_back(slot_elements);
      slot_elements += static_cast<size_t>((n * rank + 7) / 8 * 8);
    }
    slot_elements = (slot_elements + 127) / 128 * 128;
    std::mt19937 rng(seed);
    std::normal_distribution<float> normal(0.0f, 0.05f);
    host.resize(slot_elements * kSlots);
    for (uint16_t& f : host) f = f32_to_bf16(normal(rng));
    device = to_device(host);
    device_scales = to_device(scales);
  }
  double a(int slot, size_t g, int64_t r, int64_t c) const {
    return bf16_to_f32(
        host[static_cast<size_t>(slot) * slot_elements + a_at[g] + static_cast<size_t>(r * k + c)]);
  }
  double b(int slot, size_t g, int64_t n, int64_t r) const {
    return bf16_to_f32(host[static_cast<size_t>(slot) * slot_elements + b_at[g] +
                            static_cast<size_t>(n * rank + r)]);
  }
  // scale * ((x[t] · Aᵀ) · Bᵀ) of projection g, in double.
  std::vector<double> delta(const std::vector<float>& x, int64_t t, int slot, size_t g) const {
    std::vector<double> u(static_cast<size_t>(rank));
    for (int64_t r = 0; r < rank; ++r)
      for (int64_t c = 0; c < k; ++c) u[static_cast<size_t>(r)] += x[t * k + c] * a(slot, g, r, c);
    std::vector<double> d(static_cast<size_t>(ns[g]));
    for (int64_t n = 0; n < ns[g]; ++n) {
      for (int64_t r = 0; r < rank; ++r) d[static_cast<size_t>(n)] += u[r] * b(slot, g, n, r);
      d[static_cast<size_t>(n)] *= scales[static_cast<size_t>(slot)];
    }
    return d;
  }
};

struct Case {
  int64_t k, rank;
  std::vector<int64_t> ns;
};

TEST_F(CudaGemvLora, AddsEachTokensAdapterAsDefinedAndAloneAsInABatch) {
  // One piece with three projections; two pieces; seven pieces, the last one short (k = 14,208).
  const Case cases[] = {{384, 12, {200, 128, 40}}, {4096, 16, {256, 72}}, {14208, 64, {96}}};
  for (const Fp8Scheme scheme : {Fp8Scheme::Row, Fp8Scheme::Block}) {
    for (const Case& c : cases) {
      std::vector<Weight> ws;
      for (size_t i = 0; i < c.ns.size(); ++i)
        ws.push_back(make_weight(
            scheme, random_bf16(c.ns[i], c.k, 70 + static_cast<uint32_t>(i), 0.02f), c.ns[i], c.k));
      const Factors f(c.k, c.rank, c.ns, static_cast<uint32_t>(c.k));
      const int groups = static_cast<int>(c.ns.size());
      DeviceBuffer u(static_cast<size_t>(
                         fp8_gemv_lora_scratch_floats(groups, kFp8GemvTcMaxRows, c.k, c.rank)) *
                     sizeof(float));
      DeviceBuffer done(2 * sizeof(int32_t));
      done.fill_zero();
      for (const int64_t m : {1, 5, 16}) {
        SCOPED_TRACE(std::string(name_of(scheme)) + " K=" + std::to_string(c.k) +
                     " m=" + std::to_string(m));
        ASSERT_TRUE(fp8_gemv_tc_supports(m, c.k));
        std::mt19937 rng(7 + static_cast<uint32_t>(m));
        std::normal_distribution<float> normal(0.0f, 1.0f);
        std::vector<float> x(static_cast<size_t>(m * c.k));
        for (float& v : x) v = normal(rng);
        std::vector<int32_t> slots(static_cast<size_t>(m));
        for (int32_t& s : slots) s = static_cast<int32_t>(rng() % (kSlots + 1)) - 1;
        slots[0] = 1;
        // Outputs of m tokens x[first..first + m), with or without the adapters.
        const auto launch = [&](int64_t first, int64_t rows, bool lora) {
          const std::vector<float> xs(x.begin() + first * c.k, x.begin() + (first + rows) * c.k);
          const std::vector<int32_t> ss(slots.begin() + first, slots.begin() + first + rows);
          const Acts acts = make_acts(scheme, xs, rows, c.k);
          const DeviceBuffer xd = to_device(xs), sd = to_device(ss);
          Fp8GemvGroupArgs g;
          g.scheme = scheme;
          g.xq = acts.q.as<uint8_t>();
          g.xs = acts.s.as<float>();
          g.xs_ld = rows;
          g.m = rows;
          g.k = c.k;
          g.count = groups;
          g.tensor_cores = true;
          std::vector<DeviceBuffer> ys;
          for (int i = 0; i < groups; ++i) {
            ys.push_back(poisoned_output_f32(rows, c.ns[i]));
            const Fp8DeviceWeight v = ws[i].view();
            g.seg[i] = {v.q, v.scales, v.scale_ld, v.n, v.bias, ys.back().as<float>()};
          }
          if (lora) {
            g.lora = {.x = xd.as<float>(),
                      .token_slot = sd.as<int32_t>(),
                      .slot_scales = f.device_scales.as<float>(),
                      .slot_stride = static_cast<int64_t>(f.slot_elements),
                      .max_rank = c.rank,
                      .u = u.as<float>(),
                      .done = done.as<int32_t>()};
            for (int i = 0; i < groups; ++i) {
              g.lora.a[i] = f.device.as<__nv_bfloat16>() + f.a_at[i];
              g.lora.b[i] = f.device.as<__nv_bfloat16>() + f.b_at[i];
            }
          }
          launch_fp8_gemv_group(g, nullptr);
          CUDA_CHECK(cudaDeviceSynchronize());
          EXPECT_EQ(to_host<int32_t>(done, 2), (std::vector<int32_t>{0, 0}));
          std::vector<std::vector<float>> out;
          for (int i = 0; i < groups; ++i)
            out.push_back(to_host<float>(ys[i], static_cast<size_t>(rows * c.ns[i])));
          return out;
        };
        const auto base = launch(0, m, false);
        const auto with = launch(0, m, true);
        double worst = 0;
        for (int64_t t = 0; t < m; ++t) {
          for (size_t g = 0; g < c.ns.size(); ++g) {
            const auto n = static_cast<size_t>(c.ns[g]);
            const size_t row = static_cast<size_t>(t) * n;
            if (slots[t] < 0) {
              EXPECT_TRUE(std::equal(with[g].begin() + row, with[g].begin() + row + n,
                                     base[g].begin() + row))
                  << "token " << t << " without an adapter changed";
              continue;
            }
            const std::vector<double> d = f.delta(x, t, slots[t], g);
            for (size_t j = 0; j < n; ++j) {
              const double want = base[g][row + j] + d[j];
              worst = std::max(worst, std::fabs(with[g][row + j] - want) / (1.0 + std::fabs(want)));
            }
          }
        }
        EXPECT_LT(worst, 1e-5);
        for (int64_t t = 0; t < m; ++t) {
          const auto alone = launch(t, 1, true);
          for (size_t g = 0; g < c.ns.size(); ++g) {
            const auto n = static_cast<size_t>(c.ns[g]);
            EXPECT_TRUE(std::equal(alone[g].begin(), alone[g].end(),
                                   with[g].begin() + static_cast<size_t>(t) * n))
                << "token " << t << " alone differs from the batch, projection " << g;
          }
        }
      }
    }
  }
}

// A rank above what the kernel stages, or no counters: refused before launching.
TEST_F(CudaGemvLora, RefusesArgumentsItCannotTake) {
  const Weight w = make_weight(Fp8Scheme::Block, random_bf16(64, 256, 3, 0.02f), 64, 256);
  const std::vector<float> x(256, 0.5f);
  const Acts acts = make_acts(Fp8Scheme::Block, x, 1, 256);
  DeviceBuffer y(64 * sizeof(float)), xd = to_device(x), u(1 << 16), done(8);
  const std::vector<int32_t> slot = {0};
  const DeviceBuffer sd = to_device(slot);
  Fp8GemvGroupArgs g;
  g.scheme = Fp8Scheme::Block;
  g.xq = acts.q.as<uint8_t>();
  g.xs = acts.s.as<float>();
  g.k = 256;
  g.count = 1;
  g.tensor_cores = true;
  const Fp8DeviceWeight v = w.view();
  g.seg[0] = {v.q, v.scales, v.scale_ld, v.n, v.bias, y.as<float>()};
  g.lora = {.x = xd.as<float>(),
            .token_slot = sd.as<int32_t>(),
            .max_rank = kFp8GemvLoraMaxRank + 1,
            .u = u.as<float>(),
            .done = done.as<int32_t>()};
  EXPECT_THROW(launch_fp8_gemv_group(g, nullptr), std::invalid_argument);
  g.lora.max_rank = 16;
  g.lora.done = nullptr;
  EXPECT_THROW(launch_fp8_gemv_group(g, nullptr), std::invalid_argument);
  g.lora.done = done.as<int32_t>();
  g.tensor_cores = false;
  EXPECT_THROW(launch_fp8_gemv_group(g, nullptr), std::invalid_argument);
}

}  // namespace
}  // namespace fp8llm::cuda
