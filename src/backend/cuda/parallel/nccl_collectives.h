// The collectives of tensor parallelism over NCCL (model/collective.h), for ranks that are GPUs
// of one process: one communicator per GPU from ncclCommInitAll, and each rank's operations
// enqueued on that rank's CUDA stream, in the device memory of its GPU. They return once the
// operation is enqueued (a CUDA graph can record them); the stream orders what follows.
//
// NCCL sums with its own algorithms (rings and trees chosen by size and topology), not in rank
// order: for a given machine, NCCL version and size the result repeats, but it is not the CPU's
// rank-order sum bit for bit. Maxima are exact in any order.
#pragma once

#include <cuda_runtime.h>
#include <nccl.h>

#include <memory>
#include <vector>

#include "model/collective.h"

namespace fp8llm::cuda {

class NcclCollectives final : public CollectiveGroup {
 public:
  // Rank r is GPU devices[r]; streams[r] (on that GPU) carries its operations.
  NcclCollectives(std::vector<int> devices, std::vector<cudaStream_t> streams);
  ~NcclCollectives() override;
  NcclCollectives(const NcclCollectives&) = delete;
  NcclCollectives& operator=(const NcclCollectives&) = delete;

  int ranks() const override { return static_cast<int>(devices_.size()); }
  Collective& rank(int r) override;
  // ncclCommAbort on every communicator: operations waiting for a failed rank return.
  void abort() override;
  // An aborted communicator cannot be used again: new ones for the same GPUs.
  void reset() override;

  int device(int r) const { return devices_.at(static_cast<size_t>(r)); }

 private:
  class Member;
  void init();
  void destroy() noexcept;

  std::vector<int> devices_;
  std::vector<cudaStream_t> streams_;
  std::vector<ncclComm_t> comms_;
  std::vector<std::unique_ptr<Member>> members_;
};

}  // namespace fp8llm::cuda
