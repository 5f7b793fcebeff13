// `fp8llm perplexity` end to end on tests/data/tiny-llama: the perplexity it prints against one
// computed here from the engine's logits (the windowing written out again from its definition),
// in each quantization mode; --save-logits then --baseline-logits; one-line errors with exit
// code 2 naming the flag or file.
#include <gtest/gtest.h>

#include <nlohmann/json.hpp>

#include <algorithm>
#include <cmath>
#include <filesystem>
#include <fstream>
#include <string>
#include <vector>

#include "formats/safetensors.h"
#include "fp8llm/engine.h"
#include "test_util.h"
#include "text/tokenizer.h"

namespace fp8llm::test {
namespace {

const std::string kText =
    "In the beginning God created the heaven and the earth.\n"
    "And the earth was without form, and void; and darkness was upon the face of the deep. And "
    "the Spirit of God moved upon the face of the waters.\n"
    "And God said, Let there be light: and there was light.\n";

std::string model() {
  return data_path("tiny-llama").string();
}

size_t count_lines(const std::string& s) {
  return static_cast<size_t>(std::count(s.begin(), s.end(), '\n'));
}

std::filesystem::path write_text(const TempDir& dir, const std::string& name,
                                 const std::string& text) {
  const auto path = dir / name;
  std::ofstream(path, std::ios::binary) << text;
  return path;
}

nlohmann::json run_json(const std::string& args) {
  const CliResult r = run_cli("perplexity --model " + model() + " " + args + " --json --quiet");
  EXPECT_EQ(r.exit_code, 0) << args << "\n" << r.err;
  EXPECT_EQ(r.err, "");
  return r.exit_code == 0 ? nlohmann::json::parse(r.out) : nlohmann::json{};
}

struct Expected {
  double nll_sum = 0;
  int64_t scored = 0;
  int64_t windows = 0;
};

// Windows of `context` every `stride`, each scoring the targets after the previous window's end
// (the definition in src/eval/windows.h), run through the engine one window at a time.
Expected expected_nll(const std::string& mode, const std::vector<int32_t>& ids, int64_t context,
                      int64_t stride) {
  auto engine = Engine::load({.model_dir = model(), .quantization = parse_quantization(mode)});
  const int64_t n = static_cast<int64_t>(ids.size()), v = engine->vocab_size();
  Expected e;
  int64_t previous_end = 0;
  for (int64_t begin = 0;; begin += stride) {
    const int64_t end = std::min(n, begin + context);
    const std::vector<float> logits =
        engine->logits(std::span(ids).subspan(begin, static_cast<size_t>(end - begin)));
    const int64_t first = std::max(previous_end, begin + 1);
    e.windows += first < end;
    for (int64_t t = first; t < end; ++t) {
      const float* row = logits.data() + (t - 1 - begin) * v;
      double sum = 0;
      for (int64_t k = 0; k < v; ++k) sum += std::exp(static_cast<double>(row[k]));
      e.nll_sum += std::log(sum) - row[ids[t]];
      ++e.scored;
    }
    if (end == n) return e;
    previous_end = end;
  }
}

class PerplexityCli : public ::testing::TestWithParam<std::string> {};

std::string mode_name(const ::testing::TestParamInfo<std::string>& param) {
  std::string name = param.param;
  std::replace(name.begin(), name.end(), '-', '_');
  return name;
}

TEST_P(PerplexityCli, MatchesTheEnginesLogits) {
  const std::string mode = GetParam();
  TempDir tmp;
  const auto file = write_text(tmp, "text.txt", kText);
  const std::vector<int32_t> ids = Tokenizer::load(model()).encode(kText, true);
  ASSERT_GT(ids.size(), 40u);
  const Expected want = expected_nll(mode, ids, 16, 5);
  const nlohmann::json r =
      run_json("--file " + file.string() + " --context 16 --stride 5 -q " + mode);
  EXPECT_EQ(r["quantization"], mode);
  EXPECT_EQ(r["tokens"], ids.size());
  EXPECT_EQ(r["context"], 16);
  EXPECT_EQ(r["stride"], 5);
  EXPECT_EQ(r["windows"], want.windows);
  EXPECT_EQ(r["scored"], ids.size() - 1);
  EXPECT_EQ(r["scored"], want.scored);
  const double nll_sum = r["nll_sum"];
  EXPECT_NEAR(nll_sum, want.nll_sum, 1e-9 * want.nll_sum);
  EXPECT_NEAR(r["perplexity"].get<double>(), std::exp(want.nll_sum / want.scored),
              1e-9 * std::exp(want.nll_sum / want.scored));
}

INSTANTIATE_TEST_SUITE_P(Modes, PerplexityCli, ::testing::Values("none", "fp8-row", "fp8-block"),
                         mode_name);

TEST(PerplexityCliWindows, DisjointWindowsAndDefaultStride) {
  TempDir tmp;
  const auto file = write_text(tmp, "text.txt", kText);
  const std::vector<int32_t> ids = Tokenizer::load(model()).encode(kText, true);
  // stride == context: the first token of every window after the first is context only.
  const Expected want = expected_nll("none", ids, 8, 8);
  nlohmann::json r = run_json("--file " + file.string() + " -c 8 -s 8 -q none");
  EXPECT_EQ(r["scored"], want.scored);
  EXPECT_LT(want.scored, static_cast<int64_t>(ids.size()) - 1);
  EXPECT_NEAR(r["nll_sum"].get<double>(), want.nll_sum, 1e-9 * want.nll_sum);
  // Without --stride, windows overlap by half.
  r = run_json("--file " + file.string() + " -c 8 -q none");
  EXPECT_EQ(r["stride"], 4);
  EXPECT_EQ(r["scored"], ids.size() - 1);
}

TEST(PerplexityCliLogits, SavedRunAgainstItselfHasNoDivergence) {
  TempDir tmp;
  const auto file = write_text(tmp, "text.txt", kText);
  const auto saved = tmp / "out" / "base.safetensors";
  std::filesystem::create_directory(tmp / "out");
  const std::string args = "--file " + file.string() + " -c 16 -s 8 -q fp8-block";
  const nlohmann::json first = run_json(args + " --save-logits " + saved.string());
  const nlohmann::json again = run_json(args + " --baseline-logits " + saved.string());
  EXPECT_EQ(again["perplexity"], first["perplexity"]);
  const auto& b = again["baseline"];
  EXPECT_EQ(b["quantization"], "fp8-block");
  EXPECT_EQ(b["kl_mean"], 0.0);
  EXPECT_EQ(b["kl_p99"], 0.0);
  EXPECT_EQ(b["kl_max"], 0.0);
  EXPECT_EQ(b["top_agreement"], 1.0);
  EXPECT_EQ(b["top_agree"], first["scored"]);
  EXPECT_NEAR(b["perplexity"].get<double>(), first["perplexity"].get<double>(),
              1e-6 * first["perplexity"].get<double>());

  // The file: targets, their positions, and a log-softmax row (probabilities summing to 1) each.
  const std::vector<int32_t> ids = Tokenizer::load(model()).encode(kText, true);
  const auto f = SafetensorsFile::open(saved);
  const int64_t n = first["scored"];
  ASSERT_EQ(f->view("logprobs").shape, (Shape{n, 1024}));
  const auto* targets = f->view("targets").as<int32_t>();
  const auto* positions = f->view("positions").as<int32_t>();
  const auto* logprobs = f->view("logprobs").as<float>();
  for (int64_t i = 0; i < n; ++i) {
    ASSERT_EQ(positions[i], i + 1);
    ASSERT_EQ(targets[i], ids[i + 1]);
    double p = 0;
    for (int64_t k = 0; k < 1024; ++k) p += std::exp(static_cast<double>(logprobs[i * 1024 + k]));
    ASSERT_NEAR(p, 1.0, 1e-5) << i;
  }
  EXPECT_EQ(f->metadata().at("stride"), "8");
  // Nothing but the file is left in its directory (no temporary file).
  EXPECT_EQ(std::distance(std::filesystem::directory_iterator(tmp / "out"),
                          std::filesystem::directory_iterator{}),
            1);
}

TEST(PerplexityCliLogits, FP8AgainstBf16Baseline) {
  TempDir tmp;
  const auto file = write_text(tmp, "text.txt", kText);
  const auto saved = tmp / "none.safetensors";
  const std::string args = "--file " + file.string() + " -c 16 -s 8";
  const nlohmann::json none = run_json(args + " -q none --save-logits " + saved.string());
  const auto fp8_saved = tmp / "fp8.safetensors";
  const nlohmann::json fp8 = run_json(args + " -q fp8-row --baseline-logits " + saved.string() +
                                      " --save-logits " + fp8_saved.string());
  const auto& b = fp8["baseline"];
  EXPECT_EQ(b["quantization"], "none");
  EXPECT_NEAR(b["perplexity"].get<double>(), none["perplexity"].get<double>(),
              1e-6 * none["perplexity"].get<double>());
  EXPECT_NEAR(b["perplexity_change"].get<double>(),
              fp8["perplexity"].get<double>() / none["perplexity"].get<double>() - 1, 1e-6);
  // Random weights: FP8 moves every distribution a little.
  EXPECT_GT(b["kl_mean"].get<double>(), 0.0);
  EXPECT_GE(b["kl_p99"].get<double>(), b["kl_mean"].get<double>());
  EXPECT_GE(b["kl_max"].get<double>(), b["kl_p99"].get<double>());
  EXPECT_GT(b["top_agreement"].get<double>(), 0.0);
  EXPECT_LE(b["top_agreement"].get<double>(), 1.0);

  // KL(baseline || this run) and top-token agreement, from the two saved files.
  const auto p = SafetensorsFile::open(saved), q = SafetensorsFile::open(fp8_saved);
  const float* lp = p->view("logprobs").as<float>();
  const float* lq = q->view("logprobs").as<float>();
  const int64_t n = fp8["scored"], v = 1024;
  double kl_sum = 0, kl_max = 0;
  int64_t agree = 0;
  for (int64_t i = 0; i < n; ++i) {
    double kl = 0;
    for (int64_t k = 0; k < v; ++k) {
      const double a = lp[i * v + k], c = lq[i * v + k];
      kl += std::exp(a) * (a - c);
    }
    kl_sum += kl;
    kl_max = std::max(kl_max, kl);
    agree += std::max_element(lp + i * v, lp + (i + 1) * v) - (lp + i * v) ==
             std::max_element(lq + i * v, lq + (i + 1) * v) - (lq + i * v);
  }
  EXPECT_NEAR(b["kl_mean"].get<double>(), kl_sum / n, 1e-12);
  EXPECT_NEAR(b["kl_max"].get<double>(), kl_max, 1e-12);
  EXPECT_EQ(b["top_agree"], agree);
}

TEST(PerplexityCliErrors, OneLineNamingTheFlagAndExitCode2) {
  TempDir tmp;
  const std::string text = write_text(tmp, "text.txt", kText).string();
  const std::string empty = write_text(tmp, "empty.txt", "").string();
  const std::string base = (tmp / "stride8.safetensors").string();
  std::filesystem::create_directory(tmp / "a-directory");
  const std::string dir = (tmp / "a-directory").string();
  const std::string weights = (data_path("tiny-llama") / "model.safetensors").string();
  ASSERT_EQ(run_cli("perplexity --model " + model() + " --file " + text +
                    " -c 16 -s 8 -q none --quiet --save-logits " + base)
                .exit_code,
            0);

  struct Case {
    std::string args;
    std::vector<std::string> message;
  };
  const std::vector<Case> cases{
      {"--file /nonexistent/text.txt", {"--file", "/nonexistent/text.txt"}},
      {"--file " + dir, {"--file", "not a regular file"}},
      {"--file " + empty, {"--file", empty, "empty"}},
      {"--file " + text + " --context 1", {"--context 1"}},
      {"--file " + text + " --context 8 --stride 9", {"--stride 9", "--context (8)"}},
      {"--file " + text + " --stride 0", {"--stride 0"}},
      {"--file " + text + " --context 100000", {"--context 100000", "2048"}},
      {"--file " + text + " -c 16 -s 4 --baseline-logits " + base,
       {"--baseline-logits", base, "--stride 8", "--stride 4"}},
      {"--file " + text + " -c 16 -s 8 --baseline-logits " + weights,
       {"--baseline-logits", weights, "'targets'"}},
      {"--file " + text + " --baseline-logits /nonexistent/base.safetensors",
       {"--baseline-logits", "/nonexistent/base.safetensors"}},
      {"--file " + text + " --save-logits " + dir, {"--save-logits", dir, "not a regular file"}},
      {"--file " + text + " --save-logits /nonexistent/dir/x.safetensors",
       {"--save-logits", "/nonexistent/dir", "does not exist"}},
  };
  for (const Case& c : cases) {
    const CliResult r = run_cli("perplexity --model " + model() + " -q none " + c.args);
    EXPECT_EQ(r.exit_code, 2) << c.args << "\n" << r.err;
    EXPECT_EQ(count_lines(r.err), 1u) << c.args << "\n" << r.err;
    for (const std::string& m : c.message) EXPECT_NE(r.err.find(m), std::string::npos) << r.err;
    EXPECT_EQ(r.out, "") << c.args;
  }
  // A file of the same windowing but another text does not match either.
  const std::string other = write_text(tmp, "other.txt", kText + kText).string();
  const CliResult r = run_cli("perplexity --model " + model() + " -q none -c 16 -s 8 --file " +
                              other + " --baseline-logits " + base);
  EXPECT_EQ(r.exit_code, 2) << r.err;
  EXPECT_NE(r.err.find("--baseline-logits"), std::string::npos) << r.err;
  // The refused directory is still a directory.
  EXPECT_TRUE(std::filesystem::is_directory(dir));
}

}  // namespace
}  // namespace fp8llm::test
