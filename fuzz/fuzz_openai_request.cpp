// Feeds arbitrary bytes to the HTTP server's request parser as the body of each endpoint that
// parses one (completions, chat completions, tokenize, detokenize), then formats a response for
// what it accepted. The parser may only throw ApiError, with a 4xx status and a message; anything
// else (a crash, a sanitizer report, another exception) is a bug. When it accepts a request, the
// promises the engine relies on are checked: prompts fit the context with their max_tokens, token
// ids are in the vocabulary, sampling parameters pass the engine's own check.
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <string_view>

#include "engine/sampler.h"
#include "server/api_error.h"
#include "server/openai_request.h"
#include "server/openai_response.h"
#include "server/tokenize_api.h"

namespace {

using namespace fp8llm;
using namespace fp8llm::server;

void check(bool ok) {
  if (!ok) std::abort();
}

const ServedModel& served() {
  static const TextModel text = TextModel::load(FP8LLM_FUZZ_MODEL_DIR);
  static const ServedModel model{.text = &text,
                                 .name = "tiny-llama",
                                 .max_context = 256,
                                 .vocab_size = text.tokenizer().vocab_size(),
                                 .max_sequences = 8};
  return model;
}

void check_accepted(const ApiRequest& r, const ServedModel& m) {
  check(!r.prompts.empty());
  check(r.n >= 1 && static_cast<int64_t>(r.prompts.size()) * r.n <= m.max_sequences);
  check(r.echo_texts.empty() || r.echo_texts.size() == r.prompts.size());
  for (const TextRequest& p : r.prompts) {
    const auto len = static_cast<int64_t>(p.prompt.size());
    check(len >= 1 && len < m.max_context);
    for (int32_t id : p.prompt) check(id >= 0 && id < m.vocab_size);
    const SamplingParams& s = p.sampling.params;
    check(s.max_tokens >= 1 && len + s.max_tokens <= m.max_context);
    check(s.n == r.n);
    check_sampling_params(s);  // throws on a parameter the engine would refuse
  }
  // Format a token of every choice, whole and as a stream, with everything asked for.
  ResponseFormat whole(r, *m.text, m.name, response_id(r.endpoint));
  ResponseFormat stream(r, *m.text, m.name, response_id(r.endpoint));
  std::vector<ChoiceDelta> choices;
  for (int c = 0; c < static_cast<int>(r.prompts.size()) * r.n; ++c) {
    ChoiceDelta d{.index = c, .text = "x", .tokens = {c % 256}, .finish = FinishReason::Stop};
    if (r.top_logprobs >= 0)
      d.logprobs.push_back({.id = c % 256, .logprob = -1.0f, .top = {{1, -0.5f}}});
    // Echo with logprobs: the prompt's tokens after the first come with the first token.
    if (!r.echo_texts.empty() && r.top_logprobs >= 0) {
      const std::vector<int32_t>& prompt = r.prompts[static_cast<size_t>(c / r.n)].prompt;
      for (size_t i = 1; i < prompt.size(); ++i)
        d.prompt_logprobs.push_back({.id = prompt[i], .logprob = -2.0f, .top = {{2, -0.25f}}});
    }
    (void)stream.chunk(d, Usage{1, 1});
    choices.push_back(std::move(d));
  }
  (void)whole.response(choices, Usage{1, 1});
}

void try_body(std::string_view body, int endpoint) {
  const ServedModel& m = served();
  try {
    const nlohmann::ordered_json j = parse_body(body);
    switch (endpoint) {
      case 0:
        check_accepted(parse_api_request(Endpoint::Completions, j, m), m);
        break;
      case 1:
        check_accepted(parse_api_request(Endpoint::ChatCompletions, j, m), m);
        break;
      case 2:
        (void)tokenize_response(j, m);
        break;
      default:
        (void)detokenize_response(j, m);
    }
  } catch (const ApiError& e) {
    check(e.status() == 400 || e.status() == 404);
    check(std::string_view(e.what()).size() > 0);
  }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  // The first byte picks the endpoint, so the fuzzer can keep each one's inputs apart.
  if (size == 0) return 0;
  const std::string_view body(reinterpret_cast<const char*>(data) + 1, size - 1);
  try_body(body, data[0] % 4);
  return 0;
}
