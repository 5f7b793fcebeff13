// The collectives of ranks that are threads of one process (model/collective.h), over host
// memory. Every op is a meeting of all ranks: each shows where its buffer is, then each rank
// computes a share of the elements from every rank's buffer and writes the result into all of
// them. A sum adds in rank order whichever thread computes it, so the results are the same bit for
// bit from run to run.
#pragma once

#include <condition_variable>
#include <cstdint>
#include <memory>
#include <mutex>
#include <vector>

#include "model/collective.h"

namespace fp8llm {

class ThreadCollectives final : public CollectiveGroup {
 public:
  explicit ThreadCollectives(int ranks);
  ~ThreadCollectives() override;

  int ranks() const override { return static_cast<int>(buffers_.size()); }
  Collective& rank(int r) override;
  void abort() override;
  void reset() override;

 private:
  class Member;

  // Returns when every rank has called it; an Error once the group is aborted.
  void meet();
  // This rank's share of n elements.
  static int64_t share_begin(int64_t n, int rank, int ranks) { return n * rank / ranks; }

  std::mutex mu_;
  std::condition_variable cv_;
  int arrived_ = 0;
  uint64_t generation_ = 0;
  bool aborted_ = false;
  // Each rank's buffers in the op now under way: its data (in and out), or its local part and
  // where the gathered whole goes.
  std::vector<void*> buffers_;
  std::vector<const void*> inputs_;
  std::vector<std::unique_ptr<Member>> members_;
};

}  // namespace fp8llm
