// Reader threads that pread file ranges ("chunks") into a few page-locked host slots ahead of the
// thread that copies them to the device. chunk_stream.cpp sends part of a checkpoint's chunks
// through it, so that those bytes reach the device while that thread registers the others in
// place: registering runs at one rate whatever the threads (the driver does one at a time), while
// the readers need no driver at all. Where files cannot be registered, every chunk comes here.
//
// The readers make no CUDA call (one would wait while the copying thread registers): the copying
// thread registers each slot at its first use, and hands a slot back with a host function
// enqueued after the slot's copies, which lets the readers refill it.
#pragma once

#include <cuda_runtime.h>

#include <cstddef>
#include <cstdint>
#include <string>
#include <vector>

#include "core/worker_group.h"

namespace fp8llm::cuda {

class ChunkReadRing {
 public:
  struct Range {
    int fd = -1;
    std::string path;  // for errors
    uint64_t begin = 0;
    uint64_t end = 0;  // at most slot_bytes after begin
  };

  // Starts `readers` threads reading `chunks` in order, `piece_bytes` at a time, into `slots`
  // slots of `slot_bytes` (chunk k into slot k % slots).
  ChunkReadRing(std::vector<Range> chunks, size_t slots, uint64_t slot_bytes, size_t readers,
                uint64_t piece_bytes);
  // Stops the readers and unregisters the slots: the caller has waited for every copy out of them
  // (host functions it enqueued included).
  ~ChunkReadRing();
  ChunkReadRing(const ChunkReadRing&) = delete;
  ChunkReadRing& operator=(const ChunkReadRing&) = delete;

  // Blocks until chunk k is in its slot and returns the slot (the chunk's first byte); rethrows a
  // reader's failure. Registers the slots up to k's on their first use. Called on the copying
  // thread.
  const std::byte* wait_filled(size_t k);
  // Chunk k's copies are all enqueued on `stream`: once they have run, its slot may be refilled.
  // Every chunk must be released once, in order, for the readers to get past it (waits for it to
  // be filled first).
  void release(size_t k, cudaStream_t stream);

 private:
  struct Release {
    ChunkReadRing* ring;
    size_t chunk;
  };
  static void CUDART_CB on_released(void* release);
  void read_pieces();
  std::byte* slot(size_t k) const;

  std::vector<Range> chunks_;
  size_t slots_;
  uint64_t slot_bytes_;
  uint64_t piece_bytes_;
  std::byte* memory_ = nullptr;
  size_t registered_slots_ = 0;
  std::vector<Release> releases_;  // one per chunk, the host functions' arguments

  // Guarded by group_.mutex().
  size_t next_piece_ = 0;            // pieces are taken in chunk order
  std::vector<size_t> pieces_left_;  // per chunk
  std::vector<uint8_t> released_;    // per chunk: its copies have run
  std::vector<size_t> first_piece_;  // per chunk, and one past the last
  WorkerGroup group_;                // declared last: stops before the rest goes
};

}  // namespace fp8llm::cuda
