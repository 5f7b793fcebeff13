// Throughput of the FP8 weight quantizer (bytes of BF16 input per second; the loader streams whole
// checkpoints through it) and of the CPU linear layers at the shapes the CPU engine runs.
#include <benchmark/benchmark.h>

#include <random>
#include <vector>

#include "backend/cpu/linear.h"
#include "core/dtype.h"
#include "quant/quantizer.h"

namespace fp8llm {
namespace {

HostTensor random_bf16(int64_t n, int64_t k) {
  HostTensor w(DType::BF16, {n, k});
  std::mt19937 rng(1);
  std::normal_distribution<float> normal(0.0f, 0.02f);
  for (int64_t i = 0; i < n * k; ++i) w.as<uint16_t>()[i] = f32_to_bf16(normal(rng));
  return w;
}

void BM_QuantizeWeight(benchmark::State& state, Fp8Scheme scheme) {
  const int64_t n = state.range(0), k = state.range(1);
  const HostTensor w = random_bf16(n, k);
  std::vector<uint8_t> q(static_cast<size_t>(n * k));
  std::vector<float> scales(static_cast<size_t>(num_elements(weight_scale_shape(scheme, n, k))));
  for (auto _ : state) {
    quantize_weight(scheme, w.view(), q.data(), scales.data(), "bench.weight");
    benchmark::DoNotOptimize(q.data());
  }
  state.SetBytesProcessed(state.iterations() * static_cast<int64_t>(w.bytes.size()));
}
BENCHMARK_CAPTURE(BM_QuantizeWeight, row, Fp8Scheme::Row)
    ->Args({4096, 4096})
    ->Unit(benchmark::kMillisecond)
    ->UseRealTime();
BENCHMARK_CAPTURE(BM_QuantizeWeight, block, Fp8Scheme::Block)
    ->Args({4096, 4096})
    ->Unit(benchmark::kMillisecond)
    ->UseRealTime();

void BM_QuantizeActivations(benchmark::State& state, Fp8Scheme scheme) {
  const int64_t t = state.range(0), k = state.range(1);
  std::vector<float> x(static_cast<size_t>(t * k));
  std::mt19937 rng(2);
  std::normal_distribution<float> normal(0.0f, 1.0f);
  for (auto& v : x) v = normal(rng);
  std::vector<uint8_t> q(x.size());
  std::vector<float> scales(
      static_cast<size_t>(num_elements(activation_scale_shape(scheme, t, k))));
  for (auto _ : state) {
    quantize_activations(scheme, x.data(), t, k, q.data(), scales.data());
    benchmark::DoNotOptimize(q.data());
  }
  state.SetBytesProcessed(state.iterations() * static_cast<int64_t>(x.size() * sizeof(float)));
}
BENCHMARK_CAPTURE(BM_QuantizeActivations, row, Fp8Scheme::Row)->Args({160, 4096})->UseRealTime();
BENCHMARK_CAPTURE(BM_QuantizeActivations, block, Fp8Scheme::Block)
    ->Args({160, 4096})
    ->UseRealTime();

// y[T,N] = x[T,K] W^T: reports floating-point operations per second (2 T N K per call).
void BM_LinearFp8(benchmark::State& state, Fp8Scheme scheme) {
  const int64_t t = state.range(0), k = state.range(1), n = state.range(2);
  const HostTensor w = random_bf16(n, k);
  const QuantizedTensor wq = quantize_weight(scheme, w.view(), "bench.weight");
  std::vector<float> x(static_cast<size_t>(t * k), 0.5f), y(static_cast<size_t>(t * n));
  for (size_t i = 0; i < x.size(); ++i) x[i] = static_cast<float>(i % 17) * 0.1f - 0.8f;
  for (auto _ : state) {
    cpu::linear_fp8(scheme, x.data(), t, k, wq.q.as<uint8_t>(), wq.scale.as<float>(), n, nullptr,
                    y.data());
    benchmark::DoNotOptimize(y.data());
  }
  state.counters["flops"] = benchmark::Counter(static_cast<double>(2 * t * n * k),
                                               benchmark::Counter::kIsIterationInvariantRate);
}
BENCHMARK_CAPTURE(BM_LinearFp8, row, Fp8Scheme::Row)
    ->Args({160, 1024, 1024})
    ->Args({160, 256, 1024})
    ->Args({1, 1024, 1024})
    ->Unit(benchmark::kMillisecond)
    ->UseRealTime();
BENCHMARK_CAPTURE(BM_LinearFp8, block, Fp8Scheme::Block)
    ->Args({160, 1024, 1024})
    ->Unit(benchmark::kMillisecond)
    ->UseRealTime();

void BM_LinearBf16(benchmark::State& state) {
  const int64_t t = state.range(0), k = state.range(1), n = state.range(2);
  const HostTensor w = random_bf16(n, k);
  std::vector<float> x(static_cast<size_t>(t * k), 0.5f), y(static_cast<size_t>(t * n));
  for (auto _ : state) {
    cpu::linear_bf16(x.data(), t, k, w.as<uint16_t>(), n, nullptr, y.data());
    benchmark::DoNotOptimize(y.data());
  }
  state.counters["flops"] = benchmark::Counter(static_cast<double>(2 * t * n * k),
                                               benchmark::Counter::kIsIterationInvariantRate);
}
BENCHMARK(BM_LinearBf16)->Args({160, 1024, 1024})->Unit(benchmark::kMillisecond)->UseRealTime();

}  // namespace
}  // namespace fp8llm

BENCHMARK_MAIN();
