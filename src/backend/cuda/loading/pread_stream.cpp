#include "backend/cuda/loading/pread_stream.h"

#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <chrono>
#include <cstring>
#include <vector>

#include "backend/cuda/runtime/cuda_check.h"
#include "backend/cuda/runtime/device_buffer.h"
#include "backend/cuda/runtime/event.h"
#include "backend/cuda/runtime/pinned_buffer.h"
#include "backend/cuda/runtime/stream.h"
#include "core/error.h"
#include "core/worker_group.h"

namespace fp8llm::cuda {
namespace {

// One fill of one ring slot: a whole staged tensor, or one chunk of a direct tensor.
struct Job {
  size_t tensor = 0;
  uint64_t offset = 0;  // within the tensor's bytes
  uint64_t bytes = 0;
  std::byte* direct = nullptr;  // final device address of this chunk; nullptr: staged
  bool last_of_tensor = false;
  size_t first_piece = 0;  // pieces [first_piece, first_piece + pieces) read this job
  size_t pieces = 0;
};

// A part of a job's bytes that one reader thread preads.
struct Piece {
  size_t job = 0;
  uint64_t offset = 0;  // within the job
  uint64_t bytes = 0;
};

void read_exact(const PlannedTensor& t, uint64_t offset, uint64_t bytes, std::byte* dst) {
  const CheckpointTensor& src = t.source;
  uint64_t done = 0;
  while (done < bytes) {
    const ssize_t n = ::pread(src.file->fd(), dst + done, bytes - done,
                              static_cast<off_t>(src.info->offset + offset + done));
    if (n < 0 && errno == EINTR) continue;
    FP8LLM_CHECK(n > 0, "{}: reading tensor '{}' failed: {}", src.file->path().string(),
                 src.info->name, n == 0 ? "unexpected end of file" : std::strerror(errno));
    done += static_cast<uint64_t>(n);
  }
}

std::vector<Job> plan_jobs(const LoadPlan& plan, uint64_t slot_bytes,
                           const std::vector<std::byte*>& direct) {
  std::vector<Job> jobs;
  for (size_t i = 0; i < plan.tensors.size(); ++i) {
    const uint64_t n = plan.tensors[i].source.info->nbytes;
    if (!direct[i]) {
      jobs.push_back({.tensor = i, .bytes = n, .last_of_tensor = true});
      continue;
    }
    uint64_t off = 0;
    do {
      const uint64_t len = std::min(slot_bytes, n - off);
      jobs.push_back({.tensor = i,
                      .offset = off,
                      .bytes = len,
                      .direct = direct[i] + off,
                      .last_of_tensor = off + len == n});
      off += len;
    } while (off < n);
  }
  return jobs;
}

std::vector<Piece> plan_pieces(std::vector<Job>& jobs, uint64_t piece_bytes) {
  std::vector<Piece> pieces;
  for (size_t j = 0; j < jobs.size(); ++j) {
    jobs[j].first_piece = pieces.size();
    for (uint64_t off = 0; off < jobs[j].bytes; off += piece_bytes)
      pieces.push_back({j, off, std::min(piece_bytes, jobs[j].bytes - off)});
    jobs[j].pieces = pieces.size() - jobs[j].first_piece;
  }
  return pieces;
}

// Reader threads and the thread that enqueues copies and consumption share this state.
//
// Slot reuse: job j fills ring slot j % R. Readers may start a job only once the enqueuing
// thread has enqueued the copy of the job that used its slot before (job j - R); a reader then
// waits on that copy's event before writing into the pinned buffer. On the device side, the copy
// into a staging buffer waits on the consumption of the slot's previous tensor.
// (Guarded by the worker group's mutex.)
struct Shared {
  size_t next_piece = 0;
  size_t jobs_enqueued = 0;         // jobs whose copies have been enqueued
  std::vector<size_t> pieces_left;  // per job
};

}  // namespace

DeviceStreamStats stream_pread(const LoadPlan& plan, DeviceStreamTarget& target,
                               const DeviceStreamOptions& options, const StreamProgress& progress) {
  const auto start = std::chrono::steady_clock::now();
  const size_t ring = std::max<size_t>(options.ring_buffers, 2);
  const size_t readers = std::max<size_t>(options.reader_threads, 1);
  const uint64_t piece_bytes = std::max<uint64_t>(options.piece_bytes, 4096);

  // Where each tensor goes: asked once per tensor, in file order, before any byte is read.
  std::vector<std::byte*> direct(plan.tensors.size());
  uint64_t largest_staged = 0;
  for (size_t i = 0; i < plan.tensors.size(); ++i) {
    direct[i] = static_cast<std::byte*>(target.direct_destination(plan.tensors[i]));
    if (!direct[i]) largest_staged = std::max(largest_staged, plan.tensors[i].source.info->nbytes);
  }
  const uint64_t slot_bytes =
      std::max<uint64_t>({options.buffer_bytes, largest_staged, uint64_t{1}});

  std::vector<Job> jobs = plan_jobs(plan, slot_bytes, direct);
  const std::vector<Piece> pieces = plan_pieces(jobs, piece_bytes);
  const size_t slots = std::min(ring, std::max<size_t>(jobs.size(), 1));
  const bool any_staged =
      std::any_of(jobs.begin(), jobs.end(), [](const Job& j) { return j.direct == nullptr; });

  std::vector<PinnedBuffer> pinned;
  std::vector<DeviceBuffer> staging;
  std::vector<Event> copied(slots);    // the pinned -> device copy of the slot's last job
  std::vector<Event> consumed(slots);  // the consumption of the slot's last staged tensor
  for (size_t s = 0; s < slots; ++s) {
    pinned.emplace_back(slot_bytes);
    if (any_staged) staging.emplace_back(slot_bytes);
  }
  Stream copy_stream;
  Stream compute_stream;

  DeviceStreamStats stats;
  stats.staging_device_bytes = any_staged ? slots * slot_bytes : 0;

  Shared sh;
  sh.pieces_left.resize(jobs.size());
  for (size_t j = 0; j < jobs.size(); ++j) sh.pieces_left[j] = jobs[j].pieces;

  WorkerGroup readers_group;  // declared after all it touches: stops and joins before they go
  auto reader = [&] {
    for (;;) {
      size_t p = 0;
      {
        std::unique_lock lock(readers_group.mutex());
        readers_group.cv().wait(lock, [&] {
          return readers_group.stopping() || sh.next_piece == pieces.size() ||
                 pieces[sh.next_piece].job < sh.jobs_enqueued + slots;
        });
        if (readers_group.stopping() || sh.next_piece == pieces.size()) return;
        p = sh.next_piece++;
      }
      const Piece& piece = pieces[p];
      const Job& job = jobs[piece.job];
      const size_t slot = piece.job % slots;
      // The slot's previous copy was enqueued (jobs_enqueued > job - slots); wait until it has
      // read the pinned buffer.
      if (piece.job >= slots) copied[slot].synchronize();
      read_exact(plan.tensors[job.tensor], job.offset + piece.offset, piece.bytes,
                 pinned[slot].as<std::byte>() + piece.offset);
      {
        std::lock_guard lock(readers_group.mutex());
        --sh.pieces_left[piece.job];
      }
      readers_group.cv().notify_all();
    }
  };

  try {
    readers_group.start(readers, reader);
    uint64_t bytes_done = 0;
    for (size_t j = 0; j < jobs.size(); ++j) {
      {
        std::unique_lock lock(readers_group.mutex());
        readers_group.cv().wait(
            lock, [&] { return sh.pieces_left[j] == 0 || readers_group.error() != nullptr; });
        readers_group.rethrow_error();
      }
      const Job& job = jobs[j];
      const PlannedTensor& t = plan.tensors[job.tensor];
      const size_t slot = j % slots;
      if (job.direct) {
        if (job.bytes > 0)
          CUDA_CHECK(cudaMemcpyAsync(job.direct, pinned[slot].data(), job.bytes,
                                     cudaMemcpyHostToDevice, copy_stream));
        copied[slot].record(copy_stream);
      } else {
        CUDA_CHECK(cudaStreamWaitEvent(copy_stream, consumed[slot].get(), 0));
        if (job.bytes > 0)
          CUDA_CHECK(cudaMemcpyAsync(staging[slot].data(), pinned[slot].data(), job.bytes,
                                     cudaMemcpyHostToDevice, copy_stream));
        copied[slot].record(copy_stream);
      }
      {
        std::lock_guard lock(readers_group.mutex());
        sh.jobs_enqueued = j + 1;
      }
      readers_group.cv().notify_all();
      if (!job.direct) {
        CUDA_CHECK(cudaStreamWaitEvent(compute_stream, copied[slot].get(), 0));
        target.consume_on_device(t, staging[slot].data(), compute_stream);
        consumed[slot].record(compute_stream);
      }
      bytes_done += job.bytes;
      if (job.last_of_tensor) {
        ++stats.stream.tensors;
        if (progress) progress(bytes_done, plan.source_bytes);
      }
    }
    readers_group.join();
    copy_stream.synchronize();
    compute_stream.synchronize();
    stats.stream.bytes_read = bytes_done;
    target.finish();
  } catch (...) {
    readers_group.stop_and_join();
    // Nothing may still read or write the ring when it is freed.
    cudaStreamSynchronize(copy_stream);
    cudaStreamSynchronize(compute_stream);
    throw;
  }
  stats.stream.seconds =
      std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  return stats;
}

}  // namespace fp8llm::cuda
