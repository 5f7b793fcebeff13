// `fp8llm bench --concurrency C --num-prompts P --input-len I --output-len O [--prefix-len L]`:
// throughput of the batching engine on random token ids, with at most C requests in flight, as
// serving benchmarks (vLLM's benchmark_serving, trtllm-bench) measure it: output and total tokens
// per second, time to first token and inter-token latency percentiles, KV blocks used, and the
// floor of a decode step at that batch size.
#pragma once

#include <cstdint>

#include "fp8llm/engine.h"

namespace fp8llm::cli {

struct ServingBench {
  int64_t concurrency = 0;
  int64_t num_prompts = 1000;
  int64_t input_len = 128;
  int64_t output_len = 128;
  int64_t prefix_len = 0;  // tokens every prompt starts with (the prefix cache's case)
  int64_t warmup = 1;      // requests run first and not counted (engine/warm_up.h)
  uint64_t seed = 1;
  int64_t max_seqs = 0;         // the engine's sequences at once (0: no bound below concurrency)
  double bandwidth_gbs = 4260;  // H200's measured copy bandwidth
  double tensor_tflops = 1979;  // H200 dense FP8 peak
};

void run_serving_bench(Engine& engine, const ServingBench& b);

}  // namespace fp8llm::cli
