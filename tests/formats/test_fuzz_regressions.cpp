// Inputs the fuzz targets found (docs/FUZZING.md), each of which once escaped as something other
// than a one-line fp8llm::Error: now each is that error.
#include <gtest/gtest.h>

#include <string>

#include "core/error.h"
#include "formats/generation_config.h"
#include "formats/hf_config.h"
#include "test_util.h"

namespace fp8llm::test {
namespace {

// fuzz_model_config: a number beyond a double's range is an out_of_range error in nlohmann's
// parser, not a parse_error; it escaped the readers (exit 1, "internal error").
TEST(FuzzRegressions, JsonNumberOverflowIsAnInvalidJsonError) {
  EXPECT_EQ(error_of([] {
              parse_model_config_text(R"({"model_type": "llama", "eos_token_id": 2e99999})",
                                      "config.json");
            }),
            "config.json: invalid JSON: number overflow parsing '2e99999'");
  EXPECT_EQ(error_of([] {
              parse_generation_config(R"({"eos_token_id": 1e400})", "generation_config.json");
            }),
            "generation_config.json: invalid JSON: [json.exception.out_of_range.406] number "
            "overflow parsing '1e400'");
}

// fuzz_model_config: generation_config.json numbers were converted to int and float unchecked,
// which is undefined for 5e9 as an int (UndefinedBehaviorSanitizer: float-cast-overflow).
TEST(FuzzRegressions, GenerationConfigNumbersOutOfRangeAreErrors) {
  const std::string file = "generation_config.json";
  EXPECT_EQ(error_of([&] { parse_generation_config(R"({"top_k": 5e9})", file); }),
            "generation_config.json: field 'top_k' is out of range (5000000000.0)");
  EXPECT_EQ(error_of([&] { parse_generation_config(R"({"temperature": 1e300})", file); }),
            "generation_config.json: field 'temperature' is out of range (1e+300)");
  EXPECT_EQ(error_of([&] { parse_generation_config(R"({"bos_token_id": 5000000000})", file); }),
            "generation_config.json: field 'bos_token_id' must be a token id (an integer from 0 "
            "to 2^31 - 1), not 5000000000");
  EXPECT_EQ(error_of([&] { parse_generation_config(R"({"eos_token_id": [1, -2]})", file); }),
            "generation_config.json: field 'eos_token_id' must be a token id (an integer from 0 "
            "to 2^31 - 1), not -2");
  EXPECT_EQ(error_of([&] { parse_generation_config(R"({"do_sample": 1})", file); }),
            "generation_config.json: field 'do_sample' must be true or false, not 1");
  const GenerationConfig g = parse_generation_config(
      R"({"top_k": 50, "temperature": 0.6, "bos_token_id": 1, "eos_token_id": [1, 2]})", file);
  EXPECT_EQ(g.top_k, 50);
  EXPECT_FLOAT_EQ(*g.temperature, 0.6f);
  EXPECT_EQ(g.eos_token_ids, (std::vector<int32_t>{1, 2}));
}

}  // namespace
}  // namespace fp8llm::test
