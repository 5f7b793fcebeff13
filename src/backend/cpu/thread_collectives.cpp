#include "backend/cpu/thread_collectives.h"

#include <algorithm>
#include <cstring>

#include "core/error.h"

namespace fp8llm {

class ThreadCollectives::Member final : public Collective {
 public:
  Member(ThreadCollectives& group, int rank) : group_(group), rank_(rank) {}
  int rank() const override { return rank_; }
  int ranks() const override { return group_.ranks(); }

  void all_reduce_sum(float* data, int64_t n) override {
    reduce(data, n, [](float a, float b) { return a + b; });
  }

  void all_reduce_max(uint32_t* data, int64_t n) override {
    reduce(data, n, [](uint32_t a, uint32_t b) { return std::max(a, b); });
  }

  void all_gather(const float* local, int64_t n, float* out) override {
    group_.inputs_[static_cast<size_t>(rank_)] = local;
    group_.buffers_[static_cast<size_t>(rank_)] = out;
    group_.meet();
    for (int r = 0; r < ranks(); ++r) {
      std::memcpy(out + r * n, group_.inputs_[static_cast<size_t>(r)],
                  sizeof(float) * static_cast<size_t>(n));
    }
    // No rank may reuse its local part before every rank has copied it.
    group_.meet();
  }

 private:
  // data[i] = op over ranks in rank order; this rank computes its share of the elements and
  // writes them into every rank's buffer (shares are disjoint, so no element is read by one
  // thread while another writes it).
  template <class T, class Op>
  void reduce(T* data, int64_t n, Op op) {
    group_.buffers_[static_cast<size_t>(rank_)] = data;
    group_.meet();
    const int ranks_n = ranks();
    const int64_t begin = share_begin(n, rank_, ranks_n), end = share_begin(n, rank_ + 1, ranks_n);
    std::vector<T*> all(static_cast<size_t>(ranks_n));
    for (int r = 0; r < ranks_n; ++r)
      all[static_cast<size_t>(r)] = static_cast<T*>(group_.buffers_[static_cast<size_t>(r)]);
    for (int64_t i = begin; i < end; ++i) {
      T v = all[0][i];
      for (int r = 1; r < ranks_n; ++r) v = op(v, all[static_cast<size_t>(r)][i]);
      for (T* b : all) b[i] = v;
    }
    group_.meet();
  }

  ThreadCollectives& group_;
  int rank_;
};

ThreadCollectives::ThreadCollectives(int ranks) {
  FP8LLM_CHECK(ranks >= 1, "{} ranks: at least one is needed", ranks);
  buffers_.resize(static_cast<size_t>(ranks));
  inputs_.resize(static_cast<size_t>(ranks));
  for (int r = 0; r < ranks; ++r) members_.push_back(std::make_unique<Member>(*this, r));
}

ThreadCollectives::~ThreadCollectives() = default;

Collective& ThreadCollectives::rank(int r) {
  FP8LLM_CHECK(r >= 0 && r < ranks(), "rank {} of {}", r, ranks());
  return *members_[static_cast<size_t>(r)];
}

void ThreadCollectives::meet() {
  std::unique_lock lock(mu_);
  FP8LLM_CHECK(!aborted_, "tensor parallel: another rank failed");
  const uint64_t generation = generation_;
  if (++arrived_ == ranks()) {
    arrived_ = 0;
    ++generation_;
    cv_.notify_all();
    return;
  }
  cv_.wait(lock, [&] { return generation_ != generation || aborted_; });
  FP8LLM_CHECK(generation_ != generation, "tensor parallel: another rank failed");
}

void ThreadCollectives::abort() {
  {
    std::lock_guard lock(mu_);
    aborted_ = true;
  }
  cv_.notify_all();
}

void ThreadCollectives::reset() {
  std::lock_guard lock(mu_);
  aborted_ = false;
  arrived_ = 0;
  ++generation_;
}

}  // namespace fp8llm
