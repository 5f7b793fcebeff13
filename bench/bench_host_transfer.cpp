// Where a load's host-to-device time goes: each step of the page-cache -> device path timed alone
// on the checkpoint's own files (page cache warm), so that the loader's design follows measured
// rates rather than guesses. Prints one line per step with its GB/s.
//
//   bench_host_transfer FILE... [--threads T] [--window-gib W]
//
// Steps, in this order (the first means something only as the process's first CUDA call):
// - the CUDA start-up: the driver's initialization, then the primary context's creation;
// - filling the page tables of the whole mapping (MADV_POPULATE_READ), 1 and T threads;
// - cudaHostRegister + unregister of each 128 MiB chunk of a fresh mapping, 1 and T threads, and
//   the same after the page tables were filled;
// - device copies out of W GiB of registered page cache: alone; enqueued one by one while T
//   threads register other chunks; all enqueued before those threads start;
// - T threads pread W GiB into anonymous memory (first touch, then again), registering that
//   memory, and device copies out of it;
// - device copies out of cudaHostAlloc'd memory (the link's own rate): alone and while T threads
//   register; pread into it with T and 2T threads while the device copies out of it.
#include <fcntl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <chrono>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <functional>
#include <stdexcept>
#include <string>
#include <thread>
#include <vector>

#include "backend/cuda/runtime/cuda_check.h"
#include "backend/cuda/runtime/device_buffer.h"
#include "backend/cuda/runtime/stream.h"
#include "cuda_timing.h"

