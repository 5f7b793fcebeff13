// Helpers shared by the tests: fixture paths, temporary directories, error comparisons.
#pragma once

#include <gtest/gtest.h>

#include <algorithm>
#include <filesystem>
#include <functional>
#include <string>
#include <vector>

namespace fp8llm::test {

// tests/data/<rel>
inline std::filesystem::path data_path(const std::string& rel = "") {
  return std::filesystem::path(FP8LLM_TEST_DATA_DIR) / rel;
}

// models/<rel>: the models shipped with the project.
inline std::filesystem::path models_path(const std::string& rel = "") {
  return std::filesystem::path(FP8LLM_MODELS_DIR) / rel;
}

// A parameterized case over a fixture model and a --quantization mode, and its gtest name
// ("<model>_<mode>", dashes as underscores).
struct ModelCase {
  std::string model;
  std::string quantization;
};
inline std::string model_case_name(const ::testing::TestParamInfo<ModelCase>& info) {
  std::string name = info.param.model + "_" + info.param.quantization;
  std::replace(name.begin(), name.end(), '-', '_');
  return name;
}

// A fresh directory removed when the object goes out of scope.
class TempDir {
 public:
  TempDir();
  ~TempDir();
  TempDir(const TempDir&) = delete;
  TempDir& operator=(const TempDir&) = delete;
  const std::filesystem::path& path() const { return path_; }
  std::filesystem::path operator/(const std::string& name) const { return path_ / name; }

 private:
  std::filesystem::path path_;
};

// Copies a fixture model directory into `dst` (so a test can corrupt its copy).
void copy_dir(const std::filesystem::path& src, const std::filesystem::path& dst);

// The message of the fp8llm::Error that `f` throws, or "" when it throws none (anything else
// thrown goes on up).
std::string error_of(const std::function<void()>& f);

// ||a - b|| / ||b||, in double.
double rel_l2(const float* a, const float* b, size_t n);
inline double rel_l2(const std::vector<float>& a, const std::vector<float>& b) {
  EXPECT_EQ(a.size(), b.size());
  return rel_l2(a.data(), b.data(), std::min(a.size(), b.size()));
}

// The reading end of a FIFO, open before anything writes into it (so that a writer's open does not
// wait) and non-blocking: drain() returns what was written and closed, at most a pipe's capacity
// (64 KiB), and an empty string at once when nothing was, instead of hanging.
class FifoReader {
 public:
  explicit FifoReader(const std::filesystem::path& fifo);
  ~FifoReader();
  FifoReader(const FifoReader&) = delete;
  FifoReader& operator=(const FifoReader&) = delete;
  std::string drain();

 private:
  int fd_ = -1;
};

// Runs the fp8llm command line with `args` (shell-quoted by the caller) and `stdin_text` as its
// standard input, returning the exit code and capturing stdout and stderr. With
// `timeout_seconds`, a run that takes longer is killed and exits 124 (coreutils' timeout), so a
// test of something that used to hang fails instead of hanging.
struct CliResult {
  int exit_code;
  std::string out;
  std::string err;
};
CliResult run_cli(const std::string& args, const std::string& stdin_text = "",
                  int timeout_seconds = 0);

}  // namespace fp8llm::test
