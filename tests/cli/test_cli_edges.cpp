// Edges of the command line that a new user runs into: defaults and modes (-q auto, inspect auto,
// a pre-quantized checkpoint without -q), flags that were silently ignored, readable range errors,
// output that cannot be written, the progress line on a terminal, and the CPU bench's floor.
#include <pty.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <gtest/gtest.h>

#include <algorithm>
#include <cstring>
#include <fstream>
#include <iterator>
#include <regex>
#include <string>

#include <nlohmann/json.hpp>

#include "formats/safetensors.h"
#include "test_util.h"

namespace fp8llm::test {
namespace {

namespace fs = std::filesystem;

std::string model(const std::string& name) {
  return data_path(name).string();
}

TEST(CliEdges, PrequantizedWithoutQuantizationFlagLoadsWithoutAWarning) {
  const std::string args =
      "generate --model " + model("tiny-llama-fp8-block") + " --prompt-ids 1 --max-tokens 1";
  CliResult r = run_cli(args);
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_EQ(r.err.find("warning"), std::string::npos) << r.err;
  EXPECT_NE(r.err.find("is already FP8 (fine-grained fp8, block 128x128): loading as is"),
            std::string::npos)
      << r.err;
  // A mode the user gives and the checkpoint contradicts is still worth a warning.
  r = run_cli(args + " -q fp8-row");
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_NE(r.err.find("warning: load: --quantization fp8-row ignored"), std::string::npos)
      << r.err;
}

TEST(CliEdges, InspectAcceptsAuto) {
  CliResult r = run_cli("inspect " + model("tiny-llama") + " -q auto");
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_NE(r.out.find("quantization auto (fp8-block)\n"), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("14 of 21 tensors quantized"), std::string::npos) << r.out;
  r = run_cli("inspect " + model("tiny-llama-fp8-block") + " -q auto");
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_NE(r.out.find("quantization auto (as stored: fine-grained fp8, block 128x128)\n"),
            std::string::npos)
      << r.out;
}

TEST(CliEdges, AnEmptyTextIsAText) {
  // Its ids are the special tokens alone (tiny-llama adds BOS, id 0).
  CliResult r = run_cli("tokenize --model " + model("tiny-llama") + " --text ''");
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_EQ(r.out, "[0]\n");
  r = run_cli("tokenize --model " + model("tiny-llama") + " --text '' --no-special");
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_EQ(r.out, "[]\n");
  r = run_cli("tokenize --model " + model("tiny-llama"));
  EXPECT_EQ(r.exit_code, 2);
  EXPECT_EQ(r.err, "error: give exactly one of --text and --chat-json\n");
}

struct FlagError {
  std::string args;
  std::string error;
};

class CliFlagErrors : public ::testing::TestWithParam<FlagError> {};

TEST_P(CliFlagErrors, AreOneReadableLine) {
  const CliResult r = run_cli(GetParam().args);
  EXPECT_EQ(r.exit_code, 2);
  EXPECT_EQ(r.err, GetParam().error);
  EXPECT_EQ(r.out, "");
}

const std::string kGenerate = "generate --model " + model("tiny-llama") + " --prompt-ids 1 ";

INSTANTIATE_TEST_SUITE_P(
    All, CliFlagErrors,
    ::testing::Values(
        // CLI11's range checks printed DBL_MAX in full (309 digits).
        FlagError{kGenerate + "--max-context 0",
                  "error: --max-context: must be positive (got 0) (see --help)\n"},
        FlagError{kGenerate + "--max-tokens -5",
                  "error: --max-tokens: must be zero or more (got -5) (see --help)\n"},
        FlagError{"bench --model " + model("tiny-llama") + " --bandwidth-gbs -1",
                  "error: --bandwidth-gbs: must be positive (got -1) (see --help)\n"},
        FlagError{"quantize --model " + model("tiny-llama") +
                      " --mode row --out /tmp/never --max-shard-bytes 0",
                  "error: --max-shard-bytes: must be positive (got 0) (see --help)\n"},
        // --system was silently ignored without --chat.
        FlagError{"run --model " + model("tiny-llama") + " --prompt hi --system 'Be brief.'",
                  "error: --system needs --chat (a system message is part of the chat "
                  "template)\n"}));

// A command whose output could not be written has failed (it used to exit 0). /dev/full is
// opened by the shell's redirection, which never replaces it.
TEST(CliEdges, OutputThatCannotBeWrittenIsAnError) {
  struct stat st {};
  if (::stat("/dev/full", &st) != 0 || !S_ISCHR(st.st_mode)) GTEST_SKIP() << "no /dev/full";
  TempDir tmp;
  for (const std::string& args :
       {"tokenize --model " + model("tiny-llama") + " --text hi",
        "inspect " + model("tiny-llama"),  // more than a stdio buffer
        "run --model " + model("tiny-llama") + " --prompt hi --max-tokens 40 --quiet",
        "generate --model " + model("tiny-llama") + " --prompt-ids 1 --max-tokens 4 --quiet"}) {
    const std::string cmd = std::string(FP8LLM_CLI_PATH) + " " + args + " >/dev/full 2>" +
                            (tmp / "err").string() + " </dev/null";
    const int status = std::system(cmd.c_str());
    ASSERT_TRUE(WIFEXITED(status)) << args;
    EXPECT_EQ(WEXITSTATUS(status), 2) << args;
    std::ifstream in(tmp / "err");
    const std::string err((std::istreambuf_iterator<char>(in)), {});
    EXPECT_EQ(err, "error: standard output: write failed: No space left on device\n") << args;
  }
}

// Runs the program with stderr (and stdout) on a pseudo-terminal, as a user at a terminal sees
// it; returns everything written there.
std::string run_on_terminal(const std::string& args) {
  int master = -1;
  const pid_t pid = ::forkpty(&master, nullptr, nullptr, nullptr);
  if (pid == 0) {
    ::execl("/bin/sh", "sh", "-c", (std::string(FP8LLM_CLI_PATH) + " " + args).c_str(),
            static_cast<char*>(nullptr));
    ::_exit(127);
  }
  EXPECT_GT(pid, 0);
  std::string out;
  char buf[4096];
  ssize_t n = 0;
  while ((n = ::read(master, buf, sizeof buf)) > 0) out.append(buf, static_cast<size_t>(n));
  ::close(master);
  ::waitpid(pid, nullptr, 0);
  return out;
}

// The progress line rewrites itself in place: each rewrite clears the line first (a shorter byte
// count used to leave the end of the longer one), and a load that fails ends it before the error.
TEST(CliEdges, ProgressLineLeavesNoStrayCharacters) {
  std::string out =
      run_on_terminal("generate --model " + model("tiny-llama") + " --prompt-ids 1 --max-tokens 1");
  ASSERT_NE(out.find("loading ["), std::string::npos) << out;
  for (size_t p = out.find("loading ["); p != std::string::npos; p = out.find("loading [", p + 1))
    EXPECT_EQ(out.substr(p - 4, 4), "\r\033[K") << out;

  // A NaN in the last tensor of the file: the load fails after the bar has started.
  TempDir tmp;
  copy_dir(data_path("tiny-llama"), tmp / "m");
  {
    const auto file = SafetensorsFile::open(tmp / "m" / "model.safetensors");
    std::vector<std::pair<std::string, TensorView>> ts;
    for (const auto& t : file->tensors()) ts.emplace_back(t.name, file->view(t));
    std::vector<std::byte> poisoned(ts.back().second.data,
                                    ts.back().second.data + ts.back().second.nbytes);
    poisoned[1] = std::byte{0x7F};
    poisoned[0] = std::byte{0xC0};
    ts.back().second.data = poisoned.data();
    write_safetensors(tmp / "m" / "rewritten", ts);
  }
  fs::rename(tmp / "m" / "rewritten", tmp / "m" / "model.safetensors");
  out = run_on_terminal("generate --model " + (tmp / "m").string() + " -q none --prompt-ids 1");
  const size_t error = out.find("error: ");
  ASSERT_NE(error, std::string::npos) << out;
  EXPECT_GE(error, 4u);
  EXPECT_EQ(out.substr(error - 4, 4), "\r\033[K") << out;
}

TEST(CliEdges, CpuBenchHasNoGpuFloor) {
  const std::string args = "bench --model " + model("tiny-llama") +
                           " --prompt-tokens 4 --decode-tokens 2 --loads 1 --quiet";
  CliResult r = run_cli(args);
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_NE(r.out.find("no floor for the CPU without --bandwidth-gbs"), std::string::npos) << r.out;
  EXPECT_EQ(r.out.find("3000 GB/s"), std::string::npos) << r.out;
  r = run_cli(args + " --bandwidth-gbs 20");
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_NE(r.out.find(" / 20 GB/s = "), std::string::npos) << r.out;
}

// A decode step also reads its sequence's keys and values: tiny-llama's fp32 cache holds 2 KiB a
// position (2 layers x K and V x 2 KV heads x 64 x 4 bytes), and the steps after a 100-token
// prompt attend to 101 .. 104 keys, 102.5 on average: 205 KiB.
TEST(CliEdges, BenchFloorCountsTheKeysAndValuesRead) {
  const CliResult r = run_cli("bench --model " + model("tiny-llama") +
                              " --prompt-tokens 100 --decode-tokens 4 --loads 1 --quiet");
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_NE(r.out.find("205.0 KiB of keys and values at 102 keys on average"), std::string::npos)
      << r.out;
}

TEST(CliEdges, ServingBenchWarmsUpFirstUnlessToldNot) {
  const std::string args = "bench --model " + model("tiny-llama") +
                           " --concurrency 2 --num-prompts 3 --input-len 8 --output-len 3 --quiet";
  CliResult r = run_cli(args);
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_NE(r.out.find("warm-up    1 request(s) of 8 tokens"), std::string::npos) << r.out;
  // The warm-up's prompt is not among the counted ones: 3 x 7 (the prefix cache is asked about
  // every prompt token but the last, which is always computed).
  EXPECT_NE(r.out.find("of 21 prompt tokens"), std::string::npos) << r.out;
  r = run_cli(args + " --warmup 0");
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_EQ(r.out.find("warm-up"), std::string::npos) << r.out;
  EXPECT_EQ(run_cli(args + " --warmup -1").exit_code, 2);
}

// --concurrency C runs C requests at once: the engine's --max-seqs (256 by default) rises to C
// unless --max-seqs is given, and then the output says how many ran at once.
TEST(CliEdges, ServingBenchRunsItsConcurrencyUnlessMaxSeqsSaysLess) {
  const std::string args = "bench --model " + model("tiny-llama") +
                           " --num-prompts 3 --input-len 8 --output-len 2 --warmup 0 --quiet";
  CliResult r = run_cli(args + " --concurrency 2 --max-seqs 1");
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_NE(r.out.find("concurrency 2 (1 running at once, --max-seqs)"), std::string::npos)
      << r.out;
  r = run_cli(args + " --concurrency 300");
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_NE(r.out.find("concurrency 300\n"), std::string::npos) << r.out;
}

// The serving bench splits its steps into those that compute prompt tokens and those that only
// decode: together they are every step, every prompt token (3 prompts of 8, no prefix-cache hit)
// and every sampled token (3 x 3).
TEST(CliEdges, ServingBenchSplitsPromptAndDecodeSteps) {
  const CliResult r = run_cli("bench --model " + model("tiny-llama") +
                              " --concurrency 2 --num-prompts 3 --input-len 8 --output-len 3 "
                              "--warmup 0 --quiet");
  ASSERT_EQ(r.exit_code, 0) << r.err;
  std::smatch total, split;
  ASSERT_TRUE(std::regex_search(r.out, total, std::regex(R"(s, (\d+) steps\))"))) << r.out;
  ASSERT_TRUE(std::regex_search(
      r.out, split,
      std::regex(R"(steps      (\d+) with prompt tokens in [0-9.]+ s \([0-9.]+ ms each; (\d+) )"
                 R"(prompt, (\d+) sampled tokens\), (\d+) decode only in [0-9.]+ s \([0-9.]+ )"
                 R"(ms each; (\d+) sampled tokens\))")))
      << r.out;
  EXPECT_EQ(std::stoi(split[1]) + std::stoi(split[4]), std::stoi(total[1])) << r.out;
  EXPECT_GE(std::stoi(split[1]), 2) << r.out;  // two prompts at once, then the third
  EXPECT_EQ(std::stoi(split[2]), 24) << r.out;
  EXPECT_EQ(std::stoi(split[3]) + std::stoi(split[5]), 9) << r.out;
}

}  // namespace
}  // namespace fp8llm::test
