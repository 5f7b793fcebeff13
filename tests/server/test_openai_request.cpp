// OpenAI request bodies as engine requests: vLLM's defaults, the prompt forms, chat through the
// template, and every bad field as a 400 (or 404) naming it.
#include <gtest/gtest.h>

#include "server/api_error.h"
#include "server/openai_request.h"
#include "server/tokenize_api.h"
#include "test_util.h"

namespace fp8llm::server {
namespace {

using ojson = nlohmann::ordered_json;

constexpr int kContext = 128;

class OpenAiRequest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    text_ = new TextModel(TextModel::load(test::data_path("tiny-llama")));
  }
  static void TearDownTestSuite() { delete text_; }

  ServedModel model() const {
    return {.text = text_,
            .name = "tiny-llama",
            .max_context = kContext,
            .vocab_size = 1024,
            .max_sequences = 4};
  }
  ApiRequest parse(Endpoint e, const std::string& body) const {
    return parse_api_request(e, parse_body(body), model());
  }
  // The ApiError a body gets (status 0 when it is accepted).
  ApiError error(Endpoint e, const std::string& body) const {
    try {
      parse(e, body);
    } catch (const ApiError& err) {
      return err;
    }
    return ApiError(0, "accepted");
  }

  static TextModel* text_;
};
TextModel* OpenAiRequest::text_ = nullptr;

// Text of `n` one-letter words (a token each).
std::string words(int n) {
  std::string s;
  for (int i = 0; i < n; ++i) s += i % 2 ? " b" : " a";
  return s;
}

constexpr Endpoint kCompletions = Endpoint::Completions;
constexpr Endpoint kChat = Endpoint::ChatCompletions;

TEST_F(OpenAiRequest, DefaultsAreVllmServers) {
  const ApiRequest r = parse(kCompletions, R"({"prompt": "Hello there"})");
  ASSERT_EQ(r.prompts.size(), 1u);
  const std::vector<int32_t> ids = text_->encode("Hello there");
  EXPECT_EQ(r.prompts[0].prompt, ids);
  const SamplingParams& p = r.prompts[0].sampling.params;
  EXPECT_EQ(p.temperature, 1.0f);
  EXPECT_FALSE(p.seed.has_value());                                  // a random seed
  EXPECT_EQ(p.max_tokens, kContext - static_cast<int>(ids.size()));  // the rest of the context
  EXPECT_EQ(p.logprobs, -1);
  EXPECT_EQ(r.n, 1);
  EXPECT_FALSE(r.stream);
  EXPECT_EQ(r.top_logprobs, -1);
}

TEST_F(OpenAiRequest, PromptForms) {
  EXPECT_EQ(parse(kCompletions, R"({"prompt": ["a b", "c"]})").prompts.size(), 2u);
  const ApiRequest ids = parse(kCompletions, R"({"prompt": [0, 17, 18], "max_tokens": 5})");
  ASSERT_EQ(ids.prompts.size(), 1u);
  EXPECT_EQ(ids.prompts[0].prompt, (std::vector<int32_t>{0, 17, 18}));
  EXPECT_EQ(ids.prompts[0].sampling.params.max_tokens, 5);
  const ApiRequest lists = parse(kCompletions, R"({"prompt": [[0, 17], [0, 18, 19]]})");
  ASSERT_EQ(lists.prompts.size(), 2u);
  EXPECT_EQ(lists.prompts[1].prompt, (std::vector<int32_t>{0, 18, 19}));
  EXPECT_EQ(lists.prompts[1].sampling.params.max_tokens, kContext - 3);
  const ApiRequest echo = parse(kCompletions, R"({"prompt": ["x y", "z"], "echo": true})");
  EXPECT_EQ(echo.echo_texts, (std::vector<std::string>{"x y", "z"}));
  const ApiRequest echo_ids = parse(kCompletions, R"({"prompt": [0, 17, 18], "echo": true})");
  EXPECT_EQ(echo_ids.echo_texts, (std::vector<std::string>{text_->decode({{0, 17, 18}})}));
  EXPECT_EQ(echo_ids.prompts[0].sampling.params.prompt_logprobs, -1);
  // Echo with logprobs scores the prompt's tokens too, listing as many of the most likely.
  const ApiRequest scored = parse(kCompletions, R"({"prompt": "x", "echo": true, "logprobs": 2})");
  EXPECT_EQ(scored.prompts[0].sampling.params.prompt_logprobs, 2);
  EXPECT_EQ(parse(kCompletions, R"({"prompt": "x", "logprobs": 2})")
                .prompts[0]
                .sampling.params.prompt_logprobs,
            -1);
}

