#include "test_util.h"

#include <fcntl.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cmath>
#include <cstdio>
#include <fstream>
#include <random>
#include <sstream>

#include "core/error.h"

namespace fp8llm::test {

TempDir::TempDir() {
  std::random_device rd;
  path_ = std::filesystem::temp_directory_path() /
          ("fp8llm-test-" + std::to_string(rd()) + "-" + std::to_string(rd()));
  std::filesystem::create_directories(path_);
}

TempDir::~TempDir() {
  std::error_code ignored;
  std::filesystem::remove_all(path_, ignored);
}

std::string error_of(const std::function<void()>& f) {
  try {
    f();
  } catch (const Error& e) {
    return e.what();
  }
  return "";
}

void copy_dir(const std::filesystem::path& src, const std::filesystem::path& dst) {
  std::filesystem::create_directories(dst);
  for (const auto& e : std::filesystem::directory_iterator(src)) {
    const auto target = dst / e.path().filename();
    std::filesystem::copy_file(e.path(), target, std::filesystem::copy_options::overwrite_existing);
    std::filesystem::permissions(target, std::filesystem::perms::owner_write,
                                 std::filesystem::perm_options::add);
  }
}

double rel_l2(const float* a, const float* b, size_t n) {
  double num = 0, den = 0;
  for (size_t i = 0; i < n; ++i) {
    const double d = static_cast<double>(a[i]) - b[i];
    num += d * d;
    den += static_cast<double>(b[i]) * b[i];
  }
  if (std::isnan(num)) return INFINITY;
  return den == 0 ? std::sqrt(num) : std::sqrt(num / den);
}

static std::string slurp(const std::filesystem::path& p) {
  std::ifstream in(p, std::ios::binary);
  std::ostringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

FifoReader::FifoReader(const std::filesystem::path& fifo)
    : fd_(::open(fifo.c_str(), O_RDONLY | O_NONBLOCK | O_CLOEXEC)) {
  EXPECT_GE(fd_, 0) << fifo;
}

FifoReader::~FifoReader() {
  if (fd_ >= 0) ::close(fd_);
}

std::string FifoReader::drain() {
  std::string got;
  char buf[4096];
  ssize_t n = 0;
  while (fd_ >= 0 && (n = ::read(fd_, buf, sizeof buf)) > 0)
    got.append(buf, static_cast<size_t>(n));
  return got;
}

CliResult run_cli(const std::string& args, const std::string& stdin_text, int timeout_seconds) {
  TempDir tmp;
  const auto out = tmp / "out", err = tmp / "err", in = tmp / "in";
  std::ofstream(in, std::ios::binary) << stdin_text;
  const std::string timeout =
      timeout_seconds > 0 ? "timeout -k 5 " + std::to_string(timeout_seconds) + " " : "";
  const std::string cmd = timeout + std::string(FP8LLM_CLI_PATH) + " " + args + " >" +
                          out.string() + " 2>" + err.string() + " <" + in.string();
  const int status = std::system(cmd.c_str());
  CliResult r;
  r.exit_code = WIFEXITED(status) ? WEXITSTATUS(status) : -1;
  r.out = slurp(out);
  r.err = slurp(err);
  return r;
}

}  // namespace fp8llm::test
