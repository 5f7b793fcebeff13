// A fixed pool of worker threads for data-parallel loops on the CPU.
#pragma once

#include <cstddef>
#include <functional>

namespace fp8llm {

// Number of threads parallel_for uses: FP8LLM_THREADS if set, else the hardware concurrency.
size_t worker_count();

// Calls fn(begin, end) on disjoint chunks covering [0, n), in parallel, and waits for all of them.
// `grain` is the smallest chunk worth handing to a thread. Exceptions thrown by fn are rethrown
// (the first one) after every chunk has finished. Nested calls run serially in the caller.
void parallel_for(size_t n, size_t grain, const std::function<void(size_t, size_t)>& fn);

}  // namespace fp8llm
