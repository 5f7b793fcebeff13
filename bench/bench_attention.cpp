// Attention on the CUDA device over a paged KV cache of the Llama-3-8B layout (32 query heads, 8
// KV heads, head size 128, blocks of 16). Decode: the engine's kernel (decode_attention.h; on
// tensor cores for bf16 and e4m3 caches, where the CUDA-core kernel runs beside it) at the batches
// and lengths the engine's benchmarks run and at 32k keys, against its floor, the keys' and values'
// bytes (and e4m3 scales) at the device's own copy bandwidth, measured first.
// Prompts: the mma.sync tensor-core kernel (prefill_attention.h) against the bf16 tensor peak.
//
//   bench_attention [--dtype bf16|fp8|both] [--peak-tflops T] [--quick] [--sweep]
//                   [--decode BATCHxKEYS]
//
// --sweep adds, for each decode row, the kernel on every power-of-two number of range blocks
// (decode_attention.h's DecodeGrid), the data behind choose_decode_grid. --decode times that one
// decode shape and no prompt: a run short enough to profile.
// The cache holds random values, its blocks shuffled over the pool as a running engine leaves
// them; positions and block tables are the only inputs the kernels read besides q, K and V.
#include <cuda_bf16.h>
#include <cuda_runtime.h>

#include <algorithm>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <numeric>
#include <random>
#include <string>
#include <utility>
#include <vector>

#include "backend/cuda/kernels/decode_attention.h"
#include "backend/cuda/kernels/elementwise.h"
#include "backend/cuda/kernels/fp8_quant.h"
#include "backend/cuda/kernels/paged_attention.h"
#include "backend/cuda/kernels/prefill_attention.h"
#include "backend/cuda/runtime/cuda_check.h"
#include "backend/cuda/runtime/device.h"
#include "backend/cuda/runtime/device_buffer.h"
#include "backend/cuda/runtime/stream.h"
#include "cuda_timing.h"

namespace fp8llm::cuda {
namespace {

constexpr int64_t kHeads = 32, kKvHeads = 8, kHeadDim = 128, kBlock = 16;

struct Workload {
  int64_t batch;     // sequences
  int64_t keys;      // every sequence's keys (its last position + 1)
  int64_t rows = 1;  // this pass's tokens of each sequence (the last ones): 1 decodes
};

// One decode pass: `batch` sequences of `keys` keys in a random cache of that many blocks.
struct Pass {
  DeviceBuffer k, v, k_scale, v_scale, q, out, positions, seqs, tables, partial, counters;
  PagedBatch batch;
  PagedKv kv;
  double bytes = 0;  // K, V and scales a pass reads
  double flops = 0;  // of q·k and p·v for every row and head

