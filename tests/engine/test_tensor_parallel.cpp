// Tensor parallelism on the CPU (ranks as threads, in-process collectives): N = 2 and 4 ranks
// against one, for every fixture architecture whose shapes divide: the logits of the reference
// prompts, greedy generation through the batching engine, the state dict (the shards put back
// together are the one-rank weights bit for bit), live weight updates and sleep; and the errors of
// configurations that do not divide.
#include <fmt/format.h>
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <string>
#include <vector>

#include "fp8llm/engine.h"
#include "reference.h"
#include "state_dict_expect.h"
#include "test_util.h"
#include "weight_update_util.h"

namespace fp8llm::test {
namespace {

struct Case {
  std::string model;
  Quantization quantization;
};

std::unique_ptr<Engine> load(const Case& c, int ranks) {
  return Engine::load(
      {.model_dir = data_path(c.model), .quantization = c.quantization, .tensor_parallel = ranks});
}

std::string name_of(const Case& c, int ranks) {
  return fmt::format("{} {} x{}", c.model, to_string(c.quantization), ranks);
}

Reference reference_of(const Case& c) {
  return Reference::load(c.model == "tiny-llama-fp8-block" ? "tiny-llama" : c.model);
}

// Every architecture of tests/data whose shapes divide by 2 and 4 (tiny-qwen2's 3 heads do not:
// ConfigurationsThatDoNotDivide), in each mode.
const std::vector<Case>& cases() {
  static const std::vector<Case> all = {
      {"tiny-llama", Quantization::None},           {"tiny-llama", Quantization::Fp8Row},
      {"tiny-llama", Quantization::Fp8Block},       {"tiny-qwen3", Quantization::None},
      {"tiny-qwen3", Quantization::Fp8Row},         {"tiny-qwen3", Quantization::Fp8Block},
      {"tiny-llama-fp8-block", Quantization::Auto},
  };
  return all;
}

// The ranks add the partial sums of o_proj and down_proj after each has summed its own columns,
// where one rank sums all columns in one pass: the same products, added in another order. With
// unquantized weights that is all (fp32 rounding, about 1e-6). With FP8 every projection quantizes
// its input, and a last-bit difference that moves a value across an FP8 rounding step spreads
// through the rest of the prompt (docs/FP8.md): these random models amplify it to 1e-3..2e-2, as
// between the GPU and the CPU, while a wrong scale or a wrong shard lands 7e-2 or more away.
TEST(TensorParallel, LogitsOfEveryPromptAgainstOneRank) {
  for (const Case& c : cases()) {
    const Reference ref = reference_of(c);
    auto one = load(c, 1);
    std::vector<std::vector<float>> want;
    for (const auto& prompt : ref.prompts) want.push_back(one->logits(prompt));
    for (const int ranks : {2, 4}) {
      auto split = load(c, ranks);
      double worst = 0;
      for (size_t p = 0; p < ref.prompts.size(); ++p) {
        const std::vector<float> got = split->logits(ref.prompts[p]);
        ASSERT_EQ(got.size(), want[p].size());
        const double err = rel_l2(got, want[p]);
        worst = std::max(worst, err);
        // The first prompt has two tokens: too few for a flipped code to matter.
        if (p == 0) {
          EXPECT_LT(err, 1e-4) << name_of(c, ranks) << " prompt 0";
        }
      }
      std::printf("%s: largest relative L2 from one rank %.3g over %zu prompts\n",
                  name_of(c, ranks).c_str(), worst, ref.prompts.size());
      EXPECT_LT(worst, c.quantization == Quantization::None ? 5e-6 : 4e-2) << name_of(c, ranks);
    }
  }
}

// Greedy continuations of every reference prompt, all at once through the batching engine. With
// unquantized weights they are the same token for token. With FP8 a continuation may take the
// other branch where one rank's two best logits are closer than the two engines' logits differ
// (a near tie); anywhere else a different token is a bug.
TEST(TensorParallel, GreedyGenerationThroughTheBatchingEngine) {
  for (const Case& c : cases()) {
    const Reference ref = reference_of(c);
    std::vector<GenerationRequest> requests;
    for (const auto& prompt : ref.prompts) {
      GenerationRequest r;
      r.prompt = prompt;
      r.params.max_tokens = 24;
      r.params.ignore_eos = true;
      requests.push_back(std::move(r));
    }
    auto one = load(c, 1);
    const std::vector<RequestOutput> want = one->generate(requests);
    for (const int ranks : {2, 4}) {
      auto split = load(c, ranks);
      const std::vector<RequestOutput> got = split->generate(requests);
      ASSERT_EQ(got.size(), want.size());
      size_t same = 0;
      for (size_t i = 0; i < got.size(); ++i) {
        const std::vector<int32_t>& a = want[i].outputs.at(0).token_ids;
        const std::vector<int32_t>& b = got[i].outputs.at(0).token_ids;
        ASSERT_EQ(a.size(), b.size());
        const auto first = std::mismatch(a.begin(), a.end(), b.begin()).first - a.begin();
        if (first == static_cast<ptrdiff_t>(a.size())) {
          ++same;
          continue;
        }
        EXPECT_NE(c.quantization, Quantization::None) << name_of(c, ranks) << " prompt " << i;
        // The logits both engines chose from.
        std::vector<int32_t> context = requests[i].prompt;
        context.insert(context.end(), a.begin(), a.begin() + first);
        const std::vector<float> x = one->logits(context), y = split->logits(context);
        const int64_t vocab = one->vocab_size();
        const float* lx = x.data() + x.size() - vocab;
        const float* ly = y.data() + y.size() - vocab;
        float gap = lx[a[first]] - lx[b[first]], moved = 0;
        for (int64_t v = 0; v < vocab; ++v) moved = std::max(moved, std::abs(lx[v] - ly[v]));
        std::printf(
            "%s prompt %zu: token %td differs (%d, %d): one rank's logits %.4g apart, "
            "the engines' up to %.4g\n",
            name_of(c, ranks).c_str(), i, first, a[first], b[first], gap, moved);
        EXPECT_LT(gap, 2 * moved) << name_of(c, ranks) << " prompt " << i << " is no near tie";
      }
      std::printf("%s: %zu of %zu greedy continuations equal\n", name_of(c, ranks).c_str(), same,
                  got.size());
    }
  }
}

TEST(TensorParallel, StateDictIsTheOneRankWeightsBitForBit) {
  for (const Case& c : cases()) {
    auto one = load(c, 1);
    for (const int ranks : {2, 4}) {
      auto split = load(c, ranks);
      const std::vector<StateDictEntry> entries = one->state_dict();
      ASSERT_EQ(split->state_dict().size(), entries.size()) << name_of(c, ranks);
      for (const StateDictEntry& e : entries) {
        const StateDictTensor a = one->state_dict_tensor(e.name);
        const StateDictTensor b = split->state_dict_tensor(e.name);
        ASSERT_EQ(a.bytes, b.bytes) << name_of(c, ranks) << " " << e.name;
      }
      // Replicated tensors (norms, the KV heads of tiny-qwen3) are held once per rank.
      EXPECT_GE(split->load_report().resident_bytes, one->load_report().resident_bytes);
    }
  }
}

// Live weight updates give every rank its rectangle of the new values, quantized as a load
// quantizes them: N ranks updated hold what one rank updated holds, bit for bit. Sleep and wake_up
// make every rank's KV cache again, and the logits are what they were.
TEST(TensorParallel, WeightUpdatesAndSleep) {
  const TensorMap changed = modified(tensors_of_dir(data_path("tiny-llama")));
  std::vector<WeightTensor> ts;
  for (const auto& [name, t] : changed) ts.push_back(tensor_of(name, t));
  const std::vector<int32_t> prompt = Reference::load("tiny-llama").prompts.at(1);
  for (const Quantization q : {Quantization::Fp8Block, Quantization::Fp8Row, Quantization::None}) {
    const Case c{"tiny-llama", q};
    auto one = load(c, 1);
    one->update_weights(ts);
    for (const int ranks : {2, 4}) {
      auto split = load(c, ranks);
      split->update_weights(ts);
      for (const StateDictEntry& e : one->state_dict()) {
        ASSERT_EQ(split->state_dict_tensor(e.name).bytes, one->state_dict_tensor(e.name).bytes)
            << name_of(c, ranks) << " " << e.name;
      }
      const std::vector<float> before = split->logits(prompt);
      EXPECT_LT(rel_l2(before, one->logits(prompt)), q == Quantization::None ? 5e-6 : 4e-2)
          << name_of(c, ranks);
      split->sleep(1);
      split->wake_up();
      EXPECT_EQ(split->logits(prompt), before) << name_of(c, ranks);
      EXPECT_NE(error_of([&] { split->state_dict_views(); }).find("split over"), std::string::npos);
    }
  }
}

TEST(TensorParallel, ConfigurationsThatDoNotDivide) {
  const auto err = [](const std::string& model, int ranks) {
    return error_of(
        [&] { Engine::load({.model_dir = data_path(model), .tensor_parallel = ranks}); });
  };
  EXPECT_EQ(err("tiny-qwen2", 2),
            "--tensor-parallel 2: num_attention_heads 3 is not a multiple of 2");
  EXPECT_EQ(err("tiny-qwen2", 3),
            "--tensor-parallel 3: intermediate_size 200 is not a multiple of 3");
  EXPECT_EQ(err("tiny-llama", 8), "--tensor-parallel 8: more ranks than num_attention_heads (4)");
  EXPECT_EQ(err("tiny-llama", 0), "--tensor-parallel 0 must be at least 1");
}

}  // namespace
}  // namespace fp8llm::test
