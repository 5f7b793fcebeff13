// Block-wide sums and scans in double, shared by the kernels that need one total per block (a
// norm's sum of squares, a softmax denominator) or a running total over the threads in order
// (sampling walks the vocabulary in index order). Every thread of the block must call them.
#pragma once

#include <cuda_runtime.h>

namespace fp8llm::cuda {

// Sum over a block of kBlockThreads threads in double (all threads get it), in a fixed order.
template <int kBlockThreads>
__device__ __forceinline__ double block_sum_double(double v) {
  __shared__ double partial[kBlockThreads / 32];
  const int lane = threadIdx.x & 31;
  const int warp = threadIdx.x >> 5;
#pragma unroll
  for (int off = 16; off > 0; off >>= 1) v += __shfl_xor_sync(0xffffffffu, v, off);
  if (lane == 0) partial[warp] = v;
  __syncthreads();
  double r = lane < kBlockThreads / 32 ? partial[lane] : 0.0;
#pragma unroll
  for (int off = 16; off > 0; off >>= 1) r += __shfl_xor_sync(0xffffffffu, r, off);
  __syncthreads();
  return r;
}

// Inclusive scan of one value per thread over a block of kBlockThreads threads (Hillis-Steele in
// `scan`, kBlockThreads doubles of shared memory); returns this thread's running total and leaves
// every thread's in `scan` (scan[kBlockThreads - 1] is the block's total).
template <int kBlockThreads>
__device__ double block_inclusive_scan(double v, double* scan) {
  scan[threadIdx.x] = v;
  __syncthreads();
  for (int off = 1; off < kBlockThreads; off <<= 1) {
    const double add = threadIdx.x >= off ? scan[threadIdx.x - off] : 0.0;
    __syncthreads();
    scan[threadIdx.x] += add;
    __syncthreads();
  }
  const double r = scan[threadIdx.x];
  __syncthreads();
  return r;
}

}  // namespace fp8llm::cuda
