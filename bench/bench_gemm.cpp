// GEMM benchmark on the CUDA device at Llama-3-8B projection shapes: our FP8 row- and
// block-scaled paths (cuBLASLt for M >= 16, the small-M kernel below) against cuBLASLt BF16.
//
//   bench_gemm [--quick] [--small-m | --groups] [--csv FILE]
//
// --small-m sweeps M = 1..16 instead (the small-M kernel against cuBLASLt), which places the switch
// between the two in Fp8Linear. At M = 1 the decode step's own kernels (fp32 output, one launch)
// are timed too: "decode fp32-sum" on CUDA cores and "decode tensor-core" (fp8_gemv.h).
// --groups times Fp8Linear::forward_group over q, k, v and over gate, up with their weights back to
// back in memory, as separate GEMMs and as one joined GEMM plus the copy of its columns (up to
// kFp8GemvTcMaxRows rows both columns are the tensor-core GEMV, above kFp8JoinMaxRows both are
// separate GEMMs: what the engine runs).
//
// Each timing is the median over batches of back-to-back calls, timed with CUDA events after
// warm-up; weights rotate among copies whose total exceeds the L2 cache, so small-M runs measure
// weight streaming from device memory, not from L2. Inputs are random (never zeros).
#include <cuda_runtime.h>

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <functional>
#include <stdexcept>
#include <string>
#include <vector>

#include "backend/cuda/gemm/cublaslt_gemm.h"
#include "backend/cuda/gemm/fp8_linear.h"
#include "backend/cuda/kernels/elementwise.h"
#include "backend/cuda/kernels/fp8_gemv.h"
#include "backend/cuda/kernels/fp8_quant.h"
#include "backend/cuda/runtime/cuda_check.h"
#include "backend/cuda/runtime/device.h"
#include "backend/cuda/runtime/device_buffer.h"
#include "backend/cuda/runtime/event.h"
#include "backend/cuda/runtime/stream.h"
#include "cuda_timing.h"

