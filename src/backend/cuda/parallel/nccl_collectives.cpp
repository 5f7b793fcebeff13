#include "backend/cuda/parallel/nccl_collectives.h"

#include "backend/cuda/parallel/nccl_check.h"
#include "backend/cuda/runtime/cuda_check.h"
#include "core/error.h"
#include "core/log.h"

namespace fp8llm::cuda {

class NcclCollectives::Member final : public Collective {
 public:
  Member(NcclCollectives& group, int rank) : group_(group), rank_(rank) {}
  int rank() const override { return rank_; }
  int ranks() const override { return group_.ranks(); }

  void all_reduce_sum(float* data, int64_t n) override {
    NCCL_CHECK(
        ncclAllReduce(data, data, static_cast<size_t>(n), ncclFloat32, ncclSum, comm(), stream()));
  }
  void all_reduce_max(uint32_t* data, int64_t n) override {
    NCCL_CHECK(
        ncclAllReduce(data, data, static_cast<size_t>(n), ncclUint32, ncclMax, comm(), stream()));
  }
  void all_gather(const float* local, int64_t n, float* out) override {
    NCCL_CHECK(ncclAllGather(local, out, static_cast<size_t>(n), ncclFloat32, comm(), stream()));
  }

 private:
  ncclComm_t comm() const { return group_.comms_[static_cast<size_t>(rank_)]; }
  cudaStream_t stream() const { return group_.streams_[static_cast<size_t>(rank_)]; }

  NcclCollectives& group_;
  int rank_;
};

NcclCollectives::NcclCollectives(std::vector<int> devices, std::vector<cudaStream_t> streams)
    : devices_(std::move(devices)), streams_(std::move(streams)) {
  FP8LLM_CHECK(!devices_.empty() && devices_.size() == streams_.size(),
               "NCCL: {} GPUs and {} streams", devices_.size(), streams_.size());
  int available = 0;
  CUDA_CHECK(cudaGetDeviceCount(&available));
  for (int d : devices_) {
    FP8LLM_CHECK(d >= 0 && d < available, "--tensor-parallel: GPU {} is not one of the {} present",
                 d, available);
  }
  init();
  for (int r = 0; r < ranks(); ++r) members_.push_back(std::make_unique<Member>(*this, r));
}

NcclCollectives::~NcclCollectives() {
  destroy();
}

void NcclCollectives::init() {
  comms_.assign(devices_.size(), nullptr);
  NCCL_CHECK(ncclCommInitAll(comms_.data(), ranks(), devices_.data()));
}

void NcclCollectives::destroy() noexcept {
  for (ncclComm_t& c : comms_) {
    if (c == nullptr) continue;
    const ncclResult_t r = ncclCommDestroy(c);
    if (r != ncclSuccess) log_warning("NCCL: ncclCommDestroy: {}", ncclGetErrorString(r));
    c = nullptr;
  }
}

Collective& NcclCollectives::rank(int r) {
  FP8LLM_CHECK(r >= 0 && r < ranks(), "rank {} of {}", r, ranks());
  return *members_[static_cast<size_t>(r)];
}

void NcclCollectives::abort() {
  for (ncclComm_t& c : comms_) {
    if (c == nullptr) continue;
    const ncclResult_t r = ncclCommAbort(c);
    if (r != ncclSuccess) log_warning("NCCL: ncclCommAbort: {}", ncclGetErrorString(r));
    c = nullptr;
  }
}

void NcclCollectives::reset() {
  destroy();
  init();
}

}  // namespace fp8llm::cuda
