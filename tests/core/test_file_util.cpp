// The file-type rules of core/file_util.h: inputs must be regular files (a FIFO is refused at
// once instead of blocking), outputs replace only regular files (a device or FIFO is written in
// place, a directory is refused).
#include <fcntl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <sys/un.h>
#include <unistd.h>

#include <gtest/gtest.h>

#include <cstring>
#include <fstream>
#include <sstream>

#include "core/error.h"
#include "core/file_util.h"
#include "test_util.h"

namespace fp8llm::test {
namespace {

namespace fs = std::filesystem;

std::string slurp(const fs::path& p) {
  std::ifstream in(p, std::ios::binary);
  std::ostringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

mode_t lstat_mode(const fs::path& p) {
  struct stat st {};
  EXPECT_EQ(::lstat(p.c_str(), &st), 0) << p;
  return st.st_mode;
}

size_t entries(const fs::path& dir) {
  return static_cast<size_t>(std::distance(fs::directory_iterator(dir), fs::directory_iterator{}));
}

TEST(FileTypes, ReadTextFileRefusesAFifoAtOnce) {
  TempDir tmp;
  const fs::path fifo = tmp / "config.json";
  ASSERT_EQ(::mkfifo(fifo.c_str(), 0600), 0);
  // No writer ever opens it: a blocking open would hang here.
  EXPECT_EQ(error_of([&] { read_text_file(fifo); }),
            fifo.string() + ": is a FIFO, not a regular file");
}

TEST(FileTypes, ReadTextFileNamesWhatThePathIs) {
  TempDir tmp;
  fs::create_directory(tmp / "dir");
  EXPECT_EQ(error_of([&] { read_text_file(tmp / "dir"); }),
            (tmp / "dir").string() + ": is a directory, not a regular file");
  EXPECT_EQ(error_of([&] { read_text_file("/dev/null"); }),
            "/dev/null: is a character device, not a regular file");
  EXPECT_EQ(error_of([&] { read_text_file(tmp / "absent"); }),
            (tmp / "absent").string() + ": cannot open: No such file or directory");
}

TEST(FileTypes, ReadTextFileFollowsALinkToARegularFile) {
  TempDir tmp;
  std::ofstream(tmp / "real.json") << "{\"a\": 1}";
  fs::create_symlink("real.json", tmp / "link.json");
  EXPECT_EQ(read_text_file(tmp / "link.json"), "{\"a\": 1}");
  fs::create_symlink("absent.json", tmp / "dangling.json");
  EXPECT_NE(error_of([&] { read_text_file(tmp / "dangling.json"); }).find("No such file"),
            std::string::npos);
}

TEST(FileTypes, OpenRegularFileGivesTheSize) {
  TempDir tmp;
  std::ofstream(tmp / "f") << "12345";
  uint64_t size = 0;
  const int fd = open_regular_file(tmp / "f", &size);
  ASSERT_GE(fd, 0);
  ::close(fd);
  EXPECT_EQ(size, 5u);
}

TEST(FileTypes, OutputReplacesARegularFileWhole) {
  TempDir tmp;
  std::ofstream(tmp / "out.txt") << "old contents, longer than the new";
  write_text_file_atomically(tmp / "out.txt", "new");
  EXPECT_EQ(slurp(tmp / "out.txt"), "new");
  EXPECT_EQ(entries(tmp.path()), 1u);  // no temporary file left
}

TEST(FileTypes, OutputThatFailsLeavesTheOldFile) {
  TempDir tmp;
  std::ofstream(tmp / "out.txt") << "old";
  EXPECT_THROW(write_file_atomically(tmp / "out.txt", [](std::FILE*) { fail("stop"); }), Error);
  EXPECT_EQ(slurp(tmp / "out.txt"), "old");
  EXPECT_EQ(entries(tmp.path()), 1u);
}

TEST(FileTypes, OutputThroughALinkWritesItsTargetAndKeepsTheLink) {
  TempDir tmp;
  fs::create_directory(tmp / "d");
  std::ofstream(tmp / "d" / "target.txt") << "old";
  fs::create_symlink("d/target.txt", tmp / "link.txt");
  write_text_file_atomically(tmp / "link.txt", "new");
  EXPECT_TRUE(S_ISLNK(lstat_mode(tmp / "link.txt")));
  EXPECT_EQ(slurp(tmp / "d" / "target.txt"), "new");
  // A dangling link gets its target created, as a shell redirection does.
  fs::create_symlink("d/created.txt", tmp / "dangling.txt");
  write_text_file_atomically(tmp / "dangling.txt", "made");
  EXPECT_TRUE(S_ISLNK(lstat_mode(tmp / "dangling.txt")));
  EXPECT_EQ(slurp(tmp / "d" / "created.txt"), "made");
}

TEST(FileTypes, OutputToAFifoWritesIntoIt) {
  TempDir tmp;
  const fs::path fifo = tmp / "pipe";
  ASSERT_EQ(::mkfifo(fifo.c_str(), 0600), 0);
  FifoReader reader(fifo);
  write_text_file_atomically(fifo, "through the pipe");
  EXPECT_EQ(reader.drain(), "through the pipe");
  EXPECT_TRUE(S_ISFIFO(lstat_mode(fifo)));
  EXPECT_EQ(entries(tmp.path()), 1u);
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

TEST(FileTypes, OutputToTheNullDeviceWritesIntoIt) {
  TempDir tmp;
  const fs::path null = char_device(tmp, "null", 3);
  if (null.empty()) GTEST_SKIP() << "mknod is not allowed here";
  if (!S_ISCHR(lstat_mode(null))) GTEST_SKIP() << null << " is not a character device";
  write_text_file_atomically(null, "discarded");
  EXPECT_TRUE(S_ISCHR(lstat_mode(null)));
}

TEST(FileTypes, OutputToTheFullDeviceIsAWriteError) {
  TempDir tmp;
  const fs::path full = char_device(tmp, "full", 7);
  if (full.empty()) GTEST_SKIP() << "mknod is not allowed here";
  if (!S_ISCHR(lstat_mode(full))) GTEST_SKIP() << full << " is not a character device";
  EXPECT_EQ(error_of([&] { write_text_file_atomically(full, "no room"); }),
            full.string() + ": write failed: No space left on device");
  EXPECT_TRUE(S_ISCHR(lstat_mode(full)));
}

TEST(FileTypes, OutputRefusesADirectoryAndASocket) {
  TempDir tmp;
  fs::create_directory(tmp / "dir");
  EXPECT_EQ(error_of([&] { write_text_file_atomically(tmp / "dir", "x"); }),
            (tmp / "dir").string() +
                ": is a directory; give a file name (or a character device or FIFO such as "
                "/dev/null)");
  EXPECT_TRUE(fs::is_directory(tmp / "dir"));

  const fs::path sock = tmp / "sock";
  const int fd = ::socket(AF_UNIX, SOCK_STREAM, 0);
  ASSERT_GE(fd, 0);
  sockaddr_un addr{};
  addr.sun_family = AF_UNIX;
  ASSERT_LT(sock.string().size(), sizeof addr.sun_path);
  std::strcpy(addr.sun_path, sock.c_str());
  ASSERT_EQ(::bind(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr), 0);
  EXPECT_NE(error_of([&] { write_text_file_atomically(sock, "x"); }).find(": is a socket;"),
            std::string::npos);
  ::close(fd);
  EXPECT_TRUE(S_ISSOCK(lstat_mode(sock)));
}

}  // namespace
}  // namespace fp8llm::test
