// Streaming a checkpoint to the device: every tensor's device bytes equal its file bytes, whether
// staged (consumed on the device) or copied straight to its final address in chunks, and a read
// error names the file and tensor without hanging. Skipped where no CUDA device is present.
#include <gtest/gtest.h>

#include <algorithm>
#include <cstring>
#include <filesystem>
#include <map>
#include <string>
#include <vector>

#include "backend/cuda/loading/device_stream.h"
#include "backend/cuda/runtime/cuda_check.h"
#include "backend/cuda/runtime/device.h"
#include "backend/cuda/runtime/device_buffer.h"
#include "core/error.h"
#include "formats/checkpoint.h"
#include "formats/hf_config.h"
#include "loader/load_plan.h"
#include "test_util.h"

namespace fp8llm::cuda {
namespace {

// Keeps a device copy of every tensor: staged ones are copied out of the staging buffer on the
// consume stream, direct ones land in their buffer. Every other tensor (by file order) is direct.
class CopyTarget : public DeviceStreamTarget {
 public:
  void* direct_destination(const PlannedTensor& t) override {
    const bool direct = (order_++ % 2) == 1;
    DeviceBuffer& buf = buffers_[t.spec.name];
    buf = DeviceBuffer(std::max<size_t>(t.source.info->nbytes, 1));
    if (direct) {
      ++direct_count;
      return buf.data();
    }
    largest_staged = std::max<uint64_t>(largest_staged, t.source.info->nbytes);
    return nullptr;
  }
  void consume_on_device(const PlannedTensor& t, const void* src, cudaStream_t stream) override {
    ++staged_count;
    CUDA_CHECK(cudaMemcpyAsync(buffers_.at(t.spec.name).data(), src, t.source.info->nbytes,
                               cudaMemcpyDeviceToDevice, stream));
  }
  void finish() override { finished = true; }

  std::vector<std::byte> download(const std::string& name, size_t bytes) const {
    std::vector<std::byte> out(bytes);
    buffers_.at(name).download(out.data(), bytes);
    return out;
  }

  int direct_count = 0;
  int staged_count = 0;
  uint64_t largest_staged = 0;
  bool finished = false;

