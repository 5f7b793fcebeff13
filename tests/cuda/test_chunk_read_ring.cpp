// The read ring's failures: a chunk that runs past the end of its file, a descriptor that is not
// a regular file, and a chunk larger than a slot are errors naming the file and the bytes, raised
// on the thread that waits for the chunk, and the ring stops without hanging. These paths fail
// before any slot is registered, so they need no CUDA device and run everywhere.
#include <fcntl.h>
#include <gtest/gtest.h>
#include <unistd.h>

#include <fstream>
#include <string>
#include <vector>

#include "backend/cuda/loading/chunk_read_ring.h"
#include "core/error.h"
#include "test_util.h"

namespace fp8llm::cuda {
namespace {

// An open descriptor, closed with the object.
class Fd {
 public:
  explicit Fd(const std::filesystem::path& path) : fd_(::open(path.c_str(), O_RDONLY)) {
    EXPECT_GE(fd_, 0) << path;
  }
  ~Fd() {
    if (fd_ >= 0) ::close(fd_);
  }
  Fd(const Fd&) = delete;
  Fd& operator=(const Fd&) = delete;
  int get() const { return fd_; }

 private:
  int fd_;
};

void write_bytes(const std::filesystem::path& path, size_t n) {
  std::ofstream out(path, std::ios::binary);
  out << std::string(n, 'x');
}

TEST(ChunkReadRing, ChunkPastTheEndOfItsFileNamesFileAndBytes) {
  test::TempDir dir;
  write_bytes(dir / "short.safetensors", 1000);
  Fd fd(dir / "short.safetensors");
  const std::string path = (dir / "short.safetensors").string();
  // The first chunk is whole; the second runs 2,000 bytes past the end of the file.
  std::vector<ChunkReadRing::Range> chunks = {{fd.get(), path, 0, 500},
                                              {fd.get(), path, 500, 3000}};
  const std::string msg = test::error_of([&] {
    ChunkReadRing ring(chunks, 2, 4096, 3, 256);
    ring.wait_filled(1);
  });
  EXPECT_NE(msg.find(path), std::string::npos) << msg;
  EXPECT_NE(msg.find("unexpected end of file"), std::string::npos) << msg;
  EXPECT_NE(msg.find("..3000"), std::string::npos) << msg;
}

TEST(ChunkReadRing, DirectoryWhereAFileBelongsIsAnError) {
  test::TempDir dir;
  Fd fd(dir.path());
  const std::string path = dir.path().string();
  const std::string msg = test::error_of([&] {
    ChunkReadRing ring({{fd.get(), path, 0, 4096}}, 4, 4096, 2, 4096);
    ring.wait_filled(0);
  });
  EXPECT_NE(msg.find(path), std::string::npos) << msg;
  EXPECT_NE(msg.find("reading bytes 0..4096 failed"), std::string::npos) << msg;
}

TEST(ChunkReadRing, ChunkLargerThanASlotIsRefused) {
  test::TempDir dir;
  write_bytes(dir / "a.safetensors", 100);
  Fd fd(dir / "a.safetensors");
  const std::string path = (dir / "a.safetensors").string();
  const std::string msg = test::error_of([&] {
    ChunkReadRing ring({{fd.get(), path, 0, 8193}}, 2, 8192, 1, 4096);
  });
  EXPECT_NE(msg.find(path), std::string::npos) << msg;
  EXPECT_NE(msg.find("does not fit a ring slot of 8192"), std::string::npos) << msg;
}

// A reader's failure stops the others, and the ring is destroyed with chunks unread and readers
// waiting for slots that were never handed back: nothing waits forever.
TEST(ChunkReadRing, FailureStopsReadersWaitingForSlots) {
  test::TempDir dir;
  write_bytes(dir / "b.safetensors", 4096 + 100);
  Fd fd(dir / "b.safetensors");
  const std::string path = (dir / "b.safetensors").string();
  std::vector<ChunkReadRing::Range> chunks;
  for (uint64_t c = 0; c < 6; ++c) chunks.push_back({fd.get(), path, c * 4096, (c + 1) * 4096});
  const std::string msg = test::error_of([&] {
    ChunkReadRing ring(chunks, 2, 4096, 4, 1024);
    ring.wait_filled(1);  // chunk 1 ends 3,996 bytes short; chunk 2 waits for chunk 0's slot
  });
  EXPECT_NE(msg.find("unexpected end of file"), std::string::npos) << msg;
  EXPECT_NE(msg.find("..8192"), std::string::npos) << msg;
}

}  // namespace
}  // namespace fp8llm::cuda
