// Tokenizer throughput in MB/s of UTF-8 text, on the fixture tokenizers (tests/data).
//   encode/<model>/fixture:  the fixtures' reference texts repeated to ~10 MB (repeated pieces:
//                            mostly BPE cache hits, as in ordinary prose)
//   encode_cold/<model>:     ~10 MB of generated words, nearly all distinct, with the cache
//                            cleared before each pass (every piece goes through the BPE merges)
//   decode/<model>, stream/<model>: the ids of the fixture text back to text
#include <benchmark/benchmark.h>

#include <nlohmann/json.hpp>

#include <random>
#include <string>

#include "core/file_util.h"
#include "text/stream_decoder.h"
#include "text/tokenizer.h"

namespace fp8llm {
namespace {

constexpr size_t kTextBytes = 10 << 20;

std::filesystem::path model_dir(const std::string& model) {
  return std::filesystem::path(FP8LLM_DATA_DIR) / model;
}

std::string fixture_text(const std::string& model) {
  const auto ref =
      nlohmann::json::parse(read_text_file(model_dir(model) / "tokenizer_reference.json"));
  std::string unit;
  for (const auto& c : ref["encode"]) unit += c["text"].get<std::string>() + "\n";
  for (const auto& c : ref["chat"]) unit += c["text"].get<std::string>();
  std::string text;
  text.reserve(kTextBytes + unit.size());
  while (text.size() < kTextBytes) text += unit;
  return text;
}

// Random words (Latin, Cyrillic, CJK, digits, punctuation) so that almost no piece repeats.
std::string generated_text() {
  std::mt19937_64 rng(12345);
  const std::vector<std::string> alphabets[] = {
      {"a", "b", "c", "d", "e", "f", "g", "h", "i", "k", "l", "m", "n", "o", "p", "r", "s", "t"},
      {"\u0430", "\u0431", "\u0432", "\u0433", "\u0434", "\u0435", "\u0438", "\u043A"},
      {"\u4F60", "\u597D", "\u4E16", "\u754C", "\u6D4B", "\u8BD5", "\u6587", "\u5B57"},
      {"0", "1", "2", "3", "4", "5", "6", "7", "8", "9"}};
  const char* punct[] = {" ", " ", " ", " ", ", ", ". ", "\n", "! ", " (", ") "};
  std::string text;
  text.reserve(kTextBytes + 64);
  while (text.size() < kTextBytes) {
    const auto& a = alphabets[rng() % 8 < 6 ? 0 : 1 + rng() % 3];
    const size_t len = 2 + rng() % 9;
    for (size_t i = 0; i < len; ++i) text += a[rng() % a.size()];
    text += punct[rng() % std::size(punct)];
  }
  return text;
}

void encode(benchmark::State& state, const std::string& model) {
  const Tokenizer tok = Tokenizer::load(model_dir(model));
  const std::string text = fixture_text(model);
  size_t n = 0;
  for (auto _ : state) {
    const auto ids = tok.encode(text);
    n = ids.size();
    benchmark::DoNotOptimize(ids.data());
  }
  state.SetBytesProcessed(static_cast<int64_t>(state.iterations() * text.size()));
  state.counters["tokens"] = static_cast<double>(n);
}

void encode_cold(benchmark::State& state, const std::string& model) {
  const Tokenizer tok = Tokenizer::load(model_dir(model));
  const std::string text = generated_text();
  for (auto _ : state) {
    state.PauseTiming();
    tok.clear_cache();
    state.ResumeTiming();
    const auto ids = tok.encode(text);
    benchmark::DoNotOptimize(ids.data());
  }
  state.SetBytesProcessed(static_cast<int64_t>(state.iterations() * text.size()));
}

void decode(benchmark::State& state, const std::string& model) {
  const Tokenizer tok = Tokenizer::load(model_dir(model));
  const std::string text = fixture_text(model);
  const auto ids = tok.encode(text);
  for (auto _ : state) {
    const std::string out = tok.decode(ids);
    benchmark::DoNotOptimize(out.data());
  }
  state.SetBytesProcessed(static_cast<int64_t>(state.iterations() * text.size()));
}

void stream(benchmark::State& state, const std::string& model) {
  const Tokenizer tok = Tokenizer::load(model_dir(model));
  const std::string text = fixture_text(model);
  const auto ids = tok.encode(text, false);
  for (auto _ : state) {
    StreamDecoder s(tok);
    size_t bytes = 0;
    for (const int32_t id : ids) bytes += s.put(id).size();
    bytes += s.flush().size();
    benchmark::DoNotOptimize(bytes);
  }
  state.SetBytesProcessed(static_cast<int64_t>(state.iterations() * text.size()));
}

BENCHMARK_CAPTURE(encode, llama_fixture, std::string("tiny-llama"))->Unit(benchmark::kMillisecond);
BENCHMARK_CAPTURE(encode, qwen3_fixture, std::string("tiny-qwen3"))->Unit(benchmark::kMillisecond);
BENCHMARK_CAPTURE(encode_cold, llama, std::string("tiny-llama"))->Unit(benchmark::kMillisecond);
BENCHMARK_CAPTURE(encode_cold, qwen3, std::string("tiny-qwen3"))->Unit(benchmark::kMillisecond);
BENCHMARK_CAPTURE(decode, llama, std::string("tiny-llama"))->Unit(benchmark::kMillisecond);
BENCHMARK_CAPTURE(stream, llama, std::string("tiny-llama"))->Unit(benchmark::kMillisecond);

}  // namespace
}  // namespace fp8llm

BENCHMARK_MAIN();
