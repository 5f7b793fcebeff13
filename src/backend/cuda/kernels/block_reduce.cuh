// Warp and block sums and a block scan, shared by the kernels that need one total per warp (a
// dot product), per block (a norm's sum of squares, a softmax denominator) or a running total over
// the threads in order (sampling walks the vocabulary in index order). Every thread of the warp or
// block must call them.
//
// They are CUB's, each with a fixed algorithm: the order in which values are added depends only on
// the block size, so results are the same from run to run (no atomics), which the sampling and
// the backend-comparison tests rely on. CUB hands the result to one thread; these broadcast it,
// because every caller uses it on every thread.
#pragma once

#include <cuda_runtime.h>

#include <cub/block/block_reduce.cuh>
#include <cub/block/block_scan.cuh>
#include <cub/warp/warp_reduce.cuh>

namespace fp8llm::cuda {

// Sum over a full warp (every lane gets it); float or double.
template <typename T>
__device__ __forceinline__ T warp_sum(T v) {
  using WarpReduce = cub::WarpReduce<T>;
  // The shuffle-based reduction CUB picks for a full warp keeps no state in here.
  typename WarpReduce::TempStorage unused;
  const T total = WarpReduce(unused).Sum(v);  // valid in lane 0
  return __shfl_sync(0xffffffffu, total, 0);
}

// Reduction over a full warp (every lane gets it) with `op`, an associative and commutative
// binary operation such as a max.
template <typename T, typename Op>
__device__ __forceinline__ T warp_reduce(T v, Op op) {
  using WarpReduce = cub::WarpReduce<T>;
  typename WarpReduce::TempStorage unused;
  const T total = WarpReduce(unused).Reduce(v, op);  // valid in lane 0
  return __shfl_sync(0xffffffffu, total, 0);
}

// Reduction over a block of kBlockThreads threads (all threads get it) with `op`, as warp_reduce.
template <int kBlockThreads, typename T, typename Op>
__device__ __forceinline__ T block_reduce(T v, Op op) {
  using BlockReduce = cub::BlockReduce<T, kBlockThreads, cub::BLOCK_REDUCE_WARP_REDUCTIONS>;
  __shared__ typename BlockReduce::TempStorage temp;
  __shared__ T total;
  const T r = BlockReduce(temp).Reduce(v, op);  // valid in thread 0
  if (threadIdx.x == 0) total = r;
  __syncthreads();
  const T all = total;
  __syncthreads();  // temp and total may be reused by a later call
  return all;
}

// Sum over a block of kBlockThreads threads in double (all threads get it), in a fixed order. Its
// barriers also order the block's shared-memory writes made before the call with reads after it.
template <int kBlockThreads>
__device__ __forceinline__ double block_sum_double(double v) {
  return block_reduce<kBlockThreads>(v, [](double a, double b) { return a + b; });
}

// Inclusive scan of one value per thread over a block of kBlockThreads threads; returns this
// thread's running total and leaves every thread's in `scan` (kBlockThreads doubles of shared
// memory; scan[kBlockThreads - 1] is the block's total).
template <int kBlockThreads>
__device__ double block_inclusive_scan(double v, double* scan) {
  using BlockScan = cub::BlockScan<double, kBlockThreads, cub::BLOCK_SCAN_WARP_SCANS>;
  __shared__ typename BlockScan::TempStorage temp;
  double r = 0.0;
  BlockScan(temp).InclusiveSum(v, r);
  scan[threadIdx.x] = r;
  __syncthreads();  // every running total is in `scan`, and temp may be reused
  return r;
}

}  // namespace fp8llm::cuda
