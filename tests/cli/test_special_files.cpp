// Special files where the program expects regular ones: a FIFO or directory in place of a model
// file is refused at once, naming what it is (a FIFO used to block the load forever); an output
// path that is a device or FIFO is written in place, never renamed over (as root, a rename turned
// /dev/full into a regular file).
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <unistd.h>

#include <gtest/gtest.h>

#include <algorithm>

#include "formats/safetensors.h"
#include "test_util.h"

namespace fp8llm::test {
namespace {

namespace fs = std::filesystem;

size_t count_lines(const std::string& s) {
  return static_cast<size_t>(std::count(s.begin(), s.end(), '\n'));
}

mode_t lstat_mode(const fs::path& p) {
  struct stat st {};
  EXPECT_EQ(::lstat(p.c_str(), &st), 0) << p;
  return st.st_mode;
}

struct SpecialInput {
  std::string name;     // gtest name
  std::string file;     // the model file replaced
  std::string command;  // the subcommand and its flags; DIR is the model copy
};

class SpecialInputs : public ::testing::TestWithParam<SpecialInput> {};

std::string with_dir(std::string command, const fs::path& dir) {
  const size_t at = command.find("DIR");
  return command.replace(at, 3, dir.string());
}

TEST_P(SpecialInputs, AFifoIsRefusedAtOnce) {
  const SpecialInput& c = GetParam();
  TempDir tmp;
  const fs::path dir = tmp / "model";
  copy_dir(data_path("tiny-llama"), dir);
  fs::remove(dir / c.file);
  ASSERT_EQ(::mkfifo((dir / c.file).c_str(), 0600), 0);
  // Nothing ever writes into the FIFO: a blocking read would run into the timeout (exit 124).
  const CliResult r = run_cli(with_dir(c.command, dir), "", 60);
  EXPECT_EQ(r.exit_code, 2) << r.err;
  EXPECT_EQ(r.err, "error: " + (dir / c.file).string() + ": is a FIFO, not a regular file\n");
  EXPECT_TRUE(S_ISFIFO(lstat_mode(dir / c.file)));
}

TEST_P(SpecialInputs, ADirectoryIsNamed) {
  const SpecialInput& c = GetParam();
  TempDir tmp;
  const fs::path dir = tmp / "model";
  copy_dir(data_path("tiny-llama"), dir);
  fs::remove(dir / c.file);
  fs::create_directory(dir / c.file);
  const CliResult r = run_cli(with_dir(c.command, dir), "", 60);
  EXPECT_EQ(r.exit_code, 2) << r.err;
  EXPECT_EQ(r.err, "error: " + (dir / c.file).string() + ": is a directory, not a regular file\n");
}

INSTANTIATE_TEST_SUITE_P(
    All, SpecialInputs,
    ::testing::Values(SpecialInput{"Config", "config.json", "inspect DIR"},
                      SpecialInput{"Weights", "model.safetensors", "inspect DIR"},
                      SpecialInput{"WeightsOnLoad", "model.safetensors",
                                   "generate --model DIR --prompt-ids 1 --quiet"},
                      SpecialInput{"Index", "model.safetensors.index.json", "inspect DIR"},
                      SpecialInput{"Tokenizer", "tokenizer.json", "tokenize --model DIR --text hi"},
                      SpecialInput{"TokenizerConfig", "tokenizer_config.json",
                                   "tokenize --model DIR --text hi"},
                      SpecialInput{"GenerationConfig", "generation_config.json",
                                   "run --model DIR --prompt hi --max-tokens 1"},
                      SpecialInput{"ChatTemplate", "chat_template.jinja",
                                   "run --model DIR --chat --prompt hi --max-tokens 1"}),
    [](const auto& p) { return p.param.name; });

TEST(SpecialInputs, QuantizationConfigFileIsRefused) {
  TempDir tmp;
  const fs::path fifo = tmp / "config.json";
  ASSERT_EQ(::mkfifo(fifo.c_str(), 0600), 0);
  const CliResult r = run_cli("generate --model " + data_path("tiny-llama").string() +
                                  " --prompt-ids 1 --quantization-config @" + fifo.string(),
                              "", 60);
  EXPECT_EQ(r.exit_code, 2) << r.err;
  EXPECT_EQ(r.err, "error: --quantization-config @" + fifo.string() + ": " + fifo.string() +
                       ": is a FIFO, not a regular file\n");
}

std::string generate_logits_to(const fs::path& out) {
  return "generate --model " + data_path("tiny-llama").string() +
         " -q none --max-tokens 1 --prompt-ids 1,2 --quiet --logits-out " + out.string();
}

// As root, a character device of our own (the null or full device, made with mknod in the
// temporary directory), so that a regression renames over that node, never over /dev/null; empty
// where root cannot make one, and the test is skipped rather than risk the real device. As a
// user, the real device, which such a rename could not replace.
fs::path char_device(const TempDir& tmp, const std::string& name, unsigned minor) {
  if (::geteuid() != 0) return fs::path("/dev") / name;
  const fs::path own = tmp / name;
  return ::mknod(own.c_str(), S_IFCHR | 0666, makedev(1, minor)) == 0 ? own : fs::path();
}

TEST(SpecialOutputs, LogitsToTheNullDevice) {
  TempDir tmp;
  const fs::path null = char_device(tmp, "null", 3);
  if (null.empty()) GTEST_SKIP() << "mknod is not allowed here";
  if (!S_ISCHR(lstat_mode(null))) GTEST_SKIP() << null << " is not a character device";
  const CliResult r = run_cli(generate_logits_to(null), "", 120);
  EXPECT_EQ(r.exit_code, 0) << r.err;
  EXPECT_TRUE(S_ISCHR(lstat_mode(null)));
  EXPECT_FALSE(r.out.empty());
}

TEST(SpecialOutputs, LogitsToTheFullDeviceIsAWriteError) {
  TempDir tmp;
  const fs::path full = char_device(tmp, "full", 7);
  if (full.empty()) GTEST_SKIP() << "mknod is not allowed here";
  if (!S_ISCHR(lstat_mode(full))) GTEST_SKIP() << full << " is not a character device";
  const CliResult r = run_cli(generate_logits_to(full), "", 120);
  EXPECT_EQ(r.exit_code, 2) << r.err;
  EXPECT_EQ(r.err, "error: " + full.string() + ": write failed: No space left on device\n");
  EXPECT_TRUE(S_ISCHR(lstat_mode(full)));
}

TEST(SpecialOutputs, LogitsIntoAFifo) {
  TempDir tmp;
  const fs::path fifo = tmp / "logits";
  ASSERT_EQ(::mkfifo(fifo.c_str(), 0600), 0);
  FifoReader reader(fifo);
  const CliResult r = run_cli(generate_logits_to(fifo), "", 120);
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_TRUE(S_ISFIFO(lstat_mode(fifo)));
  const std::string bytes = reader.drain();
  const SafetensorsHeader h = parse_safetensors_header(
      {reinterpret_cast<const std::byte*>(bytes.data()), bytes.size()}, bytes.size(), "fifo");
  ASSERT_EQ(h.tensors.size(), 1u);
  EXPECT_EQ(h.tensors[0].shape, (Shape{2, 1024}));
  EXPECT_EQ(std::distance(fs::directory_iterator(tmp.path()), fs::directory_iterator{}), 1);
}

TEST(SpecialOutputs, LogitsToADirectoryIsRefused) {
  TempDir tmp;
  fs::create_directory(tmp / "out");
  const CliResult r = run_cli(generate_logits_to(tmp / "out"), "", 120);
  EXPECT_EQ(r.exit_code, 2) << r.err;
  EXPECT_EQ(count_lines(r.err), 1u) << r.err;
  EXPECT_NE(r.err.find(": is a directory; give a file name"), std::string::npos) << r.err;
  EXPECT_TRUE(fs::is_directory(tmp / "out"));
}

}  // namespace
}  // namespace fp8llm::test
