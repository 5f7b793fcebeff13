#include "core/file_util.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <random>
#include <utility>

#include "core/error.h"

namespace fp8llm {
namespace fs = std::filesystem;

std::string_view file_type_name(mode_t mode) {
  if (S_ISREG(mode)) return "a regular file";
  if (S_ISDIR(mode)) return "a directory";
  if (S_ISFIFO(mode)) return "a FIFO";
  if (S_ISCHR(mode)) return "a character device";
  if (S_ISBLK(mode)) return "a block device";
  if (S_ISSOCK(mode)) return "a socket";
  if (S_ISLNK(mode)) return "a symbolic link";
  return "not a regular file";
}

namespace {

[[noreturn]] void fail_not_regular(const fs::path& path, mode_t mode) {
  fail("{}: is {}, not a regular file", path.string(), file_type_name(mode));
}

}  // namespace

void require_regular_file(const fs::path& path) {
  struct stat st {};
  if (::stat(path.c_str(), &st) != 0)
    fail("{}: cannot open: {}", path.string(), std::strerror(errno));
  if (!S_ISREG(st.st_mode)) fail_not_regular(path, st.st_mode);
}

int open_regular_file(const fs::path& path, uint64_t* size) {
  // Checked before opening, since opening a device can have effects of its own; O_NONBLOCK keeps a
  // FIFO swapped in meanwhile from blocking the open, and fstat then sees it.
  require_regular_file(path);
  const int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC | O_NONBLOCK | O_NOCTTY);
  if (fd < 0) fail("{}: cannot open: {}", path.string(), std::strerror(errno));
  struct stat st {};
  if (::fstat(fd, &st) != 0) {
    const int err = errno;
    ::close(fd);
    fail("{}: cannot stat: {}", path.string(), std::strerror(err));
  }
  if (!S_ISREG(st.st_mode)) {
    ::close(fd);
    fail_not_regular(path, st.st_mode);
  }
  if (size) *size = static_cast<uint64_t>(st.st_size);
  return fd;
}

std::string read_text_file(const fs::path& path) {
  uint64_t size = 0;
  const int fd = open_regular_file(path, &size);
  std::string text;
  text.reserve(static_cast<size_t>(size));
  char buf[1 << 16];
  for (;;) {
    const ssize_t n = ::read(fd, buf, sizeof buf);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) {
      const int err = errno;
      ::close(fd);
      fail("{}: read error: {}", path.string(), std::strerror(err));
    }
    if (n == 0) break;
    text.append(buf, static_cast<size_t>(n));
  }
  ::close(fd);
  return text;
}

namespace {

// The path a chain of symbolic links ends at (the last one may dangle: writing creates its
// target, as a shell redirection does).
fs::path follow_links(fs::path path) {
  for (int hops = 0;; ++hops) {
    struct stat st {};
    if (::lstat(path.c_str(), &st) != 0 || !S_ISLNK(st.st_mode)) return path;
    FP8LLM_CHECK(hops < 40, "{}: too many levels of symbolic links", path.string());
    std::error_code ec;
    const fs::path target = fs::read_symlink(path, ec);
    if (ec) fail("{}: cannot read the link: {}", path.string(), ec.message());
    path = target.is_absolute() ? target : path.parent_path() / target;
  }
}

}  // namespace

OutputFile::OutputFile(fs::path path) : path_(follow_links(std::move(path))) {
  struct stat st {};
  if (::stat(path_.c_str(), &st) == 0 && !S_ISREG(st.st_mode)) {
    if (!S_ISCHR(st.st_mode) && !S_ISFIFO(st.st_mode)) {
      fail("{}: is {}; give a file name (or a character device or FIFO such as /dev/null)",
           path_.string(), file_type_name(st.st_mode));
    }
    // Opening a FIFO waits for its reader, as a shell redirection does.
    const int fd = ::open(path_.c_str(), O_WRONLY | O_CLOEXEC | O_NOCTTY);
    if (fd < 0) fail("{}: cannot open: {}", path_.string(), std::strerror(errno));
    out_ = ::fdopen(fd, "wb");
    if (!out_) {
      const int err = errno;
      ::close(fd);
      fail("{}: cannot open: {}", path_.string(), std::strerror(err));
    }
    direct_ = true;
    return;
  }
  // The temporary file lives next to the target so that rename() is atomic. O_EXCL with a random
  // suffix instead of mkstemp keeps the usual 0666 & ~umask permissions.
  std::random_device rd;
  const fs::path dir = path_.parent_path();
  int fd = -1;
  for (int attempt = 0; fd < 0; ++attempt) {
    tmp_ = dir / fmt::format(".{}.tmp-{:08x}", path_.filename().string(), rd());
    fd = ::open(tmp_.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0666);
    if (fd < 0 && (errno != EEXIST || attempt > 100)) {
      const int err = errno;
      tmp_.clear();
      fail("{}: cannot create a temporary file in {}: {}", path_.string(),
           dir.empty() ? "." : dir.string(), std::strerror(err));
    }
  }
  out_ = ::fdopen(fd, "wb");
  if (!out_) {
    const int err = errno;
    ::close(fd);
    ::unlink(tmp_.c_str());
    tmp_.clear();
    fail("{}: cannot open: {}", path_.string(), std::strerror(err));
  }
}

OutputFile::~OutputFile() {
  if (out_) std::fclose(out_);
  if (!committed_ && !tmp_.empty()) ::unlink(tmp_.c_str());
}

void OutputFile::commit() {
  FP8LLM_CHECK(out_ != nullptr && !committed_, "{}: committed twice", path_.string());
  std::FILE* out = std::exchange(out_, nullptr);
  // A device is not synced: fsync on /dev/null or a pipe fails with EINVAL.
  bool ok = std::fflush(out) == 0 && !std::ferror(out) && (direct_ || ::fsync(::fileno(out)) == 0);
  int err = errno;
  if (std::fclose(out) != 0 && ok) {
    ok = false;
    err = errno;
  }
  if (!ok) fail("{}: write failed: {}", path_.string(), std::strerror(err));
  if (!direct_) {
    std::error_code ec;
    fs::rename(tmp_, path_, ec);
    if (ec)
      fail("{}: cannot rename {} into place: {}", path_.string(), tmp_.string(), ec.message());
  }
  committed_ = true;
}

void write_file_atomically(const fs::path& path, const std::function<void(std::FILE*)>& write) {
  OutputFile file(path);
  write(file.stream());
  file.commit();
}

void write_text_file_atomically(const fs::path& path, std::string_view text) {
  write_file_atomically(path, [&](std::FILE* f) {
    if (std::fwrite(text.data(), 1, text.size(), f) != text.size())
      fail("{}: write failed: {}", path.string(), std::strerror(errno));
  });
}

}  // namespace fp8llm
