// Host sampling time per token over a Llama-3-sized vocabulary (128,256 logits), for the
// parameter sets users pass (the engine samples on the host whenever top-k, top-p, min-p or a
// repetition penalty is set; the decode step it follows takes about 4.7 ms on an H100).
//   peaked: logits as a trained model's (a few likely tokens, a long tail): normal(0, 2) with the
//           first 20 ids raised by 10 to 18
//   flat:   normal(0, 1): a nucleus of most of the vocabulary (the worst case for top-p)
#include <benchmark/benchmark.h>

#include <random>
#include <vector>

#include "engine/sampler.h"

namespace fp8llm {
namespace {

constexpr size_t kVocab = 128256;

std::vector<float> logits(bool peaked) {
  std::mt19937_64 rng(42);
  std::normal_distribution<float> noise(0.0f, peaked ? 2.0f : 1.0f);
  std::vector<float> out(kVocab);
  for (float& v : out) v = noise(rng);
  if (peaked) {
    for (size_t i = 0; i < 20; ++i) out[i * 6007 % kVocab] += 18.0f - 0.4f * static_cast<float>(i);
  }
  return out;
}

void run(benchmark::State& state, SamplingParams params, bool peaked) {
  const std::vector<float> row = logits(peaked);
  const std::vector<int32_t> history(512, 7);
  Sampler sampler(params);
  for (auto _ : state) benchmark::DoNotOptimize(sampler.sample(row, history));
  state.SetItemsProcessed(state.iterations());
}

void register_all() {
  const struct {
    const char* name;
    SamplingParams params;
  } cases[] = {
      {"temperature", {.temperature = 0.8f}},
      {"top_k_50", {.temperature = 0.8f, .top_k = 50}},
      {"top_p_0.9", {.temperature = 0.8f, .top_p = 0.9f}},
      {"top_p_0.95_top_k_0_min_p_0.05", {.temperature = 0.8f, .top_p = 0.95f, .min_p = 0.05f}},
      {"repetition_penalty", {.temperature = 0.8f, .top_p = 0.9f, .repetition_penalty = 1.1f}},
  };
  for (const auto& c : cases) {
    for (const bool peaked : {true, false}) {
      benchmark::RegisterBenchmark(
          (std::string(c.name) + (peaked ? "/peaked" : "/flat")).c_str(),
          [params = c.params, peaked](benchmark::State& s) { run(s, params, peaked); })
          ->Unit(benchmark::kMicrosecond);
    }
  }
}

}  // namespace
}  // namespace fp8llm

int main(int argc, char** argv) {
  fp8llm::register_all();
  benchmark::Initialize(&argc, argv);
  benchmark::RunSpecifiedBenchmarks();
  return 0;
}
