// Completions with echo and logprobs, the way evaluation harnesses score a text's likelihood: the
// prompt's tokens come first (the first without a log-probability), with the values `fp8llm
// generate --prompts-file` gives as prompt_logprobs, then the generated tokens; whole and streamed.
#include <gtest/gtest.h>

#include <fstream>
#include <nlohmann/json.hpp>
#include <string>

#include "server_process.h"

namespace fp8llm::test {
namespace {

using nlohmann::json;

const std::vector<int32_t> kPrompt = {0, 384, 950, 902, 17};

// prompt_logprobs of kPrompt (2 most likely tokens) from the offline batch path.
json offline_prompt_logprobs() {
  TempDir tmp;
  std::ofstream(tmp / "in.jsonl") << json{{"prompt_token_ids", kPrompt},
                                          {"max_tokens", 1},
                                          {"temperature", 0},
                                          {"prompt_logprobs", 2}}
                                         .dump()
                                  << "\n";
  const CliResult r =
      run_cli("generate --model " + data_path("tiny-llama").string() +
              " -q fp8-block --quiet --prompts-file " + (tmp / "in.jsonl").string() + " --out " +
              (tmp / "out.jsonl").string());
  EXPECT_EQ(r.exit_code, 0) << r.err;
  std::ifstream in(tmp / "out.jsonl");
  std::string line;
  std::getline(in, line);
  return json::parse(line)["prompt_logprobs"];
}

TEST(ServerPromptLogprobs, EchoWithLogprobsListsThePromptFirst) {
  const json offline = offline_prompt_logprobs();
  ASSERT_EQ(offline.size(), kPrompt.size());
  ServerProcess server("--quantization fp8-block");
  json body{{"prompt", kPrompt}, {"echo", true},     {"logprobs", 2},
            {"max_tokens", 2},   {"temperature", 0}, {"ignore_eos", true}};
  const auto r = server.client()->Post("/v1/completions", body.dump(), "application/json");
  ASSERT_TRUE(r && r->status == 200) << (r ? r->body : "no response");
  const json lp = json::parse(r->body)["choices"][0]["logprobs"];
  ASSERT_EQ(lp["token_logprobs"].size(), kPrompt.size() + 2) << lp;
  EXPECT_TRUE(lp["token_logprobs"][0].is_null());
  EXPECT_TRUE(lp["top_logprobs"][0].is_null());
  for (size_t p = 1; p < kPrompt.size(); ++p) {
    EXPECT_EQ(lp["token_logprobs"][p].get<float>(), offline[p]["logprob"].get<float>()) << p;
    // The two most likely, and the prompt's own token when it is not one of them.
    EXPECT_GE(lp["top_logprobs"][p].size(), 2u) << p;
    EXPECT_LE(lp["top_logprobs"][p].size(), 3u) << p;
  }
  // Offsets point into the text, which begins with the prompt's (the special first token adds
  // none).
  const std::string text = json::parse(r->body)["choices"][0]["text"];
  EXPECT_EQ(lp["text_offset"][0], 0);
  for (size_t p = 1; p < kPrompt.size(); ++p) {
    const std::string token = lp["tokens"][p];
    EXPECT_EQ(text.substr(lp["text_offset"][p].get<size_t>(), token.size()), token) << p;
  }

  // Streamed: the first chunk carries the prompt's entries and the first generated token's (the
  // second too, when it came before the chunk was sent).
  body["stream"] = true;
  const auto s = server.client()->Post("/v1/completions", body.dump(), "application/json");
  ASSERT_TRUE(s && s->status == 200) << (s ? s->body : "no response");
  const std::string first_event = s->body.substr(0, s->body.find("\n\n"));
  ASSERT_TRUE(first_event.starts_with("data: ")) << s->body;
  const json chunk = json::parse(first_event.substr(6));
  const json& streamed = chunk["choices"][0]["logprobs"]["token_logprobs"];
  ASSERT_GE(streamed.size(), kPrompt.size() + 1) << chunk;
  ASSERT_LE(streamed.size(), kPrompt.size() + 2) << chunk;
  for (size_t p = 0; p < streamed.size(); ++p) EXPECT_EQ(streamed[p], lp["token_logprobs"][p]);
  EXPECT_EQ(server.stop(SIGTERM), 0) << server.log();
}

}  // namespace
}  // namespace fp8llm::test