TEST_F(OpenAiRequest, SamplingFieldsAndStreamOptions) {
  const ApiRequest r = parse(kCompletions, R"({"prompt": "a", "n": 2, "temperature": 0.5,
      "top_p": 0.9, "top_k": 5, "min_p": 0.1, "seed": 3, "stop": ["x", "yz"], "stop_token_ids": [7],
      "ignore_eos": true, "logprobs": 2, "presence_penalty": 0.5, "frequency_penalty": -0.5,
      "repetition_penalty": 1.1, "min_tokens": 2, "stream": true,
      "stream_options": {"include_usage": true},
      "user": "someone", "best_of": 2, "logit_bias": {}, "suffix": null})");
  const SamplingParams& p = r.prompts[0].sampling.params;
  EXPECT_EQ(p.n, 2);
  EXPECT_EQ(p.temperature, 0.5f);
  EXPECT_EQ(p.top_p, 0.9f);
  EXPECT_EQ(p.top_k, 5);
  EXPECT_EQ(p.seed, 3u);
  EXPECT_EQ(r.prompts[0].sampling.stop, (std::vector<std::string>{"x", "yz"}));
  EXPECT_EQ(p.stop_token_ids, (std::vector<int32_t>{7}));
  EXPECT_TRUE(p.ignore_eos);
  EXPECT_EQ(p.logprobs, 2);
  EXPECT_EQ(p.min_tokens, 2);
  EXPECT_TRUE(p.logit_bias.empty());
  EXPECT_EQ(parse(kCompletions, R"({"prompt": "a", "logit_bias": {"5": 2.5, "7": -100}})")
                .prompts[0]
                .sampling.params.logit_bias,
            (std::vector<std::pair<int32_t, float>>{{5, 2.5f}, {7, -100.0f}}));
  EXPECT_EQ(r.top_logprobs, 2);
  EXPECT_TRUE(r.stream && r.include_usage);
}

TEST_F(OpenAiRequest, ChatThroughTheTemplate) {
  const std::string messages =
      R"([{"role": "system", "content": "Be brief."}, {"role": "user", "content": [{"type": "text", "text": "Hi"}, {"type": "text", "text": "there"}]}])";
  const ApiRequest r = parse(kChat, R"({"messages": )" + messages +
                                        R"(, "max_completion_tokens": 3, "max_tokens": 9,
      "logprobs": true, "top_logprobs": 2, "tools": [], "tool_choice": "none"})");
  const ojson chat = ojson::parse(
      R"([{"role": "system", "content": "Be brief."}, {"role": "user", "content": "Hi\nthere"}])");
  EXPECT_EQ(r.prompts[0].prompt, text_->encode_chat(chat));
  EXPECT_EQ(r.prompts[0].sampling.params.max_tokens, 3);  // max_completion_tokens wins
  EXPECT_EQ(r.prompts[0].sampling.params.logprobs, 2);
  EXPECT_EQ(parse(kChat, R"({"messages": )" + messages + R"(, "logprobs": true})").top_logprobs, 0);
}