 private:
  size_t order_ = 0;
  std::map<std::string, DeviceBuffer> buffers_;
};

class DeviceStream : public ::testing::Test {
 protected:
  void SetUp() override {
    if (!device_available()) GTEST_SKIP() << "no CUDA device";
  }
};

void expect_device_matches_file(const Checkpoint& checkpoint, const LoadPlan& plan,
                                const CopyTarget& target) {
  for (const PlannedTensor& t : plan.tensors) {
    const TensorView file = checkpoint.view(t.source.info->name);
    const std::vector<std::byte> dev = target.download(t.spec.name, file.nbytes);
    EXPECT_EQ(std::memcmp(dev.data(), file.data, file.nbytes), 0) << t.spec.name;
  }
}

TEST_F(DeviceStream, DeviceBytesEqualFileBytes) {
  const auto dir = test::data_path("tiny-qwen2");
  const Checkpoint checkpoint = Checkpoint::open(dir);
  const LoadPlan plan = build_load_plan(checkpoint, load_model_config(dir), std::nullopt);
  ASSERT_GT(checkpoint.files().size(), 1u);

  // Small chunks and pieces: direct and staged tensors span several chunks, several readers fill
  // one slot, and two slots take turns over many chunks. None, some or all of the chunks are
  // read into the slots (share -1: files not registered, so all of them).
  const std::vector<DeviceStreamOptions> cases = {
      {.staging_buffers = 2, .chunk_bytes = 4096, .reader_threads = 1, .piece_bytes = 4096},
      {.staging_buffers = 3, .chunk_bytes = 3000, .reader_threads = 5, .piece_bytes = 1000},
      {},
  };
  for (const double share : {-1.0, 0.0, 0.4, 1.0}) {
    for (DeviceStreamOptions options : cases) {
      const bool register_files = share >= 0;
      SCOPED_TRACE(register_files ? "read share " + std::to_string(share) : "not registered");
      options.register_files = register_files;
      options.read_slots = 2;
      if (register_files) options.pread_share = share;
      CopyTarget target;
      std::vector<uint64_t> progress;
      const DeviceStreamStats stats =
          stream_to_device(plan, target, options, [&](uint64_t done, uint64_t total) {
            EXPECT_EQ(total, plan.source_bytes);
            progress.push_back(done);
          });
      EXPECT_TRUE(target.finished);
      EXPECT_EQ(stats.stream.bytes_read, plan.source_bytes);
      EXPECT_EQ(stats.stream.tensors, plan.tensors.size());
      EXPECT_GT(stats.stream.seconds, 0.0);
      EXPECT_GT(target.direct_count, 0);
      EXPECT_EQ(target.direct_count + target.staged_count, static_cast<int>(plan.tensors.size()));
      ASSERT_EQ(progress.size(), plan.tensors.size());
      EXPECT_EQ(progress.back(), plan.source_bytes);
      EXPECT_TRUE(std::is_sorted(progress.begin(), progress.end()));
      // The staging buffers hold the largest staged tensor.
      EXPECT_GE(stats.staging_device_bytes,
                std::max<size_t>(options.staging_buffers, 2) * target.largest_staged);
      if (share == 0.0) {
        EXPECT_EQ(stats.pread_bytes, 0u);
      }
      if (!register_files || share == 1.0) {
        EXPECT_EQ(stats.pread_bytes, plan.source_bytes);
      }
      if (share == 0.4 && options.chunk_bytes <= 4096) {
        EXPECT_GT(stats.pread_bytes, 0u);
        EXPECT_LT(stats.pread_bytes, plan.source_bytes);
      }
      expect_device_matches_file(checkpoint, plan, target);
    }
  }
}

TEST_F(DeviceStream, TruncatedFileNamesFileAndTensor) {
  test::TempDir tmp;
  const auto src = test::data_path("tiny-qwen2");
  for (const auto& e : std::filesystem::directory_iterator(src))
    std::filesystem::copy_file(e.path(), tmp.path() / e.path().filename());
  const Checkpoint checkpoint = Checkpoint::open(tmp.path());
  const LoadPlan plan = build_load_plan(checkpoint, load_model_config(tmp.path()), std::nullopt);
  // Cut the last shard after the checkpoint was opened (the header was valid), in the middle of
  // its last tensor.
  const CheckpointTensor& last = checkpoint.tensors().back();
  std::filesystem::resize_file(last.file->path(), last.info->offset + last.info->nbytes / 2);

  for (const double share : {-1.0, 0.0, 0.4, 1.0}) {
    for (size_t readers : {1, 4}) {
      CopyTarget target;
      try {
        stream_to_device(plan, target,
                         {.staging_buffers = 2,
                          .chunk_bytes = 1024,
                          .reader_threads = readers,
                          .piece_bytes = 4096,
                          .register_files = share >= 0,
                          .pread_share = std::max(share, 0.0)});
        FAIL() << "expected an error";
      } catch (const Error& e) {
        const std::string msg = e.what();
        EXPECT_NE(msg.find(last.file->path().filename().string()), std::string::npos) << msg;
        EXPECT_NE(msg.find("'" + last.info->name + "'"), std::string::npos) << msg;
        EXPECT_NE(msg.find("unexpected end of file"), std::string::npos) << msg;
      }
      EXPECT_FALSE(target.finished);
    }
  }
}

// The target's own failure (thrown while consuming) reaches the caller after the readers stop,
// whether they read every chunk into the page-locked slots or a share of them.
TEST_F(DeviceStream, TargetErrorPropagates) {
  const auto dir = test::data_path("tiny-qwen2");
  const Checkpoint checkpoint = Checkpoint::open(dir);
  const LoadPlan plan = build_load_plan(checkpoint, load_model_config(dir), std::nullopt);
  struct Failing : DeviceStreamTarget {
    void* direct_destination(const PlannedTensor&) override { return nullptr; }
    void consume_on_device(const PlannedTensor& t, const void*, cudaStream_t) override {
      if (++calls == 3) fail("{}: rejected", t.spec.name);
    }
    int calls = 0;
  };
  const std::vector<DeviceStreamOptions> cases = {
      {.staging_buffers = 2, .reader_threads = 3, .register_files = false},
      {.staging_buffers = 2, .chunk_bytes = 4096, .reader_threads = 3, .pread_share = 1.0},
      {.staging_buffers = 2, .chunk_bytes = 4096, .reader_threads = 3, .pread_share = 0.4},
  };
  for (const DeviceStreamOptions& options : cases) {
    Failing target;
    EXPECT_THROW(
        {
          try {
            stream_to_device(plan, target, options);
          } catch (const Error& e) {
            EXPECT_NE(std::string(e.what()).find(plan.tensors[2].spec.name + ": rejected"),
                      std::string::npos)
                << e.what();
            throw;
          }
        },
        Error);
    EXPECT_EQ(target.calls, 3);
  }
}

}  // namespace
}  // namespace fp8llm::cuda
