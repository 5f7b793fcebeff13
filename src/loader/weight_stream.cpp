#include "loader/weight_stream.h"

#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <condition_variable>
#include <cstring>
#include <exception>
#include <mutex>
#include <thread>
#include <vector>

#include "core/error.h"

namespace fp8llm {
namespace {

void read_exact(const CheckpointTensor& t, std::byte* dst) {
  uint64_t done = 0;
  while (done < t.info->nbytes) {
    const ssize_t n = ::pread(t.file->fd(), dst + done, t.info->nbytes - done,
                              static_cast<off_t>(t.info->offset + done));
    if (n < 0 && errno == EINTR) continue;
    FP8LLM_CHECK(n > 0, "{}: reading tensor '{}' failed: {}", t.file->path().string(),
                 t.info->name, n == 0 ? "unexpected end of file" : std::strerror(errno));
    done += static_cast<uint64_t>(n);
  }
}

// Two staging slots: the reader fills one while the consumer works on the other.
struct Slot {
  std::vector<std::byte> staging;
  const std::byte* data = nullptr;  // staging.data() or the sink's direct destination
  size_t tensor = 0;
  bool full = false;
};

}  // namespace

StreamStats stream_weights(const LoadPlan& plan, WeightSink& sink, const StreamProgress& progress) {
  const auto start = std::chrono::steady_clock::now();
  StreamStats stats;
  Slot slots[2];
  std::mutex mu;
  std::condition_variable cv;
  bool stop = false;
  std::exception_ptr reader_error;

  std::thread reader([&] {
    try {
      for (size_t i = 0; i < plan.tensors.size(); ++i) {
        Slot& slot = slots[i % 2];
        {
          std::unique_lock lock(mu);
          cv.wait(lock, [&] { return !slot.full || stop; });
          if (stop) return;
        }
        const PlannedTensor& t = plan.tensors[i];
        std::byte* dst = sink.direct_destination(t);
        if (!dst) {
          slot.staging.resize(t.source.info->nbytes);
          dst = slot.staging.data();
        }
        read_exact(t.source, dst);
        slot.data = dst;
        {
          std::lock_guard lock(mu);
          slot.tensor = i;
          slot.full = true;
        }
        cv.notify_all();
      }
    } catch (...) {
      std::lock_guard lock(mu);
      reader_error = std::current_exception();
      cv.notify_all();
    }
  });

  try {
    for (size_t i = 0; i < plan.tensors.size(); ++i) {
      Slot& slot = slots[i % 2];
      {
        std::unique_lock lock(mu);
        cv.wait(lock, [&] { return slot.full || reader_error; });
        if (!slot.full) std::rethrow_exception(reader_error);
      }
      const PlannedTensor& t = plan.tensors[slot.tensor];
      const TensorView view{t.source.info->dtype, t.source.info->shape, slot.data,
                            t.source.info->nbytes};
      sink.consume(t, view);
      stats.bytes_read += view.nbytes;
      ++stats.tensors;
      {
        std::lock_guard lock(mu);
        slot.full = false;
      }
      cv.notify_all();
      if (progress) progress(stats.bytes_read, plan.source_bytes);
    }
  } catch (...) {
    {
      std::lock_guard lock(mu);
      stop = true;
    }
    cv.notify_all();
    reader.join();
    throw;
  }
  reader.join();
  stats.seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  return stats;
}

}  // namespace fp8llm