TEST_F(OpenAiRequest, BadFieldsAre400sNamingThem) {
  const std::vector<std::tuple<Endpoint, std::string, std::string, std::string>> cases = {
      {kCompletions, R"({"prompt": 5})", "prompt", "expected a string"},
      {kCompletions, R"({"prompt": []})", "prompt", "expected a string"},
      {kCompletions, R"({"prompt": [[0, 1], "a"]})", "prompt", "expected a string"},
      {kCompletions, R"({})", "prompt", "required"},
      {kCompletions, R"({"prompt": [0, 5000]})", "prompt", "5000 is not a token id"},
      {kCompletions, R"({"prompt": [0, -1]})", "prompt", "not a token id"},
      {kCompletions, R"({"prompt": [0, 1.5]})", "prompt", "not a token id"},
      {kCompletions, R"({"prompt": "a", "max_tokens": "ten"})", "max_tokens",
       "expected an integer"},
      {kCompletions, R"({"prompt": "a", "max_tokens": 0})", "max_tokens", "out of range"},
      {kCompletions, R"({"prompt": "a", "max_tokens": 127})", "max_tokens", "exceed the context"},
      {kCompletions, R"({"prompt": "a", "n": 0})", "n", "out of range"},
      {kCompletions, R"({"prompt": "a", "n": 5})", "n", "more than the 4 sequences"},
      {kCompletions, R"({"prompt": ["a", "b", "c"], "n": 2})", "n", "more than the 4 sequences"},
      {kCompletions, R"({"prompt": "a", "top_p": 1.5})", "top_p", "top_p must be in (0, 1]"},
      {kCompletions, R"({"prompt": "a", "temperature": "hot"})", "temperature",
       "expected a number"},
      {kCompletions, R"({"prompt": "a", "temperature": -1})", "temperature", "must be >= 0"},
      {kCompletions, R"({"prompt": "a", "stop": [1]})", "stop", "expected a string or a list"},
      {kCompletions, R"({"prompt": "a", "stream": "yes"})", "stream", "expected true or false"},
      {kCompletions, R"({"prompt": "a", "stream_options": {"include_usage": true}})",
       "stream_options", "only allowed with stream true"},
      {kCompletions, R"({"prompt": "a", "stream": true, "stream_options": {"usage": true}})",
       "stream_options", "not a stream option"},
      {kCompletions, R"({"prompt": "a", "logprobs": 21})", "logprobs", "out of range"},
      {kCompletions, R"({"prompt": "a", "logprobs": true})", "logprobs", "expected an integer"},
      {kCompletions, R"({"prompt": "a", "prompt_logprobs": 1})", "prompt_logprobs",
       "not supported"},
      {kCompletions, R"({"prompt": "a", "max_tokens": 3, "min_tokens": 4})", "min_tokens",
       "min_tokens must be in [0, max_tokens = 3]"},
      {kCompletions, R"({"prompt": "a", "min_tokens": -1})", "min_tokens", "out of range"},
      // Without max_tokens, the rest of the context bounds it ("a" is two tokens, with BOS).
      {kCompletions, R"({"prompt": "a", "min_tokens": 500})", "min_tokens",
       "more than the 126 tokens"},
      {kCompletions, R"({"prompt": "a", "temprature": 1})", "temprature", "not a field"},
      {kCompletions, R"({"prompt": "a", "logit_bias": {"x5": 1}})", "logit_bias",
       "'x5' is not a token id"},
      {kCompletions, R"({"prompt": "a", "logit_bias": {"5": -101}})", "logit_bias", "[-100, 100]"},
      {kCompletions, R"({"prompt": "a", "logit_bias": [5]})", "logit_bias", "expected an object"},
      {kCompletions, R"({"prompt": "a", "best_of": 3})", "best_of", "not supported"},
      {kCompletions, R"({"prompt": "a", "seed": "x"})", "seed", "expected an integer"},
      {kCompletions, R"({"prompt": "a", "model": 7})", "model", "expected a string"},
      {kCompletions, R"({"prompt": )" + std::string(70, '[') + std::string(70, ']') + "}", "",
       "nests deeper"},
      {kChat, R"({"messages": "hi"})", "messages", "non-empty list"},
      {kChat, R"({"messages": []})", "messages", "non-empty list"},
      {kChat, R"({"messages": [{"role": "robot", "content": "x"}]})", "messages", "role"},
      {kChat, R"({"messages": [{"role": "user", "content": [{"type": "image_url"}]}]})", "messages",
       "only {\"type\": \"text\""},
      {kChat, R"({"messages": [{"role": "user", "content": "x"}], "top_logprobs": 2})",
       "top_logprobs", "needs logprobs"},
      {kChat, R"({"messages": [{"role": "user", "content": "x"}], "logprobs": 2})", "logprobs",
       "expected true or false"},
      {kChat, R"({"messages": [{"role": "user", "content": "x"}], "max_completion_tokens": -1})",
       "max_completion_tokens", "out of range"},
      // Floats beyond int64's range (found by fuzz_openai_request: converting them was undefined).
      {kChat,
       R"({"messages": [{"role": "user", "content": "x"}], "max_completion_tokens": 9.3e61})",
       "max_completion_tokens", "out of range"},
      {kCompletions, R"({"prompt": "a", "max_tokens": -9.3e61})", "max_tokens", "out of range"},
      {kCompletions, R"({"prompt": "a", "logprobs": 1e19})", "logprobs", "out of range"},
      {kCompletions, R"({"prompt": "a", "max_tokens": 2.5})", "max_tokens", "expected an integer"},
      {kChat,
       R"({"messages": [{"role": "user", "content": "x"}], "tools": [{"type": "function"}]})",
       "tools", "not supported"},
      {kChat, R"({"messages": [{"role": "user", "content": "x"}], "prompt": "a"})", "prompt",
       "not a field of /v1/chat/completions"},
      {kChat, R"({"messages": [{"role": "user", "content": ")" + words(200) + R"("}]})", "messages",
       "do not fit the context of 128"},
  };
  for (const auto& [endpoint, body, param, needle] : cases) {
    const ApiError e = error(endpoint, body);
    EXPECT_EQ(e.status(), 400) << body << ": " << e.what();
    EXPECT_EQ(e.param(), param) << body << ": " << e.what();
    EXPECT_NE(std::string(e.what()).find(needle), std::string::npos) << body << ": " << e.what();
    EXPECT_EQ(e.type(), "invalid_request_error");
  }
}