namespace fp8llm::cuda {
namespace {

constexpr uint64_t kChunk = 128ull << 20;

double now_s() {
  return std::chrono::duration<double>(std::chrono::steady_clock::now().time_since_epoch()).count();
}

struct Mapped {
  std::string path;
  int fd = -1;
  std::byte* base = nullptr;
  uint64_t size = 0;
};

struct Chunk {
  std::byte* p;
  uint64_t len;
};

std::vector<Mapped> map_files(const std::vector<std::string>& paths) {
  std::vector<Mapped> maps;
  for (const std::string& path : paths) {
    Mapped m;
    m.path = path;
    m.fd = ::open(path.c_str(), O_RDONLY);
    if (m.fd < 0) throw std::runtime_error(path + ": " + std::strerror(errno));
    struct stat st {};
    ::fstat(m.fd, &st);
    m.size = static_cast<uint64_t>(st.st_size);
    void* p = ::mmap(nullptr, m.size, PROT_READ, MAP_SHARED, m.fd, 0);
    if (p == MAP_FAILED) throw std::runtime_error(path + ": mmap: " + std::strerror(errno));
    m.base = static_cast<std::byte*>(p);
    maps.push_back(m);
  }
  return maps;
}

void unmap_files(std::vector<Mapped>& maps) {
  for (Mapped& m : maps) {
    ::munmap(m.base, m.size);
    ::close(m.fd);
  }
  maps.clear();
}

std::vector<Chunk> chunks_of(const std::vector<Mapped>& maps) {
  const uint64_t page = static_cast<uint64_t>(::sysconf(_SC_PAGESIZE));
  std::vector<Chunk> chunks;
  for (const Mapped& m : maps) {
    for (uint64_t b = 0; b < m.size; b += kChunk) {
      const uint64_t len = std::min(kChunk, m.size - b);
      chunks.push_back({m.base + b, (len + page - 1) / page * page});
    }
  }
  return chunks;
}

// Runs fn(i) for every i < n on `threads` threads, each taking the next index; returns seconds.
double on_threads(size_t n, int threads, const std::function<void(size_t)>& fn) {
  std::atomic<size_t> next{0};
  const double t0 = now_s();
  std::vector<std::thread> pool;
  for (int t = 0; t < threads; ++t) {
    pool.emplace_back([&] {
      for (size_t i = next++; i < n; i = next++) fn(i);
    });
  }
  for (std::thread& th : pool) th.join();
  return now_s() - t0;
}

uint64_t total_bytes(const std::vector<Chunk>& chunks, size_t n) {
  uint64_t b = 0;
  for (size_t i = 0; i < n; ++i) b += chunks[i].len;
  return b;
}

void report(const char* step, uint64_t bytes, double seconds) {
  std::printf("%-34s %7.2f GiB in %7.3f s: %6.1f GB/s\n", step,
              static_cast<double>(bytes) / (1ull << 30), seconds,
              static_cast<double>(bytes) / seconds / 1e9);
  std::fflush(stdout);
}

void populate(const Chunk& c) {
#ifdef MADV_POPULATE_READ
  if (::madvise(c.p, c.len, MADV_POPULATE_READ) != 0)
    throw std::runtime_error(std::string("MADV_POPULATE_READ: ") + std::strerror(errno));
#else
  (void)c;
  throw std::runtime_error("MADV_POPULATE_READ is not defined on this system");
#endif
}

void drop(const Chunk& c) {
  ::madvise(c.p, c.len, MADV_DONTNEED);
}

// Copies chunks [0, n) to `dst` (one chunk's size) on one stream; returns seconds.
double copy_chunks(const std::vector<Chunk>& chunks, size_t n, const DeviceBuffer& dst,
                   cudaStream_t stream) {
  const double t0 = now_s();
  for (size_t i = 0; i < n; ++i)
    CUDA_CHECK(
        cudaMemcpyAsync(dst.data(), chunks[i].p, chunks[i].len, cudaMemcpyHostToDevice, stream));
  CUDA_CHECK(cudaStreamSynchronize(stream));
  return now_s() - t0;
}

void register_chunk(const Chunk& c) {
  CUDA_CHECK(cudaHostRegister(c.p, c.len, cudaHostRegisterReadOnly));
}
void unregister_chunk(const Chunk& c) {
  CUDA_CHECK(cudaHostUnregister(c.p));
}

// What the loader does to each chunk, less the copy: lock it, unlock it, drop its pages.
void register_cycle(const Chunk& c) {
  register_chunk(c);
  unregister_chunk(c);
  drop(c);
}

// `threads` threads registering, unregistering and dropping chunks [from, end) one after another
// until stop(), beside whatever the caller times meanwhile.
class BackgroundRegistering {
 public:
  BackgroundRegistering(const std::vector<Chunk>& chunks, size_t from, int threads) : next_(from) {
    for (int t = 0; t < threads; ++t) {
      pool_.emplace_back([this, &chunks] {
        while (!stop_) {
          const size_t i = next_++;
          if (i >= chunks.size()) break;
          register_cycle(chunks[i]);
          registered_ += chunks[i].len;
        }
      });
    }
  }
  ~BackgroundRegistering() { stop(); }
  // Stops the threads (each finishes its chunk); returns the bytes registered until then.
  uint64_t stop() {
    const uint64_t bytes = registered_;
    stop_ = true;
    for (std::thread& th : pool_) th.join();
    pool_.clear();
    return bytes;
  }

