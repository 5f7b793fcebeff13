// The collectives of tensor parallelism (shard_plan.h), as one rank sees them: every rank of a
// group calls the same operations in the same order with the same sizes, on buffers in its
// backend's memory (host memory on the CPU, where the ranks are threads; device memory for NCCL).
// A backend holding a shard calls them from its ops; the model never sees them directly.
#pragma once

#include <cstdint>

namespace fp8llm {

class Collective {
 public:
  virtual ~Collective() = default;
  virtual int rank() const = 0;
  virtual int ranks() const = 0;

  // data[i] = the sum over ranks of data[i]. The CPU adds in rank order, ((x0 + x1) + x2) + ...,
  // so the result does not depend on which thread arrives first.
  virtual void all_reduce_sum(float* data, int64_t n) = 0;
  // data[i] = the largest over ranks of data[i], for FP8 amax bit patterns: non-negative floats,
  // whose integer order is their order of magnitude (infinity next, NaNs above), so the result is
  // exactly the amax over every rank's values, NaN included.
  virtual void all_reduce_max(uint32_t* data, int64_t n) = 0;
  // out[r * n + i] = rank r's local[i], on every rank.
  virtual void all_gather(const float* local, int64_t n, float* out) = 0;
};

// The ranks of one model together.
class CollectiveGroup {
 public:
  virtual ~CollectiveGroup() = default;
  virtual int ranks() const = 0;
  virtual Collective& rank(int r) = 0;
  // A rank failed and will not reach the next collective: every rank waiting in one (or arriving
  // later) throws instead of waiting for ever.
  virtual void abort() = 0;
  // Once every rank has left, makes the group usable again after abort().
  virtual void reset() = 0;
};

}  // namespace fp8llm
