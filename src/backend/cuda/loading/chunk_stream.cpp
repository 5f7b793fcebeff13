#include "backend/cuda/loading/chunk_stream.h"

#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstring>
#include <map>
#include <memory>
#include <optional>
#include <vector>

#include "backend/cuda/loading/chunk_read_ring.h"
#include "backend/cuda/runtime/cuda_check.h"
#include "backend/cuda/runtime/device_buffer.h"
#include "backend/cuda/runtime/event.h"
#include "backend/cuda/runtime/stream.h"
#include "core/error.h"
#include "core/log.h"

namespace fp8llm::cuda {
namespace {

uint64_t page_size() {
  static const uint64_t page = static_cast<uint64_t>(::sysconf(_SC_PAGESIZE));
  return page;
}

// A read-only shared mapping of a whole file, unmapped on destruction.
class FileMapping {
 public:
  explicit FileMapping(const SafetensorsFile& file) : size_(file.file_size()) {
    void* p = ::mmap(nullptr, size_, PROT_READ, MAP_SHARED, file.fd(), 0);
    FP8LLM_CHECK(p != MAP_FAILED, "{}: cannot map the file: {}", file.path().string(),
                 std::strerror(errno));
    base_ = static_cast<std::byte*>(p);
  }
  ~FileMapping() {
    if (base_ != nullptr) ::munmap(base_, size_);
  }
  FileMapping(const FileMapping&) = delete;
  FileMapping& operator=(const FileMapping&) = delete;
  std::byte* base() const { return base_; }
  uint64_t size() const { return size_; }