TEST_F(OpenAiRequest, MalformedBodies) {
  for (const std::string body : {"{not json", "[1, 2]", "", "\"text\"", "{\"prompt\": \"a\"} x"}) {
    try {
      parse_body(body);
      ADD_FAILURE() << body << " was accepted";
    } catch (const ApiError& e) {
      EXPECT_EQ(e.status(), 400) << body;
      EXPECT_EQ(e.param(), "") << body;
    }
  }
}

TEST_F(OpenAiRequest, AnotherModelIs404) {
  const ApiError e = error(kCompletions, R"({"model": "gpt-4", "prompt": "a"})");
  EXPECT_EQ(e.status(), 404);
  EXPECT_EQ(e.param(), "model");
  EXPECT_EQ(e.code(), "model_not_found");
  EXPECT_EQ(error(kCompletions, R"({"model": "tiny-llama", "prompt": "a"})").status(), 0);
}

TEST_F(OpenAiRequest, AnAdapterIsAModel) {
  ServedModel m = model();
  m.adapters = {"sharp", "soft"};
  const ApiRequest r = parse_api_request(
      Endpoint::Completions, parse_body(R"({"model": "soft", "prompt": ["a", "b"]})"), m);
  EXPECT_EQ(r.prompts[0].lora, "soft");
  EXPECT_EQ(r.prompts[1].lora, "soft");
  EXPECT_EQ(parse_api_request(Endpoint::Completions,
                              parse_body(R"({"model": "tiny-llama", "prompt": "a"})"), m)
                .prompts[0]
                .lora,
            "");
  try {
    parse_api_request(Endpoint::Completions, parse_body(R"({"model": "loud", "prompt": "a"})"), m);
    ADD_FAILURE() << "an unknown adapter was accepted";
  } catch (const ApiError& e) {
    EXPECT_EQ(e.status(), 404);
    EXPECT_NE(std::string(e.what()).find("`tiny-llama`, `sharp`, `soft`"), std::string::npos)
        << e.what();
  }
}

TEST_F(OpenAiRequest, ErrorBodyIsOpenAisObject) {
  const ojson j = ojson::parse(error_body(ApiError(400, "top_p: bad", "top_p")));
  EXPECT_EQ(j, ojson::parse(R"({"error": {"message": "top_p: bad", "type": "invalid_request_error",
                                          "param": "top_p", "code": null}})"));
  const ojson auth = ojson::parse(error_body(ApiError(401, "no key", "", "invalid_api_key")));
  EXPECT_EQ(auth["error"]["type"], "authentication_error");
  EXPECT_TRUE(auth["error"]["param"].is_null());
  // A message quoting a huge value is cut short.
  EXPECT_LT(std::string(ApiError(400, std::string(100000, 'x')).what()).size(), 1100u);
  // A NUL from the request must not end the message early.
  EXPECT_EQ(std::string(ApiError(400, std::string("a\0b", 3)).what()), "a\\u0000b");
}

TEST_F(OpenAiRequest, TokenizeAndDetokenize) {
  const ojson t =
      ojson::parse(tokenize_response(parse_body(R"({"prompt": "Hello world"})"), model()));
  EXPECT_EQ(t["tokens"].get<std::vector<int32_t>>(), text_->encode("Hello world"));
  EXPECT_EQ(t["count"], t["tokens"].size());
  EXPECT_EQ(t["max_model_len"], kContext);
  const ojson d =
      ojson::parse(detokenize_response(parse_body(ojson{{"tokens", t["tokens"]}}.dump()), model()));
  EXPECT_EQ(d["prompt"], "Hello world");
  const auto bad = [&](const std::string& body, bool tokenize) {
    try {
      tokenize ? tokenize_response(parse_body(body), model())
               : detokenize_response(parse_body(body), model());
    } catch (const ApiError& e) {
      return e.param();
    }
    return std::string("accepted");
  };
  EXPECT_EQ(bad(R"({"prompt": "a", "messages": []})", true), "prompt");
  EXPECT_EQ(bad(R"({"prompt": 1})", true), "prompt");
  EXPECT_EQ(bad(R"({"text": "a"})", true), "text");
  EXPECT_EQ(bad(R"({"tokens": [1, 99999]})", false), "tokens");
  EXPECT_EQ(bad(R"({"tokens": "1"})", false), "tokens");
}

}  // namespace
}  // namespace fp8llm::server
