#include "core/file_util.h"

#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstring>
#include <fstream>
#include <random>
#include <sstream>

#include "core/error.h"

namespace fp8llm {

std::string read_text_file(const std::filesystem::path& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) fail("{}: cannot open: {}", path.string(), std::strerror(errno));
  std::ostringstream ss;
  ss << in.rdbuf();
  if (in.bad()) fail("{}: read error", path.string());
  return ss.str();
}

void write_file_atomically(const std::filesystem::path& path,
                           const std::function<void(std::FILE*)>& write) {
  std::random_device rd;
  const auto tmp = path.parent_path() /
                   fmt::format(".{}.tmp-{:08x}", path.filename().string(), rd());
  std::FILE* f = std::fopen(tmp.c_str(), "wb");
  if (!f) fail("{}: cannot create: {}", tmp.string(), std::strerror(errno));
  try {
    write(f);
    if (std::fflush(f) != 0 || ::fsync(fileno(f)) != 0)
      fail("{}: write failed: {}", path.string(), std::strerror(errno));
    if (std::fclose(f) != 0) {
      f = nullptr;
      fail("{}: write failed: {}", path.string(), std::strerror(errno));
    }
    f = nullptr;
    std::filesystem::rename(tmp, path);
  } catch (...) {
    if (f) std::fclose(f);
    std::error_code ignored;
    std::filesystem::remove(tmp, ignored);
    throw;
  }
}

void write_text_file_atomically(const std::filesystem::path& path, std::string_view text) {
  write_file_atomically(path, [&](std::FILE* f) {
    if (std::fwrite(text.data(), 1, text.size(), f) != text.size())
      fail("{}: write failed: {}", path.string(), std::strerror(errno));
  });
}

}  // namespace fp8llm