 private:
  std::byte* base_ = nullptr;
  uint64_t size_ = 0;
};

// A page-aligned range of one file: its mapping page-locked while tensors are copied out of it,
// or read into a slot of the read ring.
struct Chunk {
  size_t file = 0;
  uint64_t begin = 0;  // file offsets
  uint64_t end = 0;
  std::optional<size_t> ring_index;  // read into the ring (its chunk number there), not registered
  bool registered = false;
  Event used;  // recorded after the last copy out of this chunk
};

// Whether chunk c of a stream goes through the read ring: spread evenly, `share` of them.
bool read_into_ring(size_t c, double share) {
  if (share <= 0) return false;
  if (share >= 1) return true;
  return static_cast<size_t>(static_cast<double>(c + 1) * share) >
         static_cast<size_t>(static_cast<double>(c) * share);
}

// Registering or reading fails where a file no longer holds the bytes its header promised (cut
// after it was opened): name the first tensor past the end.
void check_not_truncated(const LoadPlan& plan, const SafetensorsFile& file) {
  struct stat st {};
  if (::fstat(file.fd(), &st) != 0) return;
  for (const PlannedTensor& t : plan.tensors) {
    if (t.source.file != &file) continue;
    FP8LLM_CHECK(t.source.info->offset + t.source.info->nbytes <= static_cast<uint64_t>(st.st_size),
                 "{}: reading tensor '{}' failed: unexpected end of file", file.path().string(),
                 t.source.info->name);
  }
}

}  // namespace

bool registered_streaming_available(const LoadPlan& plan) {
  if (plan.tensors.empty()) return false;
  try {
    const FileMapping map(*plan.tensors.front().source.file);
    if (map.size() < page_size()) return false;
    if (cudaHostRegister(map.base(), page_size(), cudaHostRegisterReadOnly) != cudaSuccess) {
      (void)cudaGetLastError();
      return false;
    }
    CUDA_CHECK(cudaHostUnregister(map.base()));
    return true;
  } catch (const Error&) {
    return false;
  }
}

DeviceStreamStats stream_chunks(const LoadPlan& plan, DeviceStreamTarget& target,
                                const DeviceStreamOptions& options,
                                const StreamProgress& progress) {
  const auto start = std::chrono::steady_clock::now();
  const uint64_t page = page_size();
  const uint64_t chunk_bytes = std::max<uint64_t>(options.chunk_bytes / page * page, page);
  const size_t staging_slots = std::max<size_t>(options.staging_buffers, 2);
  // Chunks registered ahead of the one being copied from. Registering is the slow side (about
  // 30-41 GB/s against the copies' 55), so one ahead keeps the copy engine's queue from running
  // dry while the next is registered.
  constexpr size_t kAhead = 1;

  // Where each tensor goes: asked once per tensor, in file order, before any byte is read.
  std::vector<std::byte*> direct(plan.tensors.size());
  uint64_t largest_staged = 0;
  for (size_t i = 0; i < plan.tensors.size(); ++i) {
    direct[i] = static_cast<std::byte*>(target.direct_destination(plan.tensors[i]));
    if (!direct[i]) largest_staged = std::max(largest_staged, plan.tensors[i].source.info->nbytes);
  }

  // The files in the order the plan first uses them, and the chunks each tensor spans.
  std::map<const SafetensorsFile*, size_t> file_index;
  std::vector<const SafetensorsFile*> files;
  for (const PlannedTensor& t : plan.tensors) {
    if (file_index.emplace(t.source.file, files.size()).second) files.push_back(t.source.file);
  }
  for (const SafetensorsFile* f : files) check_not_truncated(plan, *f);
  // Mapped only where some chunk is registered: reading every chunk needs no mapping.
  const bool register_any = options.pread_share < 1;
  std::vector<std::unique_ptr<FileMapping>> maps;
  std::vector<Chunk> chunks;
  std::vector<size_t> first_chunk(files.size());
  for (size_t f = 0; f < files.size(); ++f) {
    maps.push_back(register_any ? std::make_unique<FileMapping>(*files[f]) : nullptr);
    first_chunk[f] = chunks.size();
    const uint64_t size = files[f]->file_size();
    for (uint64_t b = 0; b < size; b += chunk_bytes)
      chunks.push_back({f, b, std::min(size, b + chunk_bytes), {}, false, {}});
  }
  // Part of the chunks go through the read ring, whose readers pread them while this thread
  // registers the others: they need no registering, the others no host copy.
  std::vector<ChunkReadRing::Range> ring_ranges;
  for (size_t c = 0; c < chunks.size(); ++c) {
    if (!read_into_ring(c, options.pread_share)) continue;
    chunks[c].ring_index = ring_ranges.size();
    ring_ranges.push_back({files[chunks[c].file]->fd(), files[chunks[c].file]->path().string(),
                           chunks[c].begin, chunks[c].end});
  }
  std::optional<ChunkReadRing> ring;
  if (!ring_ranges.empty()) {
    ring.emplace(std::move(ring_ranges), options.read_slots, chunk_bytes, options.reader_threads,
                 options.piece_bytes);
  }
  auto chunk_of = [&](size_t f, uint64_t offset) {
    return first_chunk[f] + static_cast<size_t>(offset / chunk_bytes);
  };
  auto chunk_address = [&](const Chunk& ch) { return maps[ch.file]->base() + ch.begin; };
  auto chunk_length = [&](const Chunk& ch) { return (ch.end - ch.begin + page - 1) / page * page; };

  std::vector<DeviceBuffer> staging;
  std::vector<Event> copied(staging_slots), consumed(staging_slots);
  if (largest_staged > 0) {
    for (size_t s = 0; s < staging_slots; ++s) staging.emplace_back(largest_staged);
  }
  Stream copy_stream;
  Stream compute_stream;
  DeviceStreamStats stats;
  stats.staging_device_bytes = largest_staged > 0 ? staging_slots * largest_staged : 0;

  // Every driver call of the stream is made on this one thread. Registering holds a lock in the
  // driver that enqueuing a copy also takes, while the copies already enqueued run on at full
  // speed (bench/bench_host_transfer: copies enqueued one by one beside threads that register
  // ran at 6-10 GB/s, the same copies enqueued first at 55). Registering on helper threads left
  // the copies waiting for the lock; taking turns here, each chunk's copies are enqueued before
  // the next chunk is registered, and run while it is.
  size_t registered_upto = 0;  // chunks [0, registered_upto) have been registered
  auto register_upto = [&](size_t upto) {
    for (upto = std::min(upto, chunks.size()); registered_upto < upto; ++registered_upto) {
      Chunk& ch = chunks[registered_upto];
      if (ch.ring_index) continue;
      const cudaError_t err =
          cudaHostRegister(chunk_address(ch), chunk_length(ch), cudaHostRegisterReadOnly);
      if (err != cudaSuccess) {
        (void)cudaGetLastError();
        check_not_truncated(plan, *files[ch.file]);
        CUDA_CHECK(err);
      }
      ch.registered = true;
    }
  };
  // The next chunk after c that is registered (not read into the ring), or chunks.size().
  auto next_registered = [&](size_t c) {
    for (++c; c < chunks.size() && chunks[c].ring_index; ++c) {
    }
    return c;
  };
  // Hands back to the ring every ring chunk before `upto`, including any no tensor was copied
  // out of, so that its readers get past them.
  size_t released_upto = 0;
  auto release_ring_before = [&](size_t upto) {
    for (; released_upto < upto; ++released_upto) {
      const Chunk& ch = chunks[released_upto];
      if (ch.ring_index) ring->release(*ch.ring_index, copy_stream);
    }
  };
  // The host address of a file offset in chunk c; waits for a ring chunk to be read.
  auto host_address = [&](size_t c, uint64_t offset) -> const std::byte* {
    const Chunk& ch = chunks[c];
    if (!ch.ring_index) return maps[ch.file]->base() + offset;
    try {
      return ring->wait_filled(*ch.ring_index) + (offset - ch.begin);
    } catch (const Error&) {
      check_not_truncated(plan, *files[ch.file]);  // names the tensor where it can
      throw;
    }
  };
  // Unlocks and drops from this process's pages every chunk before `upto` (their copies done).
  size_t unregistered = 0;
  auto release_before = [&](size_t upto) {
    for (; unregistered < upto; ++unregistered) {
      Chunk& ch = chunks[unregistered];
      if (!ch.registered) continue;
      ch.used.synchronize();
      CUDA_CHECK(cudaHostUnregister(chunk_address(ch)));
      ch.registered = false;
      // The page cache keeps the bytes; this process stops holding them.
      ::madvise(chunk_address(ch), chunk_length(ch), MADV_DONTNEED);
    }
  };

  try {
    uint64_t bytes_done = 0;
    size_t staged = 0;
    for (size_t i = 0; i < plan.tensors.size(); ++i) {
      const PlannedTensor& t = plan.tensors[i];
      const size_t f = file_index.at(t.source.file);
      const uint64_t begin = t.source.info->offset, bytes = t.source.info->nbytes;
      std::byte* dst = direct[i];
      size_t slot = 0;
      if (!dst) {
        slot = staged++ % staging_slots;
        CUDA_CHECK(cudaStreamWaitEvent(copy_stream, consumed[slot].get(), 0));
        dst = staging[slot].as<std::byte>();
      }
      for (uint64_t off = 0; off < bytes;) {
        const size_t c = chunk_of(f, begin + off);
        // Plans go in file order: no later copy reads a chunk before this one, so those can go.
        // The last two stay locked a little longer, so that releasing them does not wait for
        // copies still in flight.
        release_before(c >= 2 ? c - 2 : 0);
        release_ring_before(c);
        register_upto(c + 1);
        Chunk& ch = chunks[c];
        const uint64_t len = std::min(bytes - off, ch.end - (begin + off));
        CUDA_CHECK(cudaMemcpyAsync(dst + off, host_address(c, begin + off), len,
                                   cudaMemcpyHostToDevice, copy_stream));
        ch.used.record(copy_stream);
        if (ch.ring_index) stats.pread_bytes += len;
        off += len;
        // This chunk's copies are all enqueued: hand a ring chunk's slot back, and register the
        // next chunks while the copies run.
        if (begin + off >= ch.end) {
          release_ring_before(c + 1);
          size_t upto = c;
          for (size_t a = 0; a < kAhead; ++a) upto = next_registered(upto);
          register_upto(upto + 1);
        }
      }
      if (!direct[i]) {
        copied[slot].record(copy_stream);
        CUDA_CHECK(cudaStreamWaitEvent(compute_stream, copied[slot].get(), 0));
        target.consume_on_device(t, dst, compute_stream);
        consumed[slot].record(compute_stream);
      }
      bytes_done += bytes;
      ++stats.stream.tensors;
      if (progress) progress(bytes_done, plan.source_bytes);
    }
    release_before(chunks.size());
    if (ring) release_ring_before(chunks.size());
    copy_stream.synchronize();
    compute_stream.synchronize();
    stats.stream.bytes_read = bytes_done;
    target.finish();
  } catch (...) {
    cudaStreamSynchronize(copy_stream);
    cudaStreamSynchronize(compute_stream);
    for (Chunk& ch : chunks) {
      if (ch.registered) cudaHostUnregister(chunk_address(ch));
    }
    (void)cudaGetLastError();
    throw;
  }
  stats.stream.seconds =
      std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  return stats;
}

}  // namespace fp8llm::cuda
