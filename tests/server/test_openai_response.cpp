// Responses and stream chunks as OpenAI's clients read them: completions' and chat's shapes,
// log-probabilities in each endpoint's form, echo, usage, token ids; and /metrics' text.
#include <gtest/gtest.h>

#include <cmath>

#include "server/metrics.h"
#include "server/openai_response.h"
#include "test_util.h"

namespace fp8llm::server {
namespace {

using ojson = nlohmann::ordered_json;

class OpenAiResponse : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    text_ = new TextModel(TextModel::load(test::data_path("tiny-llama")));
  }
  static void TearDownTestSuite() { delete text_; }
  ApiRequest parse(Endpoint e, const std::string& body) const {
    return parse_api_request(e, parse_body(body),
                             {.text = text_,
                              .name = "tiny-llama",
                              .max_context = 256,
                              .vocab_size = 1024,
                              .max_sequences = 8});
  }
  static std::string piece(int32_t id) { return std::string(text_->tokenizer().token_bytes(id)); }
  static TextModel* text_;
};
TextModel* OpenAiResponse::text_ = nullptr;

// Two tokens with their log-probabilities; the first was the most likely, the second not.
ChoiceDelta delta(int index, const std::string& text, std::optional<FinishReason> finish) {
  ChoiceDelta d{.index = index, .text = text, .tokens = {300, 301}, .finish = finish};
  d.logprobs = {{.id = 300, .logprob = -0.5f, .top = {{300, -0.5f}, {7, -1.5f}}},
                {.id = 301, .logprob = -INFINITY, .top = {{9, -0.25f}, {10, -2.0f}}}};
  return d;
}

TEST_F(OpenAiResponse, CompletionWithLogprobsEchoAndTokenIds) {
  const ApiRequest r = parse(Endpoint::Completions,
                             R"({"prompt": [0, 17], "logprobs": 2, "return_token_ids": true})");
  ResponseFormat f(r, *text_, "tiny-llama", "cmpl-1");
  const ojson j = ojson::parse(f.response({delta(0, "ab", FinishReason::Stop)}, {2, 2}));
  EXPECT_EQ(j["id"], "cmpl-1");
  EXPECT_EQ(j["object"], "text_completion");
  EXPECT_EQ(j["model"], "tiny-llama");
  const ojson& c = j["choices"][0];
  EXPECT_EQ(c["text"], "ab");
  EXPECT_EQ(c["finish_reason"], "stop");
  EXPECT_EQ(c["token_ids"], ojson({300, 301}));
  EXPECT_EQ(c["prompt_token_ids"], ojson({0, 17}));
  const ojson& lp = c["logprobs"];
  EXPECT_EQ(lp["tokens"], ojson({piece(300), piece(301)}));
  EXPECT_EQ(lp["token_logprobs"], ojson({-0.5, -9999.0}));  // JSON has no -inf
  EXPECT_EQ(lp["top_logprobs"][0].size(), 2u);
  // The sampled token joins the top ones when it is not among them.
  EXPECT_EQ(lp["top_logprobs"][1].size(), 3u);
  EXPECT_EQ(lp["top_logprobs"][1][piece(301)], -9999.0);
  EXPECT_EQ(lp["text_offset"], ojson({0, piece(300).size()}));
  EXPECT_EQ(j["usage"], ojson::parse(R"({"prompt_tokens": 2, "completion_tokens": 2,
                                         "total_tokens": 4})"));

  const ApiRequest echo = parse(Endpoint::Completions, R"({"prompt": "Hi", "echo": true,
                                                           "stream": true})");
  ResponseFormat e(echo, *text_, "tiny-llama", "cmpl-2");
  EXPECT_EQ(ojson::parse(e.chunk(delta(0, "ab", std::nullopt), std::nullopt))["choices"][0]["text"],
            "Hiab");
  EXPECT_EQ(ojson::parse(
                e.chunk(delta(0, "c", FinishReason::Length), std::nullopt))["choices"][0]["text"],
            "c");

  // Echo with logprobs: the prompt's tokens first (the first has no log-probability), their
  // offsets from the start of the prompt, then the generated ones after the prompt's text.
  const ApiRequest scored =
      parse(Endpoint::Completions, R"({"prompt": [0, 17, 18], "echo": true, "logprobs": 1})");
  ResponseFormat s(scored, *text_, "tiny-llama", "cmpl-3");
  ChoiceDelta d = delta(0, "ab", FinishReason::Length);
  d.prompt_logprobs = {{.id = 17, .logprob = -3.0f, .top = {{5, -0.1f}}},
                       {.id = 18, .logprob = -0.25f, .top = {{18, -0.25f}}}};
  const ojson p = ojson::parse(s.response({d}, {3, 2}))["choices"][0]["logprobs"];
  EXPECT_EQ(p["tokens"], ojson({piece(0), piece(17), piece(18), piece(300), piece(301)}));
  EXPECT_EQ(p["token_logprobs"], ojson({nullptr, -3.0, -0.25, -0.5, -9999.0}));
  EXPECT_TRUE(p["top_logprobs"][0].is_null());
  EXPECT_EQ(p["top_logprobs"][1].size(), 2u);  // token 5, and the prompt's own 17
  EXPECT_EQ(p["top_logprobs"][1][piece(17)], -3.0);
  EXPECT_EQ(p["top_logprobs"][2].size(), 1u);
  // Offsets into the text: the echoed prompt (no special tokens in it), then what follows.
  const auto bytes = [&](int32_t id) { return text_->decode({{id}}).size(); };
  const size_t prompt_bytes = text_->decode({{0, 17, 18}}).size();
  EXPECT_EQ(p["text_offset"], ojson({size_t{0}, bytes(0), bytes(0) + bytes(17), prompt_bytes,
                                     prompt_bytes + bytes(300)}));
}

