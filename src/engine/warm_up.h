// Runs short requests through every stage of a step (a prompt pass, decode passes, sampling) so
// that what a backend sets up on first use is done before the first request anyone times or waits
// for: on CUDA, kernels are loaded at their first launch, the GEMM library picks its algorithms
// for each new shape, and a decode step is recorded as a graph the second time its batch size
// comes. Their tokens are discarded; the prefix cache may keep their blocks, as any finished
// request's.
#pragma once

#include <cstdint>

#include "fp8llm/engine.h"

namespace fp8llm {

// `requests` requests at once of `prompt_tokens` tokens (fewer where the context is shorter) and
// `output_tokens` generated tokens each, greedy. Returns the seconds it took.
double warm_up(Engine& engine, int64_t requests = 1, int64_t prompt_tokens = 32,
               int output_tokens = 4);

}  // namespace fp8llm