namespace fp8llm::cuda {
namespace {

using bench::device_copy_gbps;
using bench::median;
using bench::time_calls;
using bench::Timing;

// Ceilings used for the floors: H100 SXM FP8 dense nominal (1979 TFLOP/s; the datasheet's 3958 is
// with sparsity); BF16 as measured through PyTorch on this kind of card (8192^3, random data).
constexpr double kFp8PeakTflops = 1979.0;
constexpr double kBf16PeakTflops = 800.0;
constexpr size_t kRotateBytes = size_t{320} << 20;  // > 6x the 50 MB L2

struct Shape {
  const char* name;
  int64_t n;
  int64_t k;
};

struct Weights {
  int copies = 0;
  std::vector<DeviceBuffer> bf16;
  std::vector<DeviceBuffer> q_row, s_row, q_block, s_block;
  int64_t ld_block = 0;
};

Weights make_weights(const Shape& s, cudaStream_t stream) {
  Weights w;
  const size_t fp8_bytes = static_cast<size_t>(s.n * s.k);
  w.copies = static_cast<int>(std::max<size_t>(2, (kRotateBytes + fp8_bytes - 1) / fp8_bytes));
  w.ld_block = device_block_scale_ld(s.k);
  DeviceBuffer flag(sizeof(int));
  flag.fill_zero();
  for (int c = 0; c < w.copies; ++c) {
    DeviceBuffer b(fp8_bytes * 2);
    launch_fill_uniform_bf16(b.as<__nv_bfloat16>(), s.n * s.k, 100 + static_cast<uint64_t>(c),
                             0.05f, stream);
    w.q_row.emplace_back(fp8_bytes);
    w.s_row.emplace_back(static_cast<size_t>(s.n) * 4);
    launch_quantize_weight(Fp8Scheme::Row, b.as<__nv_bfloat16>(), s.n, s.k,
                           w.q_row.back().as<uint8_t>(), w.s_row.back().as<float>(), 1,
                           flag.as<int>(), stream);
    w.q_block.emplace_back(fp8_bytes);
    w.s_block.emplace_back(
        static_cast<size_t>(weight_scale_elems(Fp8Scheme::Block, s.n, s.k, w.ld_block)) * 4);
    w.s_block.back().fill_zero();
    launch_quantize_weight(Fp8Scheme::Block, b.as<__nv_bfloat16>(), s.n, s.k,
                           w.q_block.back().as<uint8_t>(), w.s_block.back().as<float>(), w.ld_block,
                           flag.as<int>(), stream);
    // BF16 weights are twice as large: half as many copies give the same rotation footprint.
    if (c < (w.copies + 1) / 2) w.bf16.push_back(std::move(b));
  }
  CUDA_CHECK(cudaStreamSynchronize(stream));
  return w;
}

// forward_group over weights that lie back to back (arena_layout.h), without and with the joined
// scratch, at the M of decode batches and short prompt chunks.
void run_groups(cudaStream_t stream, double copy_gbps, int batches) {
  struct Group {
    const char* name;
    std::vector<int64_t> ns;
  };
  const int64_t k = 4096;
  const int64_t max_m = 1024;
  std::printf("%-8s %-5s %5s %12s %12s %10s\n", "group", "mode", "M", "separate us", "joined us",
              "floor us");
  for (const Group& g : {Group{"q/k/v", {4096, 1024, 1024}}, Group{"gate/up", {14336, 14336}}}) {
    int64_t rows = 0;
    for (const int64_t n : g.ns) rows += n;
    const size_t bytes = static_cast<size_t>(rows * k);
    const int copies = static_cast<int>(std::max<size_t>(2, (kRotateBytes + bytes - 1) / bytes));
    for (const Fp8Scheme scheme : {Fp8Scheme::Block, Fp8Scheme::Row}) {
      const bool row = scheme == Fp8Scheme::Row;
      const int64_t ld = row ? 1 : device_block_scale_ld(k);
      std::vector<DeviceBuffer> codes, scales;
      std::vector<std::vector<Fp8DeviceWeight>> views(static_cast<size_t>(copies));
      DeviceBuffer flag(sizeof(int));
      flag.fill_zero();
      for (int c = 0; c < copies; ++c) {
        int64_t scale_elems = 0;
        for (const int64_t n : g.ns) scale_elems += weight_scale_elems(scheme, n, k, ld);
        codes.emplace_back(bytes);
        scales.emplace_back(static_cast<size_t>(scale_elems) * 4);
        scales.back().fill_zero();
        int64_t at = 0, scale_at = 0;
        for (const int64_t n : g.ns) {
          DeviceBuffer src(static_cast<size_t>(n * k) * 2);
          launch_fill_uniform_bf16(src.as<__nv_bfloat16>(), n * k,
                                   200 + static_cast<uint64_t>(c * 8 + at), 0.05f, stream);
          Fp8DeviceWeight w{scheme,
                            codes.back().as<uint8_t>() + at * k,
                            scales.back().as<float>() + scale_at,
                            ld,
                            n,
                            k,
                            nullptr};
          launch_quantize_weight(scheme, src.as<__nv_bfloat16>(), n, k, const_cast<uint8_t*>(w.q),
                                 const_cast<float*>(w.scales), ld, flag.as<int>(), stream);
          CUDA_CHECK(cudaStreamSynchronize(stream));
          views[static_cast<size_t>(c)].push_back(w);
          at += n;
          scale_at += weight_scale_elems(scheme, n, k, ld);
        }
      }
      // Each copy's weights as forward_group takes them, made once outside the timed calls.
      std::vector<std::vector<const Fp8DeviceWeight*>> ptrs(views.size());
      for (size_t c = 0; c < views.size(); ++c) {
        for (const Fp8DeviceWeight& w : views[c]) ptrs[c].push_back(&w);
      }
      CublasLtGemm gemm;
      Fp8Linear linear(gemm);
      linear.reserve(max_m, k);
      for (const int64_t m : {4, 8, 16, 32, 64, 128, 256, 512, 1024}) {
        std::vector<float> hx(static_cast<size_t>(m * k));
        uint32_t state = 9;
        for (float& v : hx) {
          state = state * 1664525u + 1013904223u;
          v = static_cast<float>(state >> 8) / 8388608.0f - 1.0f;  // uniform in [-1, 1)
        }
        DeviceBuffer x(hx.size() * 4);
        x.upload(hx.data(), hx.size() * 4);
        std::vector<DeviceBuffer> ys;
        std::vector<float*> yp;
        for (const int64_t n : g.ns) {
          ys.emplace_back(static_cast<size_t>(m * n) * 4);
          yp.push_back(ys.back().as<float>());
        }
        double us[2] = {0, 0};
        for (const bool join : {false, true}) {
          linear.reserve_joined(join ? m : 0, rows);
          const Timing t = time_calls(
              [&](int i) {
                linear.forward_group(ptrs[static_cast<size_t>(i % copies)], x.as<float>(), m, yp,
                                     stream);
              },
              stream, batches);
          us[join] = t.ok ? t.us : -1;
        }
        const double floor_us = static_cast<double>(bytes) / (copy_gbps * 1e9) * 1e6;
        std::printf("%-8s %-5s %5ld %12.1f %12.1f %10.1f\n", g.name, row ? "row" : "block", long(m),
                    us[0], us[1], floor_us);
        std::fflush(stdout);
      }
    }
  }
}

struct Row {
  std::string shape;
  int64_t m, n, k;
  std::string variant;
  Timing t;
  double bytes;  // the fewest bytes the call must move (weights for GEMMs)
  double peak_tflops;
  double flops;
};

void print_row(const Row& r, double copy_gbps, FILE* csv) {
  const double flops = r.flops;
  const double bw_floor_us = r.bytes / (copy_gbps * 1e9) * 1e6;
  const double fl_floor_us = flops / (r.peak_tflops * 1e12) * 1e6;
  const double floor_us = std::max(bw_floor_us, fl_floor_us);
  if (!r.t.ok) {
    std::printf("%-9s %5ld %-22s  unsupported: %s\n", r.shape.c_str(), long(r.m), r.variant.c_str(),
                r.t.error.c_str());
    if (csv)
      std::fprintf(csv, "%s,%ld,%ld,%ld,%s,,,,\n", r.shape.c_str(), long(r.m), long(r.n), long(r.k),
                   r.variant.c_str());
    return;
  }
  const double tflops = flops / (r.t.us * 1e-6) / 1e12;  // 0 for non-GEMM rows
  const double gbps = r.bytes / (r.t.us * 1e-6) / 1e9;
  std::printf("%-9s %5ld %-22s %9.1f us %7.1f TFLOP/s %7.0f GB/s   floor %8.1f us (%s) %5.0f%%\n",
              r.shape.c_str(), long(r.m), r.variant.c_str(), r.t.us, tflops, gbps, floor_us,
              bw_floor_us > fl_floor_us ? "bytes" : "flops", 100.0 * floor_us / r.t.us);
  if (csv) {
    std::fprintf(csv, "%s,%ld,%ld,%ld,%s,%.3f,%.2f,%.1f,%.3f\n", r.shape.c_str(), long(r.m),
                 long(r.n), long(r.k), r.variant.c_str(), r.t.us, tflops, gbps, floor_us);
  }
}

int run(int argc, char** argv) {
  bool quick = false;
  bool small_m = false;
  bool groups = false;
  const char* csv_path = nullptr;
  for (int i = 1; i < argc; ++i) {
    if (std::strcmp(argv[i], "--quick") == 0) {
      quick = true;
    } else if (std::strcmp(argv[i], "--small-m") == 0) {
      small_m = true;
    } else if (std::strcmp(argv[i], "--groups") == 0) {
      groups = true;
    } else if (std::strcmp(argv[i], "--csv") == 0 && i + 1 < argc) {
      csv_path = argv[++i];
    } else {
      std::fprintf(stderr, "usage: %s [--quick] [--small-m | --groups] [--csv FILE]\n", argv[0]);
      return 2;
    }
  }
  if (!device_available()) {
    std::fprintf(stderr, "bench_gemm: no CUDA device\n");
    return 1;
  }
  FILE* csv = csv_path ? std::fopen(csv_path, "w") : nullptr;
  if (csv) std::fprintf(csv, "shape,m,n,k,variant,us,tflops,weight_gbps,floor_us\n");
  const int batches = quick ? 5 : 15;

  Stream stream;
  std::printf("device: %s\n", device_description().c_str());
  const double copy_gbps = device_copy_gbps(stream);
  std::printf("device-to-device copy: %.0f GB/s (read + write), used as the bandwidth ceiling\n",
              copy_gbps);
  std::printf("ceilings: FP8 %.0f TFLOP/s (nominal dense), BF16 %.0f TFLOP/s (measured)\n\n",
              kFp8PeakTflops, kBf16PeakTflops);
  if (groups) {
    run_groups(stream, copy_gbps, batches);
    return 0;
  }

  const std::vector<Shape> shapes = {
      {"q/o", 4096, 4096}, {"k/v", 1024, 4096}, {"gate/up", 14336, 4096}, {"down", 4096, 14336}};
  std::vector<int64_t> ms = {1, 16, 128, 1024, 4096};
  if (quick) ms = {1, 16, 128};
  if (small_m) ms = {1, 2, 3, 4, 5, 6, 8, 12, 16, 24, 32};
  CublasLtGemm gemm;
  Fp8Linear linear(gemm);

  for (const Shape& s : shapes) {
    Weights w = make_weights(s, stream);
    const int nb16 = static_cast<int>(w.bf16.size());
    const double fp8_bytes = static_cast<double>(s.n * s.k);
    for (const int64_t m : ms) {
      DeviceBuffer x(static_cast<size_t>(m * s.k) * 2);
      launch_fill_uniform_bf16(x.as<__nv_bfloat16>(), m * s.k, 7, 2.0f, stream);
      DeviceBuffer y(static_cast<size_t>(m * s.n) * 2);
      DeviceBuffer xq(static_cast<size_t>(m * s.k));
      DeviceBuffer xs_row(static_cast<size_t>(m) * 4);
      DeviceBuffer xs_block(static_cast<size_t>(activation_scale_elems(Fp8Scheme::Block, m, s.k)) *
                            4);
      DeviceBuffer xq_b(static_cast<size_t>(m * s.k));
      launch_quantize_activations(Fp8Scheme::Row, x.as<__nv_bfloat16>(), m, s.k, xq.as<uint8_t>(),
                                  xs_row.as<float>(), stream);
      launch_quantize_activations(Fp8Scheme::Block, x.as<__nv_bfloat16>(), m, s.k,
                                  xq_b.as<uint8_t>(), xs_block.as<float>(), stream);
      // The engine's activations are fp32: the same values widened (decoded from their e4m3).
      DeviceBuffer x_f32(static_cast<size_t>(m * s.k) * 4);
      launch_dequantize_activations(Fp8Scheme::Row, xq.as<uint8_t>(), xs_row.as<float>(), m, s.k,
                                    x_f32.as<float>(), stream);
      auto* yp = y.as<__nv_bfloat16>();
      DeviceBuffer y_f32(static_cast<size_t>(m * s.n) * 4);
      std::vector<Row> rows;
      const double gemm_flops = 2.0 * static_cast<double>(m) * s.n * s.k;
      const auto add = [&](const std::string& variant, double bytes, double peak,
                           const std::function<void(int)>& fn, double flops) {
        rows.push_back(
            {s.name, m, s.n, s.k, variant, time_calls(fn, stream, batches), bytes, peak, flops});
      };

      add(
          "bf16 cublaslt", fp8_bytes * 2, kBf16PeakTflops,
          [&](int i) {
            gemm.gemm_bf16(x.as<__nv_bfloat16>(), m, w.bf16[i % nb16].as<__nv_bfloat16>(), s.n, s.k,
                           nullptr, yp, stream);
          },
          gemm_flops);
      for (const Fp8Scheme scheme : {Fp8Scheme::Row, Fp8Scheme::Block}) {
        const bool row = scheme == Fp8Scheme::Row;
        const std::string tag = row ? "fp8-row" : "fp8-block";
        const double sbytes = row ? 4.0 * s.n : 4.0 * fp8_block_count(s.n) * w.ld_block;
        auto& qs = row ? w.q_row : w.q_block;
        auto& ss = row ? w.s_row : w.s_block;
        const uint8_t* xqp = row ? xq.as<uint8_t>() : xq_b.as<uint8_t>();
        const float* xsp = row ? xs_row.as<float>() : xs_block.as<float>();
        const int64_t ld = row ? 1 : w.ld_block;
        if (CublasLtGemm::fp8_supports(scheme, m, s.n, s.k)) {
          add(
              tag + " cublaslt", fp8_bytes + sbytes, kFp8PeakTflops,
              [&](int i) {
                gemm.gemm_fp8(scheme, xqp, xsp, m, qs[i % w.copies].as<uint8_t>(),
                              ss[i % w.copies].as<float>(), ld, s.n, s.k, nullptr, yp, stream);
              },
              gemm_flops);
        }
        if (m <= kFp8GemvMaxRows) {
          add(
              tag + " small-M kernel", fp8_bytes + sbytes, kFp8PeakTflops,
              [&](int i) {
                Fp8GemvArgs a;
                a.scheme = scheme;
                a.xq = xqp;
                a.xs = xsp;
                a.xs_ld = m;
                a.m = m;
                a.wq = qs[i % w.copies].as<uint8_t>();
                a.ws = ss[i % w.copies].as<float>();
                a.ws_ld = ld;
                a.n = s.n;
                a.k = s.k;
                a.y = yp;
                a.ldy = s.n;
                launch_fp8_gemv(a, stream);
              },
              gemm_flops);
        }
        if (m <= kFp8GemvTcMaxRows && fp8_gemv_group_supports(xqp, qs[0].as<uint8_t>(), s.k)) {
          // The decode step's form: fp32 output, one launch, summed on CUDA cores (one token) or
          // tensor cores (up to kFp8GemvTcMaxRows tokens).
          for (const bool tensor_cores : {false, true}) {
            if (!(tensor_cores ? fp8_gemv_tc_supports(m, s.k) : m == 1)) continue;
            add(
                tag + (tensor_cores ? " decode tensor-core" : " decode fp32-sum"),
                fp8_bytes + sbytes, kFp8PeakTflops,
                [&, tensor_cores](int i) {
                  Fp8GemvGroupArgs a;
                  a.scheme = scheme;
                  a.xq = xqp;
                  a.xs = xsp;
                  a.xs_ld = m;
                  a.m = m;
                  a.k = s.k;
                  a.count = 1;
                  a.seg[0] = {qs[i % w.copies].as<uint8_t>(),
                              ss[i % w.copies].as<float>(),
                              ld,
                              s.n,
                              nullptr,
                              y_f32.as<float>()};
                  a.tensor_cores = tensor_cores;
                  launch_fp8_gemv_group(a, stream);
                },
                gemm_flops);
          }
        }
        {
          add(
              tag + " linear", fp8_bytes + sbytes, kFp8PeakTflops,
              [&](int i) {
                const Fp8DeviceWeight wt{scheme,
                                         qs[i % w.copies].as<uint8_t>(),
                                         ss[i % w.copies].as<float>(),
                                         ld,
                                         s.n,
                                         s.k,
                                         nullptr};
                linear.forward(wt, x.as<__nv_bfloat16>(), m, yp, stream);
              },
              gemm_flops);
        }
        if (!small_m) {
          // bf16 in, e4m3 out: 3 bytes an element (scales are negligible).
          add(
              tag + " act quant", static_cast<double>(m * s.k) * 3, kFp8PeakTflops,
              [&](int) {
                launch_quantize_activations(scheme, x.as<__nv_bfloat16>(), m, s.k,
                                            row ? xq.as<uint8_t>() : xq_b.as<uint8_t>(),
                                            row ? xs_row.as<float>() : xs_block.as<float>(),
                                            stream);
              },
              0.0);
          // fp32 in (the engine's activations), e4m3 out: 5 bytes an element.
          add(
              tag + " act quant f32", static_cast<double>(m * s.k) * 5, kFp8PeakTflops,
              [&](int) {
                launch_quantize_activations(
                    scheme, x_f32.as<float>(), m, s.k, row ? xq.as<uint8_t>() : xq_b.as<uint8_t>(),
                    row ? xs_row.as<float>() : xs_block.as<float>(), stream);
              },
              0.0);
        }
      }
      for (const Row& r : rows) print_row(r, copy_gbps, csv);
      std::fflush(stdout);
    }
    std::printf("\n");
  }
  if (csv) std::fclose(csv);
  return 0;
}

}  // namespace
}  // namespace fp8llm::cuda

int main(int argc, char** argv) {
  return fp8llm::cuda::bench::main_of("bench_gemm", fp8llm::cuda::run, argc, argv);
}
