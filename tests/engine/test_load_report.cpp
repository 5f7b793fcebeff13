// The load report's timing and byte counts hang together.
#include <gtest/gtest.h>

#include "fp8llm/engine.h"
#include "test_util.h"

namespace fp8llm::test {
namespace {

TEST(LoadReport, StreamingIsPartOfTheLoadAndCountsEveryByte) {
  for (const char* q : {"fp8-block", "none"}) {
    SCOPED_TRACE(q);
    auto engine =
        Engine::load({.model_dir = data_path("tiny-llama"), .quantization = parse_quantization(q)});
    const LoadReport& r = engine->load_report();
    EXPECT_GT(r.stream_seconds, 0.0);
    EXPECT_LE(r.stream_seconds, r.seconds);
    EXPECT_GT(r.bytes_read, 0u);
    EXPECT_GE(r.bytes_read, r.largest_tensor_bytes);
  }
}

}  // namespace
}  // namespace fp8llm::test