 private:
  std::atomic<bool> stop_{false};
  std::atomic<size_t> next_;
  std::atomic<uint64_t> registered_{0};
  std::vector<std::thread> pool_;
};

int run(int argc, char** argv) {
  std::vector<std::string> files;
  int threads = 8;
  double window_gib = 2.0;
  for (int i = 1; i < argc; ++i) {
    const std::string a = argv[i];
    if (a == "--threads" && i + 1 < argc) {
      threads = std::atoi(argv[++i]);
    } else if (a == "--window-gib" && i + 1 < argc) {
      window_gib = std::atof(argv[++i]);
    } else {
      files.push_back(a);
    }
  }
  if (files.empty()) throw std::runtime_error("usage: bench_host_transfer FILE... [--threads T]");

  double t0 = now_s();
  int devices = 0;
  CUDA_CHECK(cudaGetDeviceCount(&devices));
  const double driver = now_s() - t0;
  t0 = now_s();
  CUDA_CHECK(cudaFree(nullptr));
  std::printf("cuda start: driver %.3f s, context %.3f s\n", driver, now_s() - t0);

  std::vector<Mapped> maps = map_files(files);
  std::vector<Chunk> chunks = chunks_of(maps);
  const uint64_t all = total_bytes(chunks, chunks.size());
  report("populate (1 thread)", total_bytes(chunks, chunks.size() / 4),
         on_threads(chunks.size() / 4, 1, [&](size_t i) { populate(chunks[i]); }));
  for (size_t i = 0; i < chunks.size(); ++i) drop(chunks[i]);
  unmap_files(maps);

  maps = map_files(files);
  chunks = chunks_of(maps);
  report(("populate (" + std::to_string(threads) + " threads)").c_str(), all,
         on_threads(chunks.size(), threads, [&](size_t i) { populate(chunks[i]); }));
  for (size_t i = 0; i < chunks.size(); ++i) drop(chunks[i]);
  unmap_files(maps);

  for (int t : {1, threads}) {
    maps = map_files(files);
    chunks = chunks_of(maps);
    const size_t n = t == 1 ? chunks.size() / 4 : chunks.size();
    report(("register + unregister (" + std::to_string(t) + " threads)").c_str(),
           total_bytes(chunks, n), on_threads(n, t, [&](size_t i) { register_cycle(chunks[i]); }));
    unmap_files(maps);
  }
  maps = map_files(files);
  chunks = chunks_of(maps);
  on_threads(chunks.size(), threads, [&](size_t i) { populate(chunks[i]); });
  report(("register, populated (" + std::to_string(threads) + " threads)").c_str(), all,
         on_threads(chunks.size(), threads, [&](size_t i) { register_cycle(chunks[i]); }));
  unmap_files(maps);

  Stream stream;
  DeviceBuffer dst(kChunk);
  maps = map_files(files);
  chunks = chunks_of(maps);
  const size_t window =
      std::min(chunks.size() / 2, static_cast<size_t>(window_gib * (1ull << 30) / kChunk));
  on_threads(window, threads, [&](size_t i) { register_chunk(chunks[i]); });
  copy_chunks(chunks, 1, dst, stream);
  report("copy registered page cache", total_bytes(chunks, window),
         copy_chunks(chunks, window, dst, stream));
  {
    // The same copies while other chunks are registered and unregistered: whether the two share
    // a lock in the driver (the loader does both at once).
    BackgroundRegistering others(chunks, window, threads);
    const double s = copy_chunks(chunks, window, dst, stream);
    const uint64_t reg = others.stop();
    report("copy registered, while registering", total_bytes(chunks, window), s);
    report("  (registered meanwhile)", reg, s);
  }
  {
    // The copies all enqueued first, then the registering started: whether the copy engine
    // itself slows while pages are registered, or only the enqueuing waits.
    for (size_t i = window; i < chunks.size(); ++i) drop(chunks[i]);
    const double t_copy = now_s();
    for (size_t i = 0; i < window; ++i)
      CUDA_CHECK(
          cudaMemcpyAsync(dst.data(), chunks[i].p, chunks[i].len, cudaMemcpyHostToDevice, stream));
    const double enqueued = now_s() - t_copy;
    BackgroundRegistering others(chunks, window, threads);
    CUDA_CHECK(cudaStreamSynchronize(stream));
    const double s = now_s() - t_copy;
    others.stop();
    std::printf("(copies enqueued in %.4f s)\n", enqueued);
    report("copy enqueued, then registering", total_bytes(chunks, window), s);
  }
  for (size_t i = 0; i < window; ++i) unregister_chunk(chunks[i]);
  for (size_t i = 0; i < chunks.size(); ++i) drop(chunks[i]);

  // Anonymous memory filled by pread: what a ring of plain memory would give.
  const uint64_t anon_bytes = total_bytes(chunks, window);
  void* anon =
      ::mmap(nullptr, anon_bytes, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
  if (anon == MAP_FAILED) throw std::runtime_error("mmap anonymous failed");
  ::madvise(anon, anon_bytes, MADV_HUGEPAGE);
  auto* abase = static_cast<std::byte*>(anon);
  std::vector<uint64_t> offsets(window);
  for (size_t i = 1; i < window; ++i) offsets[i] = offsets[i - 1] + chunks[i - 1].len;
  // The chunks' file and offset, for pread.
  std::vector<std::pair<int, uint64_t>> where;
  for (const Mapped& m : maps)
    for (uint64_t b = 0; b < m.size; b += kChunk) where.emplace_back(m.fd, b);
  constexpr uint64_t kPiece = 8ull << 20;
  // The window's chunks read into `base` (laid out as `offsets`) by `t` threads in 8 MiB pieces.
  auto pread_window = [&](std::byte* base, int t) {
    const size_t pieces_per_chunk = kChunk / kPiece;
    return on_threads(window * pieces_per_chunk, t, [&](size_t k) {
      const size_t i = k / pieces_per_chunk;
      const uint64_t off = (k % pieces_per_chunk) * kPiece;
      if (off >= chunks[i].len) return;
      const uint64_t len = std::min(kPiece, chunks[i].len - off);
      const ssize_t r = ::pread(where[i].first, base + offsets[i] + off, len,
                                static_cast<off_t>(where[i].second + off));
      if (r < 0) throw std::runtime_error(std::string("pread: ") + std::strerror(errno));
    });
  };
  report("pread anon (first touch)", anon_bytes, pread_window(abase, threads));
  report("pread anon (again)", anon_bytes, pread_window(abase, threads));
  double t_reg = now_s();
  CUDA_CHECK(cudaHostRegister(anon, anon_bytes, 0));
  report("register anon", anon_bytes, now_s() - t_reg);
  std::vector<Chunk> anon_chunks;
  for (size_t i = 0; i < window; ++i) anon_chunks.push_back({abase + offsets[i], chunks[i].len});
  copy_chunks(anon_chunks, 1, dst, stream);
  report("copy anon", anon_bytes, copy_chunks(anon_chunks, window, dst, stream));
  CUDA_CHECK(cudaHostUnregister(anon));
  ::munmap(anon, anon_bytes);
  std::vector<Mapped> first_maps = std::move(maps);

  void* pinned = nullptr;
  CUDA_CHECK(cudaHostAlloc(&pinned, anon_bytes, cudaHostAllocDefault));
  std::vector<Chunk> pinned_chunks;
  for (size_t i = 0; i < window; ++i)
    pinned_chunks.push_back({static_cast<std::byte*>(pinned) + offsets[i], chunks[i].len});
  copy_chunks(pinned_chunks, 1, dst, stream);
  report("copy pinned", anon_bytes, copy_chunks(pinned_chunks, window, dst, stream));
  {
    // Pinned copies while other chunks are registered: whether registering holds up every copy.
    maps = map_files(files);
    chunks = chunks_of(maps);
    {
      BackgroundRegistering others(chunks, 0, threads);
      report("copy pinned, while registering", anon_bytes,
             copy_chunks(pinned_chunks, window, dst, stream));
    }
    // pread into pinned memory while the device copies out of it (a ring's two sides at once).
    for (int t : {threads, 2 * threads}) {
      std::atomic<bool> copying{true};
      std::thread copier([&] {
        while (copying) copy_chunks(pinned_chunks, window, dst, stream);
      });
      auto* pbase = static_cast<std::byte*>(pinned);
      const double sp = pread_window(pbase, t) + pread_window(pbase, t);
      copying = false;
      copier.join();
      report(("pread pinned, copies beside (" + std::to_string(t) + " threads)").c_str(),
             2 * anon_bytes, sp);
    }
    unmap_files(maps);
  }
  CUDA_CHECK(cudaFreeHost(pinned));
  unmap_files(first_maps);
  return 0;
}

}  // namespace
}  // namespace fp8llm::cuda

int main(int argc, char** argv) {
  return fp8llm::cuda::bench::main_of("bench_host_transfer", fp8llm::cuda::run, argc, argv);
}