  Pass(const Workload& w, KvCacheDtype dtype, cudaStream_t stream) {
    const int64_t blocks_per_seq = (w.keys + kBlock - 1) / kBlock;
    const int64_t blocks = blocks_per_seq * w.batch;
    const int64_t rows = blocks * kBlock * kKvHeads;
    const int64_t elems = rows * kHeadDim;
    const bool fp8 = dtype == KvCacheDtype::Fp8;
    DeviceBuffer staging(static_cast<size_t>(elems) * sizeof(__nv_bfloat16));
    for (int which = 0; which < 2; ++which) {
      DeviceBuffer& cache = which == 0 ? k : v;
      launch_fill_uniform_bf16(staging.as<__nv_bfloat16>(), elems, 11 + which, 2.0f, stream);
      if (fp8) {
        DeviceBuffer& scales = which == 0 ? k_scale : v_scale;
        cache = DeviceBuffer(static_cast<size_t>(elems));
        scales = DeviceBuffer(static_cast<size_t>(rows) * sizeof(float));
        launch_quantize_activations(Fp8Scheme::Row, staging.as<__nv_bfloat16>(), rows, kHeadDim,
                                    cache.as<uint8_t>(), scales.as<float>(), stream);
      } else {
        cache = DeviceBuffer(staging.size());
        CUDA_CHECK(cudaMemcpyAsync(cache.data(), staging.data(), staging.size(),
                                   cudaMemcpyDeviceToDevice, stream));
      }
    }
    const int64_t tokens = w.batch * w.rows;
    const int64_t q_elems = tokens * kHeads * kHeadDim;
    std::vector<float> q_host(static_cast<size_t>(q_elems));
    std::mt19937 rng(3);
    std::normal_distribution<float> normal(0.0f, 1.0f);
    for (float& x : q_host) x = normal(rng);
    q = to_device(q_host);
    out = DeviceBuffer(static_cast<size_t>(q_elems) * sizeof(float));

    std::vector<int32_t> order(static_cast<size_t>(blocks));
    std::iota(order.begin(), order.end(), 0);
    std::shuffle(order.begin(), order.end(), std::mt19937(5));
    std::vector<int64_t> position_of;
    std::vector<int32_t> seq_of;
    for (int64_t s = 0; s < w.batch; ++s) {
      for (int64_t r = 0; r < w.rows; ++r) {
        position_of.push_back(w.keys - w.rows + r);
        seq_of.push_back(static_cast<int32_t>(s));
        // Causal: the row at position p attends to p + 1 keys, 4 FLOPs a head dimension each.
        flops += 4.0 * static_cast<double>(w.keys - w.rows + r + 1) * kHeads * kHeadDim;
      }
    }
    positions = to_device(position_of);
    seqs = to_device(seq_of);
    tables = to_device(order);  // sequence s owns blocks [s * blocks_per_seq, ...) of `order`
    partial = DeviceBuffer(
        static_cast<size_t>(tokens * kHeads * kDecodeMaxSplits * (kHeadDim + 2)) * sizeof(float));
    counters = DeviceBuffer(static_cast<size_t>(tokens * kHeads) * sizeof(int));
    counters.fill_zero();
    batch = PagedBatch{.tokens = tokens,
                       .positions = positions.as<int64_t>(),
                       .slots = nullptr,
                       .token_seq = seqs.as<int32_t>(),
                       .block_tables = tables.as<int32_t>(),
                       .max_blocks = blocks_per_seq,
                       .max_ranges = decode_ranges_bound(w.keys)};  // as the engine sets it
    kv = PagedKv{.dtype = dtype,
                 .k = k.data(),
                 .v = v.data(),
                 .k_scale = fp8 ? k_scale.as<float>() : nullptr,
                 .v_scale = fp8 ? v_scale.as<float>() : nullptr,
                 .block_size = kBlock};
    const double row_bytes = kHeadDim * (fp8 ? 1.0 : 2.0) + (fp8 ? 4.0 : 0.0);
    bytes = 2.0 * static_cast<double>(w.batch * w.keys * kKvHeads) * row_bytes;
    CUDA_CHECK(cudaStreamSynchronize(stream));
  }
};

// The kernel column of the rows.
constexpr const char* kDecodeName = "engine";
constexpr const char* kPromptName = "mma";

int run(int argc, char** argv) {
  std::string dtypes = "both";
  bool quick = false;
  bool sweep = false;
  double peak_tflops = 989.0;
  long long only_batch = 0, only_keys = 0;
  for (int i = 1; i < argc; ++i) {
    if (std::strcmp(argv[i], "--quick") == 0) {
      quick = true;
    } else if (std::strcmp(argv[i], "--sweep") == 0) {
      sweep = true;
    } else if (std::strcmp(argv[i], "--dtype") == 0 && i + 1 < argc) {
      dtypes = argv[++i];
    } else if (std::strcmp(argv[i], "--peak-tflops") == 0 && i + 1 < argc) {
      peak_tflops = std::atof(argv[++i]);
    } else if (std::strcmp(argv[i], "--decode") == 0 && i + 1 < argc) {
      char tail = 0;
      if (std::sscanf(argv[++i], "%lldx%lld%c", &only_batch, &only_keys, &tail) != 2 ||
          only_batch < 1 || only_keys < 1) {
        std::fprintf(stderr, "bench_attention: --decode takes BATCHxKEYS, e.g. 1x32768\n");
        return 2;
      }
    } else {
      std::fprintf(stderr,
                   "usage: bench_attention [--dtype bf16|fp8|both] [--peak-tflops T] [--quick] "
                   "[--sweep] [--decode BATCHxKEYS]\n");
      return 2;
    }
  }
  if (!(peak_tflops > 0)) {
    std::fprintf(stderr, "bench_attention: --peak-tflops must be positive\n");
    return 2;
  }
  if (dtypes != "bf16" && dtypes != "fp8" && dtypes != "both") {
    std::fprintf(stderr, "bench_attention: --dtype must be bf16, fp8 or both, not '%s'\n",
                 dtypes.c_str());
    return 2;
  }
  if (!device_available()) {
    std::fprintf(stderr, "bench_attention: no CUDA device\n");
    return 1;
  }
  Stream stream;
  const double gbps = bench::device_copy_gbps(stream.get());
  std::printf("device copy bandwidth: %.0f GB/s (read + write of 1 GiB)\n", gbps);
  std::printf("layout: %lld heads, %lld KV heads, head size %lld, blocks of %lld\n",
              static_cast<long long>(kHeads), static_cast<long long>(kKvHeads),
              static_cast<long long>(kHeadDim), static_cast<long long>(kBlock));
  // The engine's benchmark shapes (128/128 and 1000/1000 at 256 at once, their middle lengths;
  // batch 64; batch 1 short and at 32k keys).
  std::vector<Workload> workloads = {{1, 192},   {1, 4096},   {1, 32768}, {64, 1024},
                                     {256, 192}, {256, 1000}, {256, 2000}};
  if (quick) workloads = {{1, 4096}, {256, 192}};
  if (only_batch > 0) workloads = {{only_batch, only_keys}};
  std::vector<KvCacheDtype> kinds;
  if (dtypes != "fp8") kinds.push_back(KvCacheDtype::BF16);
  if (dtypes != "bf16") kinds.push_back(KvCacheDtype::Fp8);
  std::printf("%-5s %6s %6s %10s %10s %10s %10s %8s\n", "kv", "batch", "keys", "MB read",
              "floor us", "kernel", "us", "of floor");
  for (const KvCacheDtype dtype : kinds) {
    for (const Workload& w : workloads) {
      Pass pass(w, dtype, stream.get());
      const double floor_us = pass.bytes / (gbps * 1e3);
      const DecodeScratch scratch{pass.partial.as<float>(), pass.counters.as<int>()};
      // The engine's kernel and grid first, then the CUDA-core kernel where the engine's runs on
      // tensor cores; with --sweep, the engine's kernel on every other number of range blocks.
      const DecodeKernel kernel = decode_kernel_for(dtype, kHeads, kKvHeads, kHeadDim);
      const DecodeGrid chosen = choose_decode_grid(kernel, kHeads, kKvHeads, w.batch,
                                                   device_multiprocessors(), pass.batch.max_ranges);
      const DecodeGrid cuda_core_grid =
          choose_decode_grid(DecodeKernel::kCudaCores, kHeads, kKvHeads, w.batch,
                             device_multiprocessors(), pass.batch.max_ranges);
      // z = 0: the engine's choice; -1: the CUDA-core kernel; else z range blocks of `stages`
      // 64-key steps (the tensor-core kernel; --sweep times both depths).
      struct GridRow {
        std::string name;
        int64_t z;
        int stages;
      };
      std::vector<GridRow> grids = {{kDecodeName, 0, chosen.stages}};
      if (kernel == DecodeKernel::kTensorCores) grids.push_back({"cuda-core", -1, 0});
      if (sweep) {
        for (int64_t z = 1; z <= kDecodeMaxSplits; z *= 2) {
          if (kernel != DecodeKernel::kTensorCores) {
            grids.push_back({"z=" + std::to_string(z), z, 0});
            continue;
          }
          for (int stages = 2; stages <= 3; ++stages)
            grids.push_back({"z=" + std::to_string(z) + "/" + std::to_string(stages), z, stages});
        }
      }
      for (const auto& [name, z, stages] : grids) {
        const bench::Timing t = bench::time_calls(
            [&](int) {
              if (z == 0) {
                launch_decode_attention(pass.q.as<float>(), kHeads, kKvHeads, kHeadDim, pass.batch,
                                        w.batch, pass.kv, scratch, pass.out.as<float>(),
                                        stream.get());
              } else if (z < 0) {
                launch_decode_attention_pipelined(
                    pass.q.as<float>(), kHeads, kKvHeads, kHeadDim, pass.batch, w.batch, pass.kv,
                    scratch, pass.out.as<float>(), cuda_core_grid, stream.get());
              } else if (kernel == DecodeKernel::kTensorCores) {
                launch_decode_attention_mma(
                    pass.q.as<float>(), kHeads, kKvHeads, kHeadDim, pass.batch, w.batch, pass.kv,
                    scratch, pass.out.as<float>(), DecodeGrid{z, stages}, stream.get());
              } else {
                launch_decode_attention_pipelined(
                    pass.q.as<float>(), kHeads, kKvHeads, kHeadDim, pass.batch, w.batch, pass.kv,
                    scratch, pass.out.as<float>(), DecodeGrid{z}, stream.get());
              }
            },
            stream.get(), quick ? 5 : 11);
        if (!t.ok) {
          std::printf("%-5s %6lld %6lld %s: %s\n", std::string(to_string(dtype)).c_str(),
                      static_cast<long long>(w.batch), static_cast<long long>(w.keys), name.c_str(),
                      t.error.c_str());
          continue;
        }
        std::printf("%-5s %6lld %6lld %10.1f %10.1f %10s %10.1f %7.0f%%\n",
                    std::string(to_string(dtype)).c_str(), static_cast<long long>(w.batch),
                    static_cast<long long>(w.keys), pass.bytes / 1e6, floor_us, name.c_str(), t.us,
                    100.0 * floor_us / t.us);
      }
    }
  }
  // Prompt attention on tensor cores (prefill_attention.h): one 2,048-token prompt, four (a step
  // of the 2048/128 benchmark), and the last 8,192-token chunk of a 32k prompt; against the bf16
  // tensor peak given (nominal dense: 989 TFLOP/s on H100 and H200).
  std::vector<Workload> prompts = {{1, 2048, 2048}, {4, 2048, 2048}, {1, 32768, 8192}};
  if (quick) prompts = {{1, 2048, 2048}};
  if (only_batch > 0) prompts.clear();
  std::printf("\n%-5s %6s %6s %6s %10s %10s %10s %10s %8s\n", "kv", "seqs", "keys", "rows", "TFLOP",
              "floor us", "kernel", "us", "TFLOP/s");
  for (const KvCacheDtype dtype : kinds) {
    for (const Workload& w : prompts) {
      Pass pass(w, dtype, stream.get());
      const double floor_us = pass.flops / (peak_tflops * 1e6);
      const bench::Timing t = bench::time_calls(
          [&](int) {
            launch_prefill_attention(pass.q.as<float>(), kHeads, kKvHeads, kHeadDim, pass.batch,
                                     /*first_token=*/0, pass.kv, pass.out.as<float>(),
                                     stream.get());
          },
          stream.get(), quick ? 3 : 5);
      if (!t.ok) {
        std::printf("%-5s prompt, %s: %s\n", std::string(to_string(dtype)).c_str(), kPromptName,
                    t.error.c_str());
        continue;
      }
      std::printf("%-5s %6lld %6lld %6lld %10.2f %10.1f %10s %10.1f %8.1f\n",
                  std::string(to_string(dtype)).c_str(), static_cast<long long>(w.batch),
                  static_cast<long long>(w.keys), static_cast<long long>(w.rows), pass.flops / 1e12,
                  floor_us, kPromptName, t.us, pass.flops / (t.us * 1e6));
    }
  }
  return 0;
}

}  // namespace
}  // namespace fp8llm::cuda

int main(int argc, char** argv) {
  return fp8llm::cuda::bench::main_of("bench_attention", fp8llm::cuda::run, argc, argv);
}
