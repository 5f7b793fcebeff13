// The CUDA RAII wrappers and error checks. Skipped where no CUDA device is present.
#include <gtest/gtest.h>

#include <algorithm>
#include <cstring>
#include <numeric>
#include <stdexcept>
#include <string>
#include <vector>

#include "backend/cuda/runtime/cublaslt_handle.h"
#include "backend/cuda/runtime/cuda_check.h"
#include "backend/cuda/runtime/device.h"
#include "backend/cuda/runtime/device_buffer.h"
#include "backend/cuda/runtime/event.h"
#include "backend/cuda/runtime/pinned_buffer.h"
#include "backend/cuda/runtime/stream.h"

namespace fp8llm::cuda {
namespace {

class CudaRuntime : public ::testing::Test {
 protected:
  void SetUp() override {
    if (!device_available()) GTEST_SKIP() << "no CUDA device";
  }
};

TEST_F(CudaRuntime, DescribesTheDevice) {
  const std::string d = device_description();
  EXPECT_NE(d.find("sm_"), std::string::npos) << d;
  EXPECT_GT(device_compute_capability(), 0);
  std::printf("device: %s\n", d.c_str());
}

TEST_F(CudaRuntime, DeviceBufferRoundTripAndMove) {
  std::vector<int> host(1000);
  std::iota(host.begin(), host.end(), -17);
  DeviceBuffer a = to_device(host);
  EXPECT_EQ(a.size(), host.size() * sizeof(int));
  DeviceBuffer b = std::move(a);
  EXPECT_EQ(a.data(), nullptr);  // NOLINT(bugprone-use-after-move): moved-from is empty
  EXPECT_EQ(a.size(), 0u);
  EXPECT_EQ(to_host<int>(b, host.size()), host);

  DeviceBuffer c(16);
  c = std::move(b);
  EXPECT_EQ(to_host<int>(c, host.size()), host);

  void* before = c.data();
  c.reserve_discard(100);  // already large enough: kept
  EXPECT_EQ(c.data(), before);
  c.reserve_discard(1 << 20);
  EXPECT_GE(c.size(), size_t{1} << 20);
  c.fill_zero();
  const auto zeros = to_host<int>(c, 256);
  EXPECT_TRUE(std::all_of(zeros.begin(), zeros.end(), [](int v) { return v == 0; }));
}

TEST_F(CudaRuntime, DeviceBufferRejectsCopiesPastItsEnd) {
  DeviceBuffer buf(8);
  std::vector<char> host(9);
  EXPECT_THROW(buf.upload(host.data(), host.size()), std::out_of_range);
  EXPECT_THROW(buf.download(host.data(), host.size()), std::out_of_range);
}

TEST_F(CudaRuntime, FailedCallNamesTheCallAndTheError) {
  try {
    DeviceBuffer huge(size_t{1} << 62);
    FAIL() << "a 4 EiB allocation succeeded";
  } catch (const std::runtime_error& e) {
    const std::string msg = e.what();
    EXPECT_NE(msg.find("cudaMalloc"), std::string::npos) << msg;
    EXPECT_NE(msg.find("cudaErrorMemoryAllocation"), std::string::npos) << msg;
  }
  // The runtime stays usable afterwards.
  DeviceBuffer ok(64);
  ok.fill_zero();
}

TEST_F(CudaRuntime, StreamEventAndPinnedCopy) {
  Stream stream;
  Event start;
  Event stop;
  const size_t n = size_t{1} << 22;
  PinnedBuffer src(n);
  PinnedBuffer dst(n);
  for (size_t i = 0; i < n; ++i) src.as<unsigned char>()[i] = static_cast<unsigned char>(i * 7);
  std::memset(dst.data(), 0, n);
  DeviceBuffer dev(n);
  start.record(stream);
  CUDA_CHECK(cudaMemcpyAsync(dev.data(), src.data(), n, cudaMemcpyHostToDevice, stream));
  CUDA_CHECK(cudaMemcpyAsync(dst.data(), dev.data(), n, cudaMemcpyDeviceToHost, stream));
  stop.record(stream);
  stop.synchronize();
  EXPECT_EQ(std::memcmp(src.data(), dst.data(), n), 0);
  EXPECT_GT(stop.elapsed_ms_since(start), 0.0f);
  stream.synchronize();

  Stream moved = std::move(stream);
  moved.synchronize();
}

TEST_F(CudaRuntime, CublasLtHandleOwnsAWorkspace) {
  CublasLtHandle h;
  EXPECT_NE(h.get(), nullptr);
  EXPECT_EQ(h.workspace_size(), kCublasLtWorkspaceBytes);
  EXPECT_NE(h.workspace(), nullptr);
  CublasLtHandle other(1 << 20);
  other = std::move(h);
  EXPECT_EQ(other.workspace_size(), kCublasLtWorkspaceBytes);
}

}  // namespace
}  // namespace fp8llm::cuda
