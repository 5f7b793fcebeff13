// LoRA on the CPU (the reference): an adapter gives what merging it into the weights gives; an
// adapter of zeros changes nothing, bit for bit; ranks 8, 16, 64, rsLoRA, subsets of the seven
// projections and of the layers; one batch mixes adapters and the base model, each request as
// alone; replacing an adapter takes effect for new requests without reusing stale prefix blocks;
// bad adapters and bad uses are one-line errors.
#include <gtest/gtest.h>

#include <functional>
#include <optional>
#include <random>

#include "core/error.h"
#include "fp8llm/engine.h"
#include "lora_fixture.h"
#include "test_util.h"

namespace fp8llm::test {
namespace {

std::unique_ptr<Engine> engine(Quantization q = Quantization::None, int max_loras = 4,
                               const std::filesystem::path& dir = data_path("tiny-llama")) {
  return Engine::load(
      {.model_dir = dir, .quantization = q, .max_loras = max_loras, .max_lora_rank = 64});
}

std::vector<int32_t> prompt_of(uint32_t seed, int n = 20) {
  std::mt19937 rng(seed);
  std::vector<int32_t> p;
  for (int i = 0; i < n; ++i) p.push_back(static_cast<int32_t>(5 + rng() % 1000));
  return p;
}

// Greedy tokens with the log-probabilities of the top 20 at each step.
CompletionOutput run(Engine& e, const std::vector<int32_t>& prompt, const std::string& lora,
                     int tokens = 8) {
  GenerationRequest r{prompt, {.max_tokens = tokens, .ignore_eos = true, .logprobs = 20}, lora};
  return e.generate({r}).at(0).outputs.at(0);
}

double worst_logprob_gap(const CompletionOutput& a, const CompletionOutput& b) {
  double worst = 0;
  const size_t n = std::min(a.logprobs.size(), b.logprobs.size());
  for (size_t t = 0; t < n && a.token_ids[t] == b.token_ids[t]; ++t) {
    for (size_t k = 0; k < a.logprobs[t].top.size(); ++k) {
      if (a.logprobs[t].top[k].first != b.logprobs[t].top[k].first) return 1e9;
      worst = std::max(worst, std::fabs(double(a.logprobs[t].top[k].second) -
                                        double(b.logprobs[t].top[k].second)));
    }
  }
  return worst;
}

// The largest difference between the log-probabilities both outputs list for the same token at
// the same step (near-ties may list the top tokens in another order).
double worst_shared_logprob_gap(const CompletionOutput& a, const CompletionOutput& b) {
  double worst = 0;
  const size_t n = std::min(a.logprobs.size(), b.logprobs.size());
  for (size_t t = 0; t < n && a.token_ids[t] == b.token_ids[t]; ++t) {
    worst = std::max(worst, std::fabs(double(a.logprobs[t].logprob) - b.logprobs[t].logprob));
    for (const auto& [id, lp] : a.logprobs[t].top)
      for (const auto& [other, lq] : b.logprobs[t].top)
        if (id == other) worst = std::max(worst, std::fabs(double(lp) - double(lq)));
  }
  return worst;
}

TEST(Lora, AnAdapterOfZerosChangesNothingBitForBit) {
  TempDir tmp;
  TinyAdapter{.rank = 16, .zero_b = true}.write(tmp / "zero");
  for (const Quantization q : {Quantization::None, Quantization::Fp8Block, Quantization::Fp8Row}) {
    auto e = engine(q);
    e->add_lora("zero", tmp / "zero");
    const std::vector<int32_t> p = prompt_of(1);
    const CompletionOutput base = run(*e, p, "");
    const CompletionOutput zero = run(*e, p, "zero");
    EXPECT_EQ(base.token_ids, zero.token_ids);
    ASSERT_EQ(base.logprobs.size(), zero.logprobs.size());
    for (size_t t = 0; t < base.logprobs.size(); ++t)
      EXPECT_EQ(base.logprobs[t].top, zero.logprobs[t].top);
  }
}

// The definition: the adapter merged into the weights in double (F32 checkpoint, mode none).
TEST(Lora, AnAdapterIsItsMergedWeights) {
  const std::vector<TinyAdapter> cases = {
      {.rank = 8},
      {.rank = 16, .alpha = 32, .rslora = true, .seed = 2},
      {
          .rank = 64,
          .alpha = 64,
          .seed = 3,
      },
      {.rank = 16, .targets = {"q_proj", "v_proj"}, .seed = 4},
      {.rank = 8, .targets = {"down_proj"}, .seed = 5},
      {.rank = 8, .targets = {"k_proj", "o_proj", "gate_proj", "up_proj"}, .seed = 6},
  };
  for (const TinyAdapter& a : cases) {
    SCOPED_TRACE(a.config_json());
    TempDir tmp;
    a.write(tmp / "adapter");
    a.write_merged(tmp / "merged");
    auto e = engine();
    e->add_lora("a", tmp / "adapter");
    auto merged = engine(Quantization::None, 0, tmp / "merged");
    const std::vector<int32_t> p = prompt_of(a.seed + 10);
    const CompletionOutput with = run(*e, p, "a");
    const CompletionOutput want = run(*merged, p, "");
    const CompletionOutput base = run(*e, p, "");
    const double gap = worst_logprob_gap(with, want);
    std::printf("rank %d targets %zu: adapter vs merged, worst top-20 logprob gap %.3e\n", a.rank,
                a.targets.size(), gap);
    EXPECT_LT(gap, 2e-4);
    EXPECT_EQ(with.token_ids, want.token_ids);
    EXPECT_NE(with.logprobs.at(0).top, base.logprobs.at(0).top);  // the adapter does something
  }
}

TEST(Lora, OneBatchMixesAdaptersAndTheBaseModel) {
  TempDir tmp;
  for (int i = 0; i < 4; ++i) {
    TinyAdapter{.rank = 8 * (i + 1), .seed = 20u + static_cast<uint32_t>(i)}.write(
        tmp / ("a" + std::to_string(i)));
  }
  auto e = engine(Quantization::Fp8Block);
  for (int i = 0; i < 4; ++i) e->add_lora("a" + std::to_string(i), tmp / ("a" + std::to_string(i)));
  std::vector<GenerationRequest> requests;
  for (int i = 0; i < 25; ++i) {
    const std::string lora = i % 5 == 4 ? "" : "a" + std::to_string(i % 5);
    requests.push_back(
        {prompt_of(100 + i, 5 + i), {.max_tokens = 6, .ignore_eos = true, .logprobs = 3}, lora});
  }
  const std::vector<RequestOutput> together = e->generate(requests);
  for (size_t i = 0; i < requests.size(); ++i) {
    const RequestOutput alone = e->generate({requests[i]}).at(0);
    EXPECT_EQ(alone.outputs[0].token_ids, together[i].outputs[0].token_ids) << i;
    for (size_t t = 0; t < alone.outputs[0].logprobs.size(); ++t)
      EXPECT_EQ(alone.outputs[0].logprobs[t].top, together[i].outputs[0].logprobs[t].top);
  }
  EXPECT_EQ(e->lora_names().size(), 4u);
}

// Tensor parallel ranks each apply their cut of the adapter (model/lora_shard.h): the same tokens
// as one rank, log-probabilities within fp32 rounding unquantized, for 2 ranks and for 4 (where
// each KV head is held by two ranks), in every mode, with all projections and with a subset.
TEST(Lora, TensorParallelRanksApplyTheAdapterAsOneRankDoes) {
  TempDir tmp;
  const TinyAdapter all{.rank = 16, .seed = 40};
  const TinyAdapter some{.rank = 8, .targets = {"k_proj", "o_proj", "down_proj"}, .seed = 41};
  all.write(tmp / "all");
  some.write(tmp / "some");
  for (const Quantization q : {Quantization::None, Quantization::Fp8Block, Quantization::Fp8Row}) {
    auto one = engine(q);
    one->add_lora("all", tmp / "all");
    one->add_lora("some", tmp / "some");
    for (const int ranks : {2, 4}) {
      SCOPED_TRACE(std::string(to_string(q)) + ", " + std::to_string(ranks) + " ranks");
      auto split = Engine::load({.model_dir = data_path("tiny-llama"),
                                 .quantization = q,
                                 .tensor_parallel = ranks,
                                 .max_loras = 4,
                                 .max_lora_rank = 64});
      split->add_lora("all", tmp / "all");
      split->add_lora("some", tmp / "some");
      for (const char* name : {"all", "some"}) {
        const std::vector<int32_t> p = prompt_of(50 + static_cast<uint32_t>(ranks));
        const CompletionOutput want = run(*one, p, name);
        const CompletionOutput got = run(*split, p, name);
        EXPECT_EQ(got.token_ids, want.token_ids) << name;
        // FP8 modes quantize o's and down's inputs per rank with the whole row's scale, so the
        // ranks differ from one only by the order of fp32 sums.
        const double gap = worst_shared_logprob_gap(got, want);
        std::printf("%s, %d ranks, %s: worst logprob gap %.3e\n", std::string(to_string(q)).c_str(),
                    ranks, name, gap);
        // Unquantized, fp32 rounding alone; with FP8 a last-bit difference now and then flips an
        // activation's code downstream (as without adapters: test_tensor_parallel.cpp).
        EXPECT_LT(gap, q == Quantization::None ? 1e-4 : 0.1) << name;
        EXPECT_NE(run(*split, p, "").logprobs.at(0).top, got.logprobs.at(0).top) << name;
      }
    }
  }
}

TEST(Lora, ReplacingTakesEffectAndNeverReusesStaleKeys) {
  TempDir tmp;
  const TinyAdapter first{.rank = 8, .seed = 30}, second{.rank = 8, .seed = 31};
  first.write(tmp / "first");
  second.write(tmp / "second");
  auto e = engine(Quantization::Fp8Row);
  e->add_lora("x", tmp / "first");
  const std::vector<int32_t> p = prompt_of(7, 40);  // two full blocks the prefix cache keeps
  const CompletionOutput before = run(*e, p, "x");
  // New factors from memory, as a training loop hands them over.
  const auto f = second.factors();
  std::vector<WeightTensor> tensors;
  for (const auto& [name, bits] : f)
    tensors.push_back({name, "BF16", second.shape_of_tensor(name), bits.data()});
  e->replace_lora("x", tensors);
  const CompletionOutput after = run(*e, p, "x");
  auto fresh = engine(Quantization::Fp8Row);
  fresh->add_lora("x", tmp / "second");
  const CompletionOutput want = run(*fresh, p, "x");
  EXPECT_EQ(after.token_ids, want.token_ids);
  for (size_t t = 0; t < want.logprobs.size(); ++t)
    EXPECT_EQ(after.logprobs[t].top, want.logprobs[t].top);
  EXPECT_NE(before.logprobs[0].top, after.logprobs[0].top);
  // Shapes that differ are refused whole, and the adapter stays as it was.
  tensors.pop_back();
  EXPECT_NE(error_of([&] { e->replace_lora("x", tensors); }).find("lora x"), std::string::npos);
  EXPECT_EQ(run(*e, p, "x").token_ids, want.token_ids);
  // Factors said to be on a CUDA device reach a CPU engine only as an error, as do factors split
  // between host and device; neither changes the adapter.
  tensors.clear();
  for (const auto& [name, bits] : first.factors())
    tensors.push_back({name, "BF16", first.shape_of_tensor(name), bits.data(), Device::Cuda});
  EXPECT_NE(error_of([&] {
              e->replace_lora("x", tensors);
            }).find("on the cuda device, but this engine runs on the cpu"),
            std::string::npos)
      << error_of([&] { e->replace_lora("x", tensors); });
  tensors[3].device = Device::Cpu;
  EXPECT_NE(
      error_of([&] {
        e->replace_lora("x", tensors);
      }).find(tensors[3].name + ": in host memory, while the other factors are on the device"),
      std::string::npos)
      << error_of([&] { e->replace_lora("x", tensors); });
  tensors[0].device = Device::Cpu;
  EXPECT_NE(error_of([&] {
              e->replace_lora("x", tensors);
            }).find(tensors[1].name + ": adapter factors must be in host memory"),
            std::string::npos)
      << error_of([&] { e->replace_lora("x", tensors); });
  EXPECT_EQ(run(*e, p, "x").token_ids, want.token_ids);
}

// The documented rule for requests already running (engine/lora_slots.h): the new factors apply
// from the next step on; the tokens before it, and the keys cached for them, stay as they were.
TEST(Lora, ARunningRequestUsesReplacedFactorsFromTheNextStep) {
  TempDir tmp;
  const TinyAdapter first{.rank = 8, .spread = 0.2f, .seed = 30},
      second{.rank = 8, .spread = 0.2f, .seed = 31};
  first.write(tmp / "first");
  const auto f = second.factors();
  std::vector<WeightTensor> tensors;
  for (const auto& [name, bits] : f)
    tensors.push_back({name, "BF16", second.shape_of_tensor(name), bits.data()});
  // Runs one request of 8 tokens; with `replace`, the adapter's factors change once 3 are out.
  const auto run_with = [&](bool replace) {
    auto e = engine(Quantization::Fp8Row);
    e->add_lora("x", tmp / "first");
    int produced = 0;
    e->add_request({prompt_of(5), {.max_tokens = 8, .ignore_eos = true, .logprobs = 5}, "x"},
                   [&](const TokenUpdate&) {
                     ++produced;
                     return true;
                   });
    std::optional<CompletionOutput> out;
    bool replaced = false;
    while (e->has_unfinished()) {
      if (replace && !replaced && produced == 3) {
        e->replace_lora("x", tensors);
        replaced = true;
      }
      for (const RequestOutput& r : e->step())
        if (r.finished) out = r.outputs.at(0);
    }
    EXPECT_EQ(replaced, replace);
    return *out;
  };
  const CompletionOutput kept = run_with(false), switched = run_with(true);
  ASSERT_EQ(kept.logprobs.size(), 8u);
  ASSERT_EQ(switched.logprobs.size(), 8u);
  for (size_t t = 0; t < 3; ++t) {
    EXPECT_EQ(switched.token_ids[t], kept.token_ids[t]) << "token " << t;
    EXPECT_EQ(switched.logprobs[t].top, kept.logprobs[t].top) << "token " << t;
  }
  EXPECT_NE(switched.logprobs[3].top, kept.logprobs[3].top);
}

TEST(Lora, FactorNamesFollowPeftsForms) {
  // A saved adapter's names, an in-memory PEFT state dict's (adapter name before .weight, no
  // base_model prefix); near misses are refused with the name.
  const TinyAdapter a{.rank = 8, .targets = {"q_proj"}};
  const auto f = a.factors();
  const std::string cfg = a.config_json();
  const auto rename = [&](auto&& fn) {
    std::vector<WeightTensor> t;
    std::vector<std::string> names;
    for (const auto& [name, bits] : f) names.push_back(fn(name));
    size_t i = 0;
    for (const auto& [name, bits] : f)
      t.push_back({names[i++], "BF16", a.shape_of_tensor(name), bits.data()});
    return t;
  };
  const auto add = [&](const std::vector<WeightTensor>& t) {
    auto e = engine(Quantization::None, 1);
    return error_of([&] { e->add_lora("x", cfg, t); });
  };
  EXPECT_EQ(add(rename([](std::string n) { return n; })), "");
  EXPECT_EQ(
      add(rename([](std::string n) { return n.substr(std::string("base_model.model.").size()); })),
      "");
  EXPECT_EQ(
      add(rename([](std::string n) { return n.replace(n.size() - 7, 7, ".default.weight"); })), "");
  for (const auto& bad : std::vector<std::function<std::string(std::string)>>{
           [](std::string n) { return n.replace(n.find("self_attn"), 9, "mlp"); },
           [](std::string n) { return n.replace(n.size() - 7, 7, "..weight"); },
           [](std::string n) { return n.replace(n.size() - 7, 7, ".a/b.weight"); },
           [](std::string n) { return n.replace(n.find("lora_"), 6, "lora_C"); },
           [](std::string n) { return n.replace(n.find("layers.") + 7, 1, "x"); },
           [](std::string n) { return n + "s"; }}) {
    const std::vector<WeightTensor> t = rename(bad);
    EXPECT_NE(add(t).find("not a LoRA factor"), std::string::npos) << t[0].name << ": " << add(t);
  }
}

TEST(Lora, BadAdaptersAndUsesAreOneLineErrors) {
  TempDir tmp;
  TinyAdapter good{.rank = 8};
  good.write(tmp / "good");
  auto e = engine(Quantization::None, 1);
  const auto err = [&](const std::string& config, std::vector<WeightTensor> tensors) {
    return error_of([&] { e->add_lora("bad", config, tensors); });
  };
  const auto f = good.factors();
  std::vector<WeightTensor> all;
  for (const auto& [name, bits] : f)
    all.push_back({name, "BF16", good.shape_of_tensor(name), bits.data()});
  const std::string cfg = good.config_json();
  // A wrong shape, a missing factor, an unknown tensor, a NaN, a bad dtype.
  std::vector<WeightTensor> t = all;
  t[0].shape = {4, 256};
  EXPECT_NE(err(cfg, t).find(t[0].name + ": shape [4, 256]"), std::string::npos) << err(cfg, t);
  t = all;
  t.pop_back();
  EXPECT_NE(err(cfg, t).find("is targeted but its lora_A and lora_B are not both given"),
            std::string::npos);
  t = all;
  t.push_back({"model.embed_tokens.lora_A.weight", "BF16", {8, 256}, all[0].data});
  EXPECT_NE(err(cfg, t).find("not a LoRA factor"), std::string::npos) << err(cfg, t);
  std::vector<float> nan(8 * 256, 0.0f);
  nan[5] = NAN;
  t = all;
  for (WeightTensor& x : t)
    if (x.name == "base_model.model.model.layers.0.self_attn.q_proj.lora_A.weight") {
      x.dtype = "F32";
      x.data = nan.data();
    }
  EXPECT_NE(err(cfg, t).find("q_proj.lora_A.weight: element 5 is nan"), std::string::npos)
      << err(cfg, t);
  t = all;
  t[0].dtype = "I32";
  EXPECT_NE(err(cfg, t).find("dtype 'I32'"), std::string::npos);
  // Settings the engine cannot apply exactly.
  for (const auto& [key, value] : std::vector<std::pair<std::string, nlohmann::json>>{
           {"use_dora", true},
           {"fan_in_fan_out", true},
           {"bias", "all"},
           {"modules_to_save", {"lm_head"}},
           {"rank_pattern", {{"q_proj", 4}}},
           {"target_modules", {"q_proj", "lm_head"}}}) {
    nlohmann::json j = nlohmann::json::parse(cfg);
    j[key] = value;
    EXPECT_NE(err(j.dump(), all).find(key), std::string::npos) << key << ": " << err(j.dump(), all);
  }
  // Rank above the slots' limit, a second adapter with one slot, unknown names, removal in use.
  nlohmann::json big = nlohmann::json::parse(cfg);
  EXPECT_EQ(err(big.dump(), all), "");
  EXPECT_NE(error_of([&] { e->add_lora("other", tmp / "good"); }).find("all 1 adapter slots"),
            std::string::npos);
  EXPECT_NE(error_of([&] { e->add_lora("bad", tmp / "good"); }).find("loaded already"),
            std::string::npos);
  EXPECT_NE(error_of([&] {
              e->add_request({{1, 2, 3}, {}, "nope"});
            }).find("no adapter named 'nope' (loaded: bad)"),
            std::string::npos);
  const uint64_t id = e->add_request({{1, 2, 3}, {.max_tokens = 3}, "bad"});
  EXPECT_NE(error_of([&] { e->remove_lora("bad"); }).find("1 unfinished requests use it"),
            std::string::npos);
  while (e->has_unfinished()) e->step();
  (void)id;
  e->remove_lora("bad");
  EXPECT_TRUE(e->lora_names().empty());
  auto plain = engine(Quantization::None, 0);
  EXPECT_NE(error_of([&] { plain->add_lora("x", tmp / "good"); }).find("--max-loras"),
            std::string::npos);
  EXPECT_NE(error_of([&] {
              plain->add_request({{1, 2}, {}, "x"});
            }).find("--max-loras"),
            std::string::npos);
  TinyAdapter wide{.rank = 128};
  wide.write(tmp / "wide");
  EXPECT_NE(error_of([&] { e->add_lora("wide", tmp / "wide"); }).find("exceeds --max-lora-rank 64"),
            std::string::npos);
}

}  // namespace
}  // namespace fp8llm::test
