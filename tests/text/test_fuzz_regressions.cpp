// Inputs of the text readers that escaped as something other than a one-line fp8llm::Error
// (docs/FUZZING.md): now each is that error.
#include <gtest/gtest.h>

#include <fstream>
#include <string>

#include "core/error.h"
#include "test_util.h"
#include "text/chat_template.h"
#include "text/tokenizer.h"
#include "text/tokenizer_config.h"

namespace fp8llm::test {
namespace {

// nlohmann's parser reports a number beyond a double's range as out_of_range, not parse_error:
// tokenizer.json, tokenizer_config.json and the chat template's config let it escape (exit 1).
TEST(TextFuzzRegressions, JsonNumberOverflowIsAnInvalidJsonError) {
  const std::string overflow = R"({"model": {"type": "BPE", "dropout": 1e400}})";
  EXPECT_EQ(error_of([&] { Tokenizer::from_json(overflow, "tokenizer.json"); }),
            "tokenizer.json: invalid JSON: [json.exception.out_of_range.406] number overflow "
            "parsing '1e400'");
  EXPECT_EQ(error_of([&] { TokenizerConfig::parse(overflow, "tokenizer_config.json"); }),
            "tokenizer_config.json: invalid JSON: [json.exception.out_of_range.406] number "
            "overflow parsing '1e400'");
  TempDir tmp;
  std::ofstream(tmp / "tokenizer_config.json") << R"({"chat_template": "x", "bos_token": 1e400})";
  EXPECT_EQ(error_of([&] { ChatTemplate::from_tokenizer_config(tmp.path()); }),
            (tmp / "tokenizer_config.json").string() +
                ": invalid JSON: [json.exception.out_of_range.406] number overflow parsing "
                "'1e400'");
}

}  // namespace
}  // namespace fp8llm::test