TEST_F(OpenAiResponse, ChatChunksAndWhole) {
  const ApiRequest r = parse(Endpoint::ChatCompletions, R"({"messages": [{"role": "user",
      "content": "x"}], "n": 2, "stream": true, "stream_options": {"include_usage": true},
      "logprobs": true, "top_logprobs": 1, "return_tokens_as_token_ids": true})");
  ResponseFormat f(r, *text_, "tiny-llama", "chatcmpl-1");
  const ojson role = ojson::parse(f.role_chunk(1, true));
  EXPECT_EQ(role["object"], "chat.completion.chunk");
  EXPECT_EQ(role["choices"][0]["index"], 1);
  EXPECT_EQ(role["choices"][0]["delta"], ojson::parse(R"({"role": "assistant", "content": ""})"));
  EXPECT_TRUE(role["usage"].is_null());
  const ojson c = ojson::parse(f.chunk(delta(1, "hey", std::nullopt), Usage{5, 2}));
  EXPECT_EQ(c["choices"][0]["delta"], ojson::parse(R"({"content": "hey"})"));
  EXPECT_TRUE(c["choices"][0]["finish_reason"].is_null());
  EXPECT_TRUE(c.contains("usage") && c["usage"].is_null());  // usage comes last
  const ojson& content = c["choices"][0]["logprobs"]["content"];
  ASSERT_EQ(content.size(), 2u);
  EXPECT_EQ(content[0]["token"], "token_id:300");
  EXPECT_EQ(content[0]["logprob"], -0.5);
  EXPECT_EQ(content[0]["top_logprobs"].size(), 2u);
  EXPECT_EQ(content[0]["top_logprobs"][1]["token"], "token_id:7");
  const ojson end = ojson::parse(f.chunk(delta(0, "", FinishReason::Cancelled), Usage{5, 4}));
  EXPECT_EQ(end["choices"][0]["delta"], ojson::object());
  EXPECT_EQ(end["choices"][0]["finish_reason"], "abort");
  const ojson usage = ojson::parse(f.usage_chunk({5, 4}));
  EXPECT_EQ(usage["choices"], ojson::array());
  EXPECT_EQ(usage["usage"]["total_tokens"], 9);

  const ApiRequest whole =
      parse(Endpoint::ChatCompletions, R"({"messages": [{"role": "user", "content": "x"}]})");
  ResponseFormat w(whole, *text_, "tiny-llama", "chatcmpl-2");
  const ojson j = ojson::parse(w.response({delta(0, "hello", FinishReason::Length)}, {5, 2}));
  EXPECT_EQ(j["object"], "chat.completion");
  EXPECT_EQ(j["choices"][0]["message"],
            ojson::parse(R"({"role": "assistant", "content": "hello"})"));
  EXPECT_TRUE(j["choices"][0]["logprobs"].is_null());
  EXPECT_EQ(j["choices"][0]["finish_reason"], "length");
}

TEST(ServerMetrics, PrometheusText) {
  Metrics m;
  m.time_to_first_token.observe(0.003);
  m.time_to_first_token.observe(0.2);
  m.time_to_first_token.observe(1000);
  m.count_prompt_tokens(12);
  m.count_generated_token();
  m.count_finished(FinishReason::Cancelled);
  m.count_response(200);
  m.count_response(400);
  m.count_response(200);
  EngineStats s;
  s.running = 3;
  s.waiting = 1;
  s.kv_blocks_used = 10;
  s.kv_blocks_total = 40;
  s.prefix_query_tokens = 8;
  s.prefix_hit_tokens = 2;
  const std::string page = m.render(s, 4);
  for (const char* line :
       {"fp8llm_requests_running 3\n", "fp8llm_requests_waiting 1\n",
        "fp8llm_requests_in_flight 4\n", "fp8llm_kv_blocks_used 10\n",
        "fp8llm_kv_cache_usage_ratio 0.25\n", "fp8llm_prefix_cache_hit_rate 0.25\n",
        "fp8llm_prompt_tokens_total 12\n", "fp8llm_generation_tokens_total 1\n",
        "fp8llm_samples_finished_total{finish_reason=\"abort\"} 1\n",
        "fp8llm_http_responses_total{code=\"200\"} 2\n",
        "fp8llm_http_responses_total{code=\"400\"} 1\n",
        "# TYPE fp8llm_time_to_first_token_seconds histogram\n",
        "fp8llm_time_to_first_token_seconds_bucket{le=\"0.001\"} 0\n",
        "fp8llm_time_to_first_token_seconds_bucket{le=\"0.005\"} 1\n",
        "fp8llm_time_to_first_token_seconds_bucket{le=\"0.25\"} 2\n",
        "fp8llm_time_to_first_token_seconds_bucket{le=\"80\"} 2\n",
        "fp8llm_time_to_first_token_seconds_bucket{le=\"+Inf\"} 3\n",
        "fp8llm_time_to_first_token_seconds_count 3\n",
        "fp8llm_inter_token_latency_seconds_count 0\n"})
    EXPECT_NE(page.find(line), std::string::npos) << line << " not in\n" << page;
}

}  // namespace
}  // namespace fp8llm::server
