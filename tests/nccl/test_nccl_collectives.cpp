// The NCCL collectives of tensor parallelism (backend/cuda/parallel/). With one GPU: NCCL
// initialised with one rank (ncclCommInitAll over one device) and each collective run on a small
// buffer. With every GPU of the machine, when it has two or more: sums, maxima and gathers across
// ranks, one thread per GPU as the engine runs them. Skipped where no CUDA device is present.
#include <gtest/gtest.h>

#include <numeric>
#include <vector>

#include "backend/cuda/parallel/nccl_collectives.h"
#include "backend/cuda/runtime/cuda_check.h"
#include "backend/cuda/runtime/device.h"
#include "backend/cuda/runtime/device_buffer.h"
#include "backend/cuda/runtime/stream.h"
#include "core/rank_threads.h"

namespace fp8llm::cuda {
namespace {

constexpr int64_t kN = 1000;

int gpu_count() {
  if (!device_available()) return 0;
  int n = 0;
  CUDA_CHECK(cudaGetDeviceCount(&n));
  return n;
}

// Rank r's values: whole numbers, so that their sum is exact in any order.
std::vector<float> values_of(int rank) {
  std::vector<float> v(kN);
  for (int64_t i = 0; i < kN; ++i)
    v[static_cast<size_t>(i)] = static_cast<float>((i % 97) * (rank + 1));
  return v;
}

// Runs every collective once on `ranks` GPUs (0 .. ranks-1), one thread each, and checks the
// results on every rank.
void check_collectives(int ranks) {
  // Each rank's stream and buffers live on its GPU.
  std::vector<Stream> streams;
  std::vector<DeviceBuffer> sums, maxima, locals, gathered;
  std::vector<int> devices(static_cast<size_t>(ranks));
  std::iota(devices.begin(), devices.end(), 0);
  for (int r = 0; r < ranks; ++r) {
    CUDA_CHECK(cudaSetDevice(r));
    streams.emplace_back();
    sums.push_back(to_device(values_of(r)));
    std::vector<uint32_t> amax(kN, static_cast<uint32_t>(r));
    amax[static_cast<size_t>(r)] = 0x7FC00000;  // a NaN amax wins wherever it is
    maxima.push_back(to_device(amax));
    locals.push_back(to_device(std::vector<float>(4, static_cast<float>(r + 1))));
    gathered.emplace_back(sizeof(float) * 4 * static_cast<size_t>(ranks));
    gathered.back().fill_zero();
  }
  std::vector<cudaStream_t> handles;
  for (const Stream& s : streams) handles.push_back(s.get());
  NcclCollectives group(devices, handles);
  ASSERT_EQ(group.ranks(), ranks);
  RankThreads threads(ranks);
  threads.run([&](int r) {
    CUDA_CHECK(cudaSetDevice(r));
    Collective& c = group.rank(r);
    c.all_reduce_sum(sums[static_cast<size_t>(r)].as<float>(), kN);
    c.all_reduce_max(maxima[static_cast<size_t>(r)].as<uint32_t>(), kN);
    c.all_gather(locals[static_cast<size_t>(r)].as<float>(), 4,
                 gathered[static_cast<size_t>(r)].as<float>());
    streams[static_cast<size_t>(r)].synchronize();
  });
  for (int r = 0; r < ranks; ++r) {
    CUDA_CHECK(cudaSetDevice(r));
    const std::vector<float> sum = to_host<float>(sums[static_cast<size_t>(r)], kN);
    const std::vector<uint32_t> max = to_host<uint32_t>(maxima[static_cast<size_t>(r)], kN);
    const std::vector<float> all = to_host<float>(gathered[static_cast<size_t>(r)], 4 * ranks);
    for (int64_t i = 0; i < kN; ++i) {
      float want = 0;
      for (int q = 0; q < ranks; ++q) want += values_of(q)[static_cast<size_t>(i)];
      ASSERT_EQ(sum[static_cast<size_t>(i)], want) << "rank " << r << " element " << i;
      const uint32_t want_max = i < ranks ? 0x7FC00000u : static_cast<uint32_t>(ranks - 1);
      ASSERT_EQ(max[static_cast<size_t>(i)], want_max) << "rank " << r << " element " << i;
    }
    for (int q = 0; q < ranks; ++q)
      for (int j = 0; j < 4; ++j)
        EXPECT_EQ(all[static_cast<size_t>(q * 4 + j)], static_cast<float>(q + 1)) << "rank " << r;
  }
}

TEST(NcclCollectives, OneRankOnOneGpu) {
  if (gpu_count() < 1) GTEST_SKIP() << "no CUDA device";
  check_collectives(1);
}

TEST(NcclCollectives, EveryGpuOfTheMachine) {
  const int gpus = gpu_count();
  if (gpus < 2) GTEST_SKIP() << "needs two or more GPUs (" << gpus << " here)";
  check_collectives(gpus);
}

}  // namespace
}  // namespace fp8llm::cuda
