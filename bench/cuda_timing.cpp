// Timing helpers of cuda_timing.h.
#include "cuda_timing.h"

#include <algorithm>
#include <cstddef>
#include <cstdio>
#include <exception>

#include "backend/cuda/kernels/elementwise.h"
#include "backend/cuda/runtime/cuda_check.h"
#include "backend/cuda/runtime/device_buffer.h"
#include "backend/cuda/runtime/event.h"

namespace fp8llm::cuda::bench {

double median(std::vector<double> v) {
  std::sort(v.begin(), v.end());
  return v[v.size() / 2];
}

Timing time_calls(const std::function<void(int)>& fn, cudaStream_t stream, int batches) {
  Timing t;
  try {
    Event a;
    Event b;
    for (int i = 0; i < 3; ++i) fn(i);
    a.record(stream);
    for (int i = 0; i < 3; ++i) fn(i);
    b.record(stream);
    b.synchronize();
    const double one_ms = std::max(1e-4, static_cast<double>(b.elapsed_ms_since(a)) / 3.0);
    const int iters = static_cast<int>(std::clamp(2.0 / one_ms, 1.0, 500.0));
    std::vector<double> per_call;
    int call = 0;
    for (int r = 0; r < batches; ++r) {
      a.record(stream);
      for (int i = 0; i < iters; ++i) fn(call++);
      b.record(stream);
      b.synchronize();
      per_call.push_back(static_cast<double>(b.elapsed_ms_since(a)) * 1000.0 / iters);
    }
    t.us = median(per_call);
    t.ok = true;
  } catch (const std::exception& e) {
    t.error = e.what();
    CUDA_CHECK(cudaStreamSynchronize(stream));
  }
  return t;
}

double device_copy_gbps(cudaStream_t stream) {
  const size_t bytes = size_t{1} << 30;
  DeviceBuffer src(bytes);
  DeviceBuffer dst(bytes);
  launch_fill_uniform_bf16(src.as<__nv_bfloat16>(), static_cast<int64_t>(bytes / 2), 1, 1.0f,
                           stream);
  const Timing t = time_calls(
      [&](int) {
        CUDA_CHECK(
            cudaMemcpyAsync(dst.data(), src.data(), bytes, cudaMemcpyDeviceToDevice, stream));
      },
      stream, 11);
  return 2.0 * static_cast<double>(bytes) / (t.us * 1e-6) / 1e9;  // read + write
}

int main_of(const char* name, int (*run)(int, char**), int argc, char** argv) {
  try {
    return run(argc, argv);
  } catch (const std::exception& e) {
    std::fprintf(stderr, "%s: %s\n", name, e.what());
    return 1;
  }
}

}  // namespace fp8llm::cuda::bench
