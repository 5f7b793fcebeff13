// The LoRA shrink and expand kernels (kernels/lora.h) at the Llama-3-8B shape: each group of
// projections that shares an input (q/k/v, o, gate/up, down), rank-16 adapters, at decode batch
// sizes and at a prompt's, the tokens taking four adapters in turn (the serving benchmark's mix).
//
//   bench_lora [--rank R] [--quick]
//
// Factors rotate over 32 layers' worth per adapter (more than the L2 cache holds), as a decode
// step reads them. The floor of a call is its bytes at the device's copy bandwidth: x, the used
// adapters' A and B, y read and written.
#include <cuda_runtime.h>

#include <algorithm>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <vector>

#include "backend/cuda/kernels/elementwise.h"
#include "backend/cuda/kernels/lora.h"
#include "backend/cuda/runtime/device.h"
#include "backend/cuda/runtime/device_buffer.h"
#include "backend/cuda/runtime/stream.h"
#include "cuda_timing.h"

namespace fp8llm::cuda {
namespace {

using bench::device_copy_gbps;
using bench::time_calls;
using bench::Timing;

constexpr int kLayers = 32;
constexpr int kAdapters = 4;

struct GroupShape {
  const char* name;
  int64_t in;
  std::vector<int64_t> outs;
};

int run(int argc, char** argv) {
  int64_t rank = 16;
  bool quick = false;
  for (int i = 1; i < argc; ++i) {
    if (std::strcmp(argv[i], "--quick") == 0) {
      quick = true;
    } else if (std::strcmp(argv[i], "--rank") == 0 && i + 1 < argc) {
      rank = std::atoll(argv[++i]);
    } else {
      std::fprintf(stderr, "usage: bench_lora [--rank R] [--quick]\n");
      return 2;
    }
  }
  if (!device_available()) {
    std::fprintf(stderr, "bench_lora: no CUDA device\n");
    return 1;
  }
  Stream stream;
  const double gbps = device_copy_gbps(stream.get());
  std::printf("copy bandwidth %.0f GB/s; rank %lld, %d adapters taken in turn\n", gbps,
              static_cast<long long>(rank), kAdapters);
  const std::vector<GroupShape> shapes = {{"q/k/v", 4096, {4096, 1024, 1024}},
                                          {"o", 4096, {4096}},
                                          {"gate/up", 4096, {14336, 14336}},
                                          {"down", 14336, {4096}}};
  const std::vector<int64_t> batches =
      quick ? std::vector<int64_t>{1, 64} : std::vector<int64_t>{1, 16, 64, 256, 2048};
  const int64_t max_tokens = batches.back();
  std::printf("%-8s %7s %10s %10s %10s %10s\n", "group", "tokens", "shrink us", "expand us",
              "both us", "floor us");
  for (const GroupShape& shape : shapes) {
    const auto groups = static_cast<int>(shape.outs.size());
    // One adapter's factors of this group for one layer: A_g [rank, in] then B_g [out_g, rank].
    int64_t layer_elements = 0, outs = 0;
    std::vector<int64_t> a_at, b_at;
    for (int64_t out : shape.outs) {
      a_at.push_back(layer_elements);
      layer_elements += rank * shape.in;
      b_at.push_back(layer_elements);
      layer_elements += out * rank;
      outs += out;
    }
    const int64_t slot_stride = layer_elements * kLayers;
    DeviceBuffer factors(static_cast<size_t>(slot_stride * kAdapters) * 2);
    launch_fill_uniform_bf16(factors.as<__nv_bfloat16>(), slot_stride * kAdapters, 7, 0.05f,
                             stream.get());
    DeviceBuffer x(static_cast<size_t>(max_tokens * shape.in) * 4);
    std::vector<float> ones(static_cast<size_t>(max_tokens * shape.in), 0.5f);
    x.upload(ones.data(), ones.size() * 4);
    std::vector<DeviceBuffer> ys;
    for (int64_t out : shape.outs) {
      ys.emplace_back(static_cast<size_t>(max_tokens * out) * 4);
      ys.back().fill_zero();
    }
    const std::vector<float> scales(kAdapters, 0.5f);
    const DeviceBuffer scales_d = to_device(scales);
    DeviceBuffer scratch(
        static_cast<size_t>(lora_scratch_floats(max_tokens, shape.in, groups, rank)) * 4);
    DeviceBuffer counts(static_cast<size_t>(lora_tile_counts(max_tokens)) * 4);
    counts.fill_zero();
    for (const int64_t tokens : batches) {
      std::vector<int32_t> token_lora(static_cast<size_t>(tokens));
      for (int64_t t = 0; t < tokens; ++t) token_lora[static_cast<size_t>(t)] = t % kAdapters;
      std::vector<int32_t> rows(token_lora.size()), row_slots(token_lora.size());
      group_lora_rows(token_lora.data(), tokens, rows.data(), row_slots.data());
      const DeviceBuffer rows_d = to_device(rows), row_slots_d = to_device(row_slots);
      const auto launch_at = [&](int call) {
        const int64_t layer = call % kLayers;
        LoraLaunch l{.x = x.as<float>(),
                     .tokens = tokens,
                     .in = shape.in,
                     .max_rank = rank,
                     .groups = groups,
                     .slot_stride = slot_stride,
                     .scales = scales_d.as<float>(),
                     .rows = rows_d.as<int32_t>(),
                     .row_slots = row_slots_d.as<int32_t>(),
                     .scratch = scratch.as<float>(),
                     .tile_counts = counts.as<int32_t>()};
        const __nv_bfloat16* base = factors.as<__nv_bfloat16>() + layer * layer_elements;
        for (int g = 0; g < groups; ++g) {
          const auto gi = static_cast<size_t>(g);
          l.proj[g] = {.a = base + a_at[gi],
                       .b = base + b_at[gi],
                       .y = ys[gi].as<float>(),
                       .out = shape.outs[gi]};
        }
        return l;
      };
      const Timing shrink = time_calls(
          [&](int i) { launch_lora_shrink(launch_at(i), stream.get()); }, stream.get(), 9);
      const Timing expand = time_calls(
          [&](int i) { launch_lora_expand(launch_at(i), stream.get()); }, stream.get(), 9);
      const Timing both = time_calls(
          [&](int i) {
            launch_lora_shrink(launch_at(i), stream.get());
            launch_lora_expand(launch_at(i), stream.get());
          },
          stream.get(), 9);
      const int64_t used = std::min<int64_t>(tokens, kAdapters);
      const double bytes = static_cast<double>(tokens * shape.in * 4 + used * layer_elements * 2 +
                                               tokens * outs * 8);
      std::printf("%-8s %7lld %10.1f %10.1f %10.1f %10.2f\n", shape.name,
                  static_cast<long long>(tokens), shrink.us, expand.us, both.us,
                  bytes / (gbps * 1e3));
    }
  }
  return 0;
}

}  // namespace
}  // namespace fp8llm::cuda

int main(int argc, char** argv) {
  return fp8llm::cuda::bench::main_of("bench_lora", fp8llm::cuda::run, argc, argv);
}
