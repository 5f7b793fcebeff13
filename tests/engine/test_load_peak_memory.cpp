// LoadReport's host memory counts what the load itself held at its peak, not what the process held
// before it: memory touched before Engine::load is not charged to the load (the CLI prints
// peak_host_bytes against "resident + largest tensor + 64 MiB"), memory held during it is.
#include <gtest/gtest.h>

#include <cstdio>
#include <cstring>
#include <vector>

#include "fp8llm/engine.h"
#include "test_util.h"

namespace fp8llm::test {
namespace {

constexpr uint64_t kMiB = 1ull << 20;

LoadOptions tiny_llama() {
  return {.model_dir = data_path("tiny-llama"),
          .quantization = Quantization::Fp8Row,
          .registry = data_path("no-registry.json")};
}

// Makes `bytes` resident (every page written) and frees them again: the process's resident set
// falls back, its lifetime peak does not. (Blocks this large are mapped and unmapped on their own.)
void touch_and_free(uint64_t bytes) {
  std::vector<char> block(bytes);
  std::memset(block.data(), 1, block.size());
  volatile char sink = block[block.size() / 2];
  (void)sink;
}

TEST(LoadPeakMemory, MemoryHeldBeforeTheLoadIsNotTheLoads) {
  touch_and_free(512 * kMiB);  // what a runtime's start-up or an earlier job might have left
  const auto engine = Engine::load(tiny_llama());
  const LoadReport& r = engine->load_report();
  const uint64_t bound = r.resident_bytes + r.largest_tensor_bytes + 64 * kMiB;
  std::printf("load peak %llu bytes, process peak %llu bytes, bound %llu bytes\n",
              static_cast<unsigned long long>(r.peak_host_bytes),
              static_cast<unsigned long long>(r.process_peak_host_bytes),
              static_cast<unsigned long long>(bound));
  EXPECT_LE(r.peak_host_bytes, bound);
  // The process's total at the load's peak includes what it held before, but not the 512 MiB
  // given back before the load began.
  EXPECT_GE(r.process_peak_host_bytes, r.peak_host_bytes);
  EXPECT_LT(r.process_peak_host_bytes, 512 * kMiB);
}

TEST(LoadPeakMemory, MemoryHeldDuringTheLoadCounts) {
  LoadOptions o = tiny_llama();
  bool touched = false;
  // Progress is reported from inside the load: 128 MiB held there for a moment is its peak.
  o.progress = [&touched](uint64_t, uint64_t) {
    if (touched) return;
    touched = true;
    touch_and_free(128 * kMiB);
  };
  const auto engine = Engine::load(o);
  ASSERT_TRUE(touched);
  const LoadReport& r = engine->load_report();
  EXPECT_GE(r.peak_host_bytes, 128 * kMiB);
  EXPECT_LT(r.peak_host_bytes, 128 * kMiB + r.resident_bytes + r.largest_tensor_bytes + 64 * kMiB);
  EXPECT_GE(r.process_peak_host_bytes, r.peak_host_bytes);
}

}  // namespace
}  // namespace fp8llm::test
