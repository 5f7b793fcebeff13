// The batching engine on the GPU: a sequence's greedy tokens in a batch of 64 mixed requests equal
// those it gets alone (with --fp8-gemm fp32 they must; with tensor cores divergences are reported
// with their logit gap), under chunked prompts, preemption, the prefix cache and recorded decode
// steps; sampled requests are reproducible; the GPU agrees with the CPU engine.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <random>
#include <span>
#include <string>
#include <vector>

#include "backend/cuda/runtime/device.h"
#include "fp8llm/engine.h"
#include "test_util.h"

namespace fp8llm::test {
namespace {

class CudaBatching : public ::testing::Test {
 protected:
  void SetUp() override {
    if (!cuda::device_available()) GTEST_SKIP() << "no CUDA device";
  }
};

std::vector<int32_t> random_prompt(std::mt19937& rng, int length) {
  std::uniform_int_distribution<int32_t> pick(5, 1023);
  std::vector<int32_t> p(static_cast<size_t>(length));
  for (int32_t& id : p) id = pick(rng);
  return p;
}

// 64 requests: greedy ones of many lengths, a third sharing a 48-token prefix, some sampled with
// seeds (and filters, penalties and log-probabilities, which go through the host).
std::vector<GenerationRequest> mixed(int count, bool sampled, uint32_t seed) {
  std::mt19937 rng(seed);
  const std::vector<int32_t> shared = random_prompt(rng, 48);
  std::vector<GenerationRequest> out;
  for (int i = 0; i < count; ++i) {
    GenerationRequest r;
    r.prompt = random_prompt(rng, 2 + static_cast<int>(rng() % 90));
    if (i % 3 == 0) r.prompt.insert(r.prompt.begin(), shared.begin(), shared.end());
    r.params.max_tokens = 6 + static_cast<int>(rng() % 20);
    r.params.seed = 50 + static_cast<uint64_t>(i);
    if (sampled && i % 2 == 1) {
      r.params.temperature = 0.8f;
      if (i % 4 == 1) {
        r.params.top_k = 30;
        r.params.top_p = 0.9f;
      }
      if (i % 8 == 3) r.params.repetition_penalty = 1.2f;
      if (i % 8 == 7) r.params.logprobs = 3;
      if (i % 16 == 5) r.params.n = 3;
    }
    out.push_back(std::move(r));
  }
  return out;
}

std::unique_ptr<Engine> gpu(LoadOptions o) {
  o.model_dir = data_path("tiny-llama");
  o.device = Device::Cuda;
  if (o.kv_memory_gib == 0) o.kv_memory_gib = 0.5;
  return Engine::load(o);
}

// Where two token lists first differ (the shorter one's length if one starts the other).
size_t first_difference(const std::vector<int32_t>& x, const std::vector<int32_t>& y) {
  size_t at = 0;
  while (at < x.size() && at < y.size() && x[at] == y[at]) ++at;
  return at;
}

// Sequences whose tokens differ, with where the first difference is.
int differences(const std::vector<RequestOutput>& a, const std::vector<RequestOutput>& b,
                const std::string& what) {
  int differ = 0;
  for (size_t i = 0; i < a.size(); ++i) {
    for (size_t s = 0; s < a[i].outputs.size(); ++s) {
      const auto& x = a[i].outputs[s].token_ids;
      const auto& y = b.at(i).outputs.at(s).token_ids;
      if (x == y) continue;
      const size_t at = first_difference(x, y);
      std::printf("%s: request %zu sample %zu differs at token %zu of %zu\n", what.c_str(), i, s,
                  at, x.size());
      ++differ;
    }
  }
  return differ;
}

std::vector<RequestOutput> one_by_one(Engine& e, const std::vector<GenerationRequest>& requests) {
  std::vector<RequestOutput> out;
  for (const GenerationRequest& r : requests) out.push_back(e.generate({r}).at(0));
  return out;
}

TEST_F(CudaBatching, GreedyTokensInABatchOf64EqualThoseAlone) {
  const std::vector<GenerationRequest> requests = mixed(64, false, 1);
  for (const Fp8Gemm gemm : {Fp8Gemm::Fp32, Fp8Gemm::TensorCore}) {
    for (const Quantization q : {Quantization::Fp8Block, Quantization::Fp8Row}) {
      auto e = gpu({.quantization = q, .fp8_gemm = gemm});
      const std::vector<RequestOutput> alone = one_by_one(*e, requests);
      const std::vector<RequestOutput> together = e->generate(requests);
      const std::string what = std::string(to_string(q)) + " " + std::string(to_string(gemm));
      const int differ = differences(alone, together, what);
      std::printf("%s: %d of 64 sequences differ between alone and a batch of 64\n", what.c_str(),
                  differ);
      if (gemm == Fp8Gemm::Fp32) {
        EXPECT_EQ(differ, 0) << what;
      }
      EXPECT_EQ(e->stats().kv_blocks_used, 0);
    }
  }
}

// Chunked prompts, a cache small enough to preempt, the prefix cache, recorded decode steps or
// not: the same tokens as alone (fp32 sums).
TEST_F(CudaBatching, ChunksPreemptionPrefixCacheAndGraphsKeepTheTokens) {
  const std::vector<GenerationRequest> requests = mixed(40, true, 2);
  auto plain = gpu({.quantization = Quantization::Fp8Block, .fp8_gemm = Fp8Gemm::Fp32});
  const std::vector<RequestOutput> alone = one_by_one(*plain, requests);
  plain.reset();
  // bf16 KV blocks of tiny-llama: 2 layers x 2 x 16 x 128 x 2 bytes = 16 KiB; 40 of them.
  auto cramped = gpu({.quantization = Quantization::Fp8Block,
                      .fp8_gemm = Fp8Gemm::Fp32,
                      .kv_memory_gib = 40.0 * 16384 / (1ull << 30),
                      .max_batch_tokens = 24});
  EXPECT_EQ(differences(alone, cramped->generate(requests), "cramped"), 0);
  const EngineStats s = cramped->stats();
  std::printf("cramped: %lld steps, %lld preemptions, prefix hits %lld of %lld tokens\n",
              static_cast<long long>(s.steps), static_cast<long long>(s.preemptions),
              static_cast<long long>(s.prefix_hit_tokens),
              static_cast<long long>(s.prefix_query_tokens));
  EXPECT_GT(s.preemptions, 0);
  EXPECT_GT(s.prefix_hit_tokens, 0);
  EXPECT_EQ(s.kv_blocks_used, 0);
  cramped.reset();
  auto no_graphs = gpu(
      {.quantization = Quantization::Fp8Block, .fp8_gemm = Fp8Gemm::Fp32, .cuda_graphs = false});
  EXPECT_EQ(differences(alone, no_graphs->generate(requests), "no graphs"), 0);
}

// The same seeded requests twice give the same tokens. With fp32 sums always, whatever the
// second run takes from the prefix cache; with tensor cores when the steps are the same (no
// prefix cache), since a cached prefix changes the GEMMs' shapes and so how they sum, as in
// other engines.
TEST_F(CudaBatching, SampledRequestsAreReproducible) {
  const std::vector<GenerationRequest> requests = mixed(48, true, 3);
  auto exact = gpu({.quantization = Quantization::Fp8Row, .fp8_gemm = Fp8Gemm::Fp32});
  EXPECT_EQ(differences(exact->generate(requests), exact->generate(requests), "fp32 sampled twice"),
            0);
  EXPECT_GT(exact->stats().prefix_hit_tokens, 0);
  exact.reset();
  auto e = gpu({.quantization = Quantization::Fp8Row, .prefix_caching = false});
  const std::vector<RequestOutput> a = e->generate(requests);
  const std::vector<RequestOutput> b = e->generate(requests);
  EXPECT_EQ(differences(a, b, "tensor cores sampled twice"), 0);
  for (size_t i = 0; i < requests.size(); ++i) {
    ASSERT_EQ(a[i].outputs.size(), static_cast<size_t>(requests[i].params.n));
    for (const CompletionOutput& c : a[i].outputs) {
      if (requests[i].params.logprobs > 0) {
        ASSERT_EQ(c.logprobs.size(), c.token_ids.size());
        for (const TokenLogprob& t : c.logprobs) EXPECT_EQ(t.top.size(), 3u);
      }
    }
  }
}

// The GPU engine (fp32 sums, fp32 KV) against the CPU engine on the same greedy batch. These
// random-weight models have near ties and amplify fp32 rounding differences, so sequences may
// part; where one does, both engines have seen the same tokens, and the two candidates must be
// within the logits bound of the CPU's row (test_cuda_engine.cpp's kVsCpuBound, as a share of
// the row's L2 norm): a larger gap is a real disagreement.
TEST_F(CudaBatching, AgreesWithTheCpuEngine) {
  constexpr double kVsCpuBound = 3e-2;
  const std::vector<GenerationRequest> requests = mixed(32, false, 4);
  auto g = gpu({.quantization = Quantization::Fp8Block,
                .fp8_gemm = Fp8Gemm::Fp32,
                .kv_cache_dtype = KvCacheDtype::F32});
  auto c =
      Engine::load({.model_dir = data_path("tiny-llama"), .quantization = Quantization::Fp8Block});
  const std::vector<RequestOutput> on_gpu = g->generate(requests);
  const std::vector<RequestOutput> on_cpu = c->generate(requests);
  const int differ = differences(on_gpu, on_cpu, "gpu vs cpu");
  std::printf("gpu vs cpu: %d of 32 greedy sequences differ\n", differ);
  EXPECT_LE(differ, 16);
  const auto vocab = static_cast<size_t>(c->vocab_size());
  for (size_t i = 0; i < requests.size(); ++i) {
    const auto& x = on_gpu[i].outputs.at(0).token_ids;
    const auto& y = on_cpu[i].outputs.at(0).token_ids;
    const size_t at = first_difference(x, y);
    if (at == x.size() || at == y.size()) continue;
    std::vector<int32_t> seen = requests[i].prompt;
    seen.insert(seen.end(), y.begin(), y.begin() + static_cast<std::ptrdiff_t>(at));
    const std::vector<float> all = c->logits(seen);
    const std::span<const float> row(all.data() + all.size() - vocab, vocab);
    double norm = 0;
    for (const float v : row) norm += static_cast<double>(v) * v;
    const double gap = row[static_cast<size_t>(y[at])] - row[static_cast<size_t>(x[at])];
    std::printf("request %zu: the CPU's token leads the GPU's by %.4f (%.2e of the row)\n", i, gap,
                gap / std::sqrt(norm));
    EXPECT_LE(gap, kVsCpuBound * std::sqrt(norm)) << "request " << i;
  }
}

// Prompt log-probabilities on the device's path (rows of logits for every prompt position, in
// chunks cut to the rows the workspace holds): one for each prompt token after the first, the
// prompt's own ids, close to the CPU engine's (printed: the largest difference).
TEST_F(CudaBatching, PromptLogprobsAgreeWithTheCpuEngine) {
  std::vector<GenerationRequest> requests = mixed(12, false, 9);
  for (size_t i = 0; i < requests.size(); i += 3) requests[i].params.prompt_logprobs = 2;
  auto g = gpu({.quantization = Quantization::Fp8Block,
                .fp8_gemm = Fp8Gemm::Fp32,
                .kv_cache_dtype = KvCacheDtype::F32,
                .max_seqs = 8});
  auto c =
      Engine::load({.model_dir = data_path("tiny-llama"), .quantization = Quantization::Fp8Block});
  const std::vector<RequestOutput> on_gpu = g->generate(requests);
  const std::vector<RequestOutput> on_cpu = c->generate(requests);
  double largest = 0, total = 0;
  size_t count = 0;
  for (size_t i = 0; i < requests.size(); ++i) {
    const std::vector<TokenLogprob>& x = on_gpu[i].prompt_logprobs;
    if (requests[i].params.prompt_logprobs < 0) {
      EXPECT_TRUE(x.empty());
      continue;
    }
    ASSERT_EQ(x.size(), requests[i].prompt.size() - 1) << "request " << i;
    ASSERT_EQ(on_cpu[i].prompt_logprobs.size(), x.size());
    for (size_t p = 0; p < x.size(); ++p) {
      EXPECT_EQ(x[p].id, requests[i].prompt[p + 1]);
      EXPECT_EQ(x[p].top.size(), 2u);
      ASSERT_TRUE(std::isfinite(x[p].logprob) && x[p].logprob <= 0) << x[p].logprob;
      const double d = std::fabs(x[p].logprob - on_cpu[i].prompt_logprobs[p].logprob);
      largest = std::max(largest, d);
      total += d;
      ++count;
    }
  }
  std::printf("prompt logprobs, gpu vs cpu: mean |difference| %.2e, largest %.2e over %zu\n",
              total / static_cast<double>(count), largest, count);
  EXPECT_LT(total / static_cast<double>(count), 5e-2);
  EXPECT_EQ(g->stats().kv_blocks_used, 0);
}

}  // namespace
}  // namespace fp8llm::test
