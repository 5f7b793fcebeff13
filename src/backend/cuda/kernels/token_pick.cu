// Greedy picks and draws at a temperature, a row cut into pieces (token_pick.h). The first launch
// reduces each piece (grid: rows x pieces); the second combines the pieces of a row and, for a
// draw, walks the one piece where the running sum passes the target.
#include <algorithm>
#include <cmath>
#include <stdexcept>
#include <string>

#include "backend/cuda/kernels/block_reduce.cuh"
#include "backend/cuda/kernels/token_pick.h"
#include "backend/cuda/runtime/cuda_check.h"

namespace fp8llm::cuda {
namespace {

constexpr int kPieceThreads = 256;
// A piece is at least this long, so that a block has work enough to hide its start; at most
// kMaxPieces pieces, so that one warp (greedy) or one block (draw) combines a row.
constexpr int64_t kMinPieceLogits = 4096;
constexpr int64_t kMaxPieces = 64;
constexpr int64_t kNoIndex = INT64_MAX;

// What a piece hands the combining launch: its largest logit (and, greedy, the first index of it),
// and its sums relative to that largest logit: tempered for a draw (or the log-softmax's sum for
// a greedy pick), raw for a draw's log-probability.
struct Partial {
  float max;
  int64_t index;
  double tempered;
  double raw;
};

struct Split {
  int64_t length;  // logits per piece (the last may have fewer)
  int64_t pieces;
};

Split split_row(int64_t n) {
  const int64_t length = std::max(kMinPieceLogits, (n + kMaxPieces - 1) / kMaxPieces);
  return {length, (n + length - 1) / length};
}

struct Best {
  float value;
  int64_t index;
};

// The larger value wins; on equal values the smaller index.
struct BetterOf {
  __device__ Best operator()(const Best& a, const Best& b) const {
    return b.value > a.value || (b.value == a.value && b.index < a.index) ? b : a;
  }
};

struct MaxOf {
  __device__ float operator()(float a, float b) const { return fmaxf(a, b); }
};

struct MaxIndexOf {
  __device__ int operator()(int a, int b) const { return a > b ? a : b; }
};

__device__ const float* row_of(const float* all_logits, int64_t n, const int32_t* rows, int i) {
  return all_logits + (rows != nullptr ? static_cast<int64_t>(rows[i]) : i) * n;
}

// grid (rows, pieces): the first index of the largest logit of the piece, and the sum of
// exp(logit - that logit) over it, in double.
__global__ void __launch_bounds__(kPieceThreads)
    top_piece_kernel(const float* __restrict__ all_logits, int64_t n,
                     const int32_t* __restrict__ rows, int64_t length,
                     Partial* __restrict__ partials) {
  const float* logits = row_of(all_logits, n, rows, blockIdx.x);
  const int64_t begin = blockIdx.y * length;
  const int64_t end = begin + length < n ? begin + length : n;
  Best best{-INFINITY, kNoIndex};
  for (int64_t i = begin + threadIdx.x; i < end; i += kPieceThreads) {
    const float v = logits[i];
    if (v > best.value || best.index == kNoIndex) best = {v, i};
  }
  best = block_reduce<kPieceThreads>(best, BetterOf{});
  double sum = 0.0;
  if (best.value != -INFINITY) {
    for (int64_t i = begin + threadIdx.x; i < end; i += kPieceThreads)
      sum += exp(static_cast<double>(logits[i]) - best.value);
  }
  sum = block_sum_double<kPieceThreads>(sum);
  if (threadIdx.x == 0)
    partials[blockIdx.x * gridDim.y + blockIdx.y] = {best.value, best.index, sum, 0.0};
}

// One warp per row: the best of the pieces' bests, and their sums rescaled to it.
__global__ void __launch_bounds__(32)
    top_combine_kernel(const Partial* __restrict__ partials, int64_t pieces,
                       int32_t* __restrict__ ids, float* __restrict__ logprobs) {
  const Partial* mine = partials + blockIdx.x * pieces;
  Best best{-INFINITY, kNoIndex};
  for (int64_t p = threadIdx.x; p < pieces; p += 32)
    best = BetterOf{}(best, {mine[p].max, mine[p].index});
#pragma unroll
  for (int offset = 16; offset > 0; offset >>= 1) {
    const Best other{__shfl_xor_sync(0xffffffffu, best.value, offset),
                     __shfl_xor_sync(0xffffffffu, best.index, offset)};
    best = BetterOf{}(best, other);
  }
  double sum = 0.0;
  for (int64_t p = threadIdx.x; p < pieces; p += 32) {
    if (mine[p].max != -INFINITY)
      sum += mine[p].tempered * exp(static_cast<double>(mine[p].max) - best.value);
  }
  sum = warp_sum(sum);
  if (threadIdx.x == 0) {
    ids[blockIdx.x] = static_cast<int32_t>(best.index);
    logprobs[blockIdx.x] =
        static_cast<float>(static_cast<double>(best.value) - best.value - log(sum));
  }
}

// grid (draws, pieces): the piece's largest logit m, and the sums of exp((logit - m) / T) and
// exp(logit - m) over it, in double.
__global__ void __launch_bounds__(kPieceThreads)
    draw_piece_kernel(const float* __restrict__ all_logits, int64_t n,
                      const int32_t* __restrict__ rows, const float* __restrict__ temperatures,
                      int64_t length, Partial* __restrict__ partials) {
  const float* logits = row_of(all_logits, n, rows, blockIdx.x);
  const float inv_temperature = 1.0f / temperatures[blockIdx.x];
  const int64_t begin = blockIdx.y * length;
  const int64_t end = begin + length < n ? begin + length : n;
  float m = -INFINITY;
  for (int64_t i = begin + threadIdx.x; i < end; i += kPieceThreads) m = fmaxf(m, logits[i]);
  m = block_reduce<kPieceThreads>(m, MaxOf{});
  double tempered = 0.0, raw = 0.0;
  if (m != -INFINITY) {
    for (int64_t i = begin + threadIdx.x; i < end; i += kPieceThreads) {
      const double d = static_cast<double>(logits[i]) - m;
      tempered += exp(d * inv_temperature);
      raw += exp(d);
    }
  }
  tempered = block_sum_double<kPieceThreads>(tempered);
  raw = block_sum_double<kPieceThreads>(raw);
  if (threadIdx.x == 0) partials[blockIdx.x * gridDim.y + blockIdx.y] = {m, 0, tempered, raw};
}

// One block per draw: the row's largest logit m from the pieces', each piece's weight rescaled to
// it, a scan over the pieces to find the one where uniform * total falls, then a scan of that
// piece's logits (thread slices in index order) and a walk of the slice where it falls.
__global__ void __launch_bounds__(kPieceThreads)
    draw_combine_kernel(const float* __restrict__ all_logits, int64_t n,
                        const int32_t* __restrict__ rows, const float* __restrict__ temperatures,
                        const double* __restrict__ uniforms, const Partial* __restrict__ partials,
                        int64_t length, int64_t pieces, int32_t* __restrict__ ids,
                        float* __restrict__ logprobs) {
  __shared__ double s_scan[kPieceThreads];
  __shared__ int s_piece;
  __shared__ double s_before;
  __shared__ int64_t s_pick;
  const float* logits = row_of(all_logits, n, rows, blockIdx.x);
  const float inv_temperature = 1.0f / temperatures[blockIdx.x];
  const int t = threadIdx.x;
  const Partial mine = t < pieces ? partials[blockIdx.x * pieces + t] : Partial{-INFINITY, 0, 0, 0};
  const float m = block_reduce<kPieceThreads>(mine.max, MaxOf{});
  double weight = 0.0, raw = 0.0;
  if (mine.max != -INFINITY) {
    const double shift = static_cast<double>(mine.max) - m;
    weight = mine.tempered * exp(shift * inv_temperature);
    raw = mine.raw * exp(shift);
  }
  const double raw_total = block_sum_double<kPieceThreads>(raw);
  const int last_weighted = block_reduce<kPieceThreads>(weight > 0.0 ? t : -1, MaxIndexOf{});
  if (t == 0) s_piece = -1;
  block_inclusive_scan<kPieceThreads>(weight, s_scan);  // its barrier publishes s_piece
  const double target = uniforms[blockIdx.x] * s_scan[kPieceThreads - 1];
  const double before = t > 0 ? s_scan[t - 1] : 0.0;
  if (weight > 0.0 && before <= target && target < s_scan[t]) {
    s_piece = t;
    s_before = before;
  }
  __syncthreads();
  // Rounding may put the target at the total itself: then the last piece with any weight, walked
  // to its end.
  const bool found = s_piece >= 0;
  const int64_t piece = found ? s_piece : (last_weighted >= 0 ? last_weighted : pieces - 1);
  const double local_target = found ? target - s_before : INFINITY;
  const int64_t begin = piece * length;
  const int64_t end = begin + length < n ? begin + length : n;
  const int64_t slice = (length + kPieceThreads - 1) / kPieceThreads;
  const int64_t my_begin = begin + t * slice < end ? begin + t * slice : end;
  const int64_t my_end = my_begin + slice < end ? my_begin + slice : end;
  double sum = 0.0;
  for (int64_t i = my_begin; i < my_end; ++i)
    sum += exp((static_cast<double>(logits[i]) - m) * inv_temperature);
  if (t == 0) s_pick = -1;
  block_inclusive_scan<kPieceThreads>(sum, s_scan);  // its barrier publishes s_pick
  const double slice_before = t > 0 ? s_scan[t - 1] : 0.0;
  if (sum > 0.0 && slice_before <= local_target && local_target < s_scan[t]) {
    double acc = slice_before;
    int64_t pick = my_end - 1;
    for (int64_t i = my_begin; i < my_end; ++i) {
      acc += exp((static_cast<double>(logits[i]) - m) * inv_temperature);
      if (acc > local_target) {
        pick = i;
        break;
      }
    }
    s_pick = pick;
  }
  __syncthreads();
  if (t == 0) {
    int64_t pick = s_pick;
    if (pick < 0) {
      // Past the piece's total (rounding, or the fallback above): its last token with any weight.
      pick = end - 1;
      while (pick > begin && exp((static_cast<double>(logits[pick]) - m) * inv_temperature) == 0.0)
        --pick;
    }
    ids[blockIdx.x] = static_cast<int32_t>(pick);
    logprobs[blockIdx.x] =
        static_cast<float>(static_cast<double>(logits[pick]) - m - log(raw_total));
  }
}

void check_shape(const char* what, int64_t n, int64_t count) {
  if (n <= 0) throw std::invalid_argument(std::string(what) + ": no logits");
  if (count > INT32_MAX) throw std::invalid_argument(std::string(what) + ": too many rows");
}

}  // namespace

size_t token_pick_scratch_bytes(int64_t n, int64_t count) {
  if (n <= 0 || count <= 0) return 0;
  return static_cast<size_t>(count * split_row(n).pieces) * sizeof(Partial);
}

void launch_top_tokens(const float* logits, int64_t n, const int32_t* rows, int64_t count,
                       int32_t* ids, float* logprobs, void* scratch, cudaStream_t stream) {
  check_shape("launch_top_tokens", n, count);
  if (count <= 0) return;
  const Split split = split_row(n);
  auto* partials = static_cast<Partial*>(scratch);
  top_piece_kernel<<<dim3(static_cast<unsigned>(count), static_cast<unsigned>(split.pieces)),
                     kPieceThreads, 0, stream>>>(logits, n, rows, split.length, partials);
  CUDA_CHECK_LAUNCH();
  top_combine_kernel<<<static_cast<unsigned>(count), 32, 0, stream>>>(partials, split.pieces, ids,
                                                                      logprobs);
  CUDA_CHECK_LAUNCH();
}

void launch_sample_tokens(const float* logits, int64_t n, const int32_t* rows,
                          const float* temperatures, const double* uniforms, int64_t count,
                          int32_t* ids, float* logprobs, void* scratch, cudaStream_t stream) {
  check_shape("launch_sample_tokens", n, count);
  if (count <= 0) return;
  const Split split = split_row(n);
  auto* partials = static_cast<Partial*>(scratch);
  draw_piece_kernel<<<dim3(static_cast<unsigned>(count), static_cast<unsigned>(split.pieces)),
                      kPieceThreads, 0, stream>>>(logits, n, rows, temperatures, split.length,
                                                  partials);
  CUDA_CHECK_LAUNCH();
  draw_combine_kernel<<<static_cast<unsigned>(count), kPieceThreads, 0, stream>>>(
      logits, n, rows, temperatures, uniforms, partials, split.length, split.pieces, ids, logprobs);
  CUDA_CHECK_LAUNCH();
}

}  // namespace fp8llm::cuda
