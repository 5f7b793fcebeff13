#include "backend/cuda/loading/chunk_read_ring.h"

#include <sys/mman.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>

#include "backend/cuda/runtime/cuda_check.h"
#include "core/error.h"

namespace fp8llm::cuda {

ChunkReadRing::ChunkReadRing(std::vector<Range> chunks, size_t slots, uint64_t slot_bytes,
                             size_t readers, uint64_t piece_bytes)
    : chunks_(std::move(chunks)),
      slots_(std::max<size_t>(std::min(slots, chunks_.size()), 1)),
      slot_bytes_(slot_bytes),
      piece_bytes_(std::max<uint64_t>(piece_bytes, 4096)) {
  for (const Range& r : chunks_) {
    FP8LLM_CHECK(r.end >= r.begin && r.end - r.begin <= slot_bytes_,
                 "{}: a chunk of {} bytes does not fit a ring slot of {}", r.path, r.end - r.begin,
                 slot_bytes_);
  }
  // Plain anonymous memory, registered at each slot's first use rather than allocated pinned:
  // the readers' first pread faults its pages in on many threads, where cudaHostAlloc would clear
  // them on one.
  const uint64_t bytes = slots_ * slot_bytes_;
  void* p = ::mmap(nullptr, bytes, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
  FP8LLM_CHECK(p != MAP_FAILED, "cannot map {} bytes for the read ring: {}", bytes,
               std::strerror(errno));
  memory_ = static_cast<std::byte*>(p);
  ::madvise(memory_, bytes, MADV_HUGEPAGE);

  releases_.resize(chunks_.size());
  pieces_left_.resize(chunks_.size());
  released_.assign(chunks_.size(), 0);
  first_piece_.resize(chunks_.size() + 1);
  size_t pieces = 0;
  for (size_t k = 0; k < chunks_.size(); ++k) {
    releases_[k] = {this, k};
    first_piece_[k] = pieces;
    const uint64_t len = chunks_[k].end - chunks_[k].begin;
    pieces_left_[k] = static_cast<size_t>((len + piece_bytes_ - 1) / piece_bytes_);
    pieces += pieces_left_[k];
  }
  first_piece_[chunks_.size()] = pieces;
  try {
    group_.start(std::max<size_t>(readers, 1), [this] { read_pieces(); });
  } catch (...) {
    // No destructor runs for a constructor that throws: the mapping would be left behind.
    group_.stop_and_join();
    ::munmap(memory_, bytes);
    throw;
  }
}

ChunkReadRing::~ChunkReadRing() {
  group_.stop_and_join();
  for (size_t s = 0; s < registered_slots_; ++s) (void)cudaHostUnregister(slot(s));
  (void)cudaGetLastError();
  ::munmap(memory_, slots_ * slot_bytes_);
}

std::byte* ChunkReadRing::slot(size_t k) const {
  return memory_ + (k % slots_) * slot_bytes_;
}

void ChunkReadRing::read_pieces() {
  for (;;) {
    size_t k = 0;
    size_t piece = 0;
    {
      std::unique_lock lock(group_.mutex());
      auto ready = [&] {
        if (group_.stopping() || next_piece_ == first_piece_.back()) return true;
        const size_t c = static_cast<size_t>(
            std::upper_bound(first_piece_.begin(), first_piece_.end(), next_piece_) -
            first_piece_.begin() - 1);
        // The chunk that used this slot before has been copied out of it.
        return c < slots_ || released_[c - slots_] != 0;
      };
      group_.cv().wait(lock, ready);
      if (group_.stopping() || next_piece_ == first_piece_.back()) return;
      piece = next_piece_++;
      k = static_cast<size_t>(std::upper_bound(first_piece_.begin(), first_piece_.end(), piece) -
                              first_piece_.begin() - 1);
    }
    const Range& r = chunks_[k];
    const uint64_t at = (piece - first_piece_[k]) * piece_bytes_;
    const uint64_t len = std::min(piece_bytes_, r.end - r.begin - at);
    std::byte* dst = slot(k) + at;
    for (uint64_t done = 0; done < len;) {
      const ssize_t n =
          ::pread(r.fd, dst + done, len - done, static_cast<off_t>(r.begin + at + done));
      if (n < 0 && errno == EINTR) continue;
      FP8LLM_CHECK(n > 0, "{}: reading bytes {}..{} failed: {}", r.path, r.begin + at + done,
                   r.begin + at + len, n == 0 ? "unexpected end of file" : std::strerror(errno));
      done += static_cast<uint64_t>(n);
    }
    bool filled = false;
    {
      std::lock_guard lock(group_.mutex());
      filled = --pieces_left_[k] == 0;
    }
    if (filled) group_.cv().notify_all();
  }
}

const std::byte* ChunkReadRing::wait_filled(size_t k) {
  {
    std::unique_lock lock(group_.mutex());
    group_.cv().wait(lock, [&] { return pieces_left_[k] == 0 || group_.error() != nullptr; });
    group_.rethrow_error();
  }
  // A slot is registered once, after its first fill faulted its pages in on the readers' threads;
  // every later fill reuses the locked pages.
  for (; registered_slots_ < std::min(k + 1, slots_); ++registered_slots_)
    CUDA_CHECK(cudaHostRegister(slot(registered_slots_), slot_bytes_, cudaHostRegisterDefault));
  return slot(k);
}

void ChunkReadRing::release(size_t k, cudaStream_t stream) {
  // A chunk still being read must not hand its slot on: the next one's pieces would land in it
  // beside its own last ones.
  wait_filled(k);
  CUDA_CHECK(cudaLaunchHostFunc(stream, &ChunkReadRing::on_released, &releases_[k]));
}

void CUDART_CB ChunkReadRing::on_released(void* release) {
  const auto* r = static_cast<const Release*>(release);
  {
    std::lock_guard lock(r->ring->group_.mutex());
    r->ring->released_[r->chunk] = 1;
  }
  r->ring->group_.cv().notify_all();
}

}  // namespace fp8llm::cuda
