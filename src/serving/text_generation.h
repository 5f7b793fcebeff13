// Requests with text around them: each sample's tokens decoded as they come, stop strings matched
// on the decoded text (the sample ends there; the stop string is not part of its text), and the
// model's end-of-reply tokens added unless the request ignores them. `fp8llm generate
// --prompts-file` runs batches through it; the server and the Python module stream the same way.
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "fp8llm/engine.h"
#include "serving/sampling_json.h"
#include "text/text_model.h"
#include "text/text_stream.h"

namespace fp8llm {

struct TextRequest {
  std::vector<int32_t> prompt;
  TextSampling sampling;
  std::string lora;  // an adapter's name, or empty
};

struct TextCompletion {
  int index = 0;
  std::vector<int32_t> token_ids;
  std::string text;
  std::vector<TokenLogprob> logprobs;
  FinishReason finish_reason = FinishReason::Length;
};

struct TextResult {
  std::vector<int32_t> prompt;
  std::vector<TokenLogprob> prompt_logprobs;  // prompt tokens 1, 2, ... when asked
  std::vector<TextCompletion> outputs;
  int64_t cached_prompt_tokens = 0;
};

// The engine request for `r`: its sampling, plus the text model's end-of-reply tokens as stop
// tokens unless it ignores them.
GenerationRequest engine_request(const TextModel& text, const TextRequest& r);

// The text of one request's samples as they are produced: put() each TokenUpdate of the request
// (returns false once the sample's text hit a stop string); text(i) is sample i's text so far.
class SampleTexts {
 public:
  SampleTexts(const TextModel& text, const TextRequest& r);
  // Returns the new text of the update's sample (never half a character, never part of a stop
  // string); *stopped is set when a stop string ended it.
  std::string put(const TokenUpdate& u, bool* stopped);
  const std::string& text(int index) const;

 private:
  std::vector<TextStream> streams_;
};

// Runs `requests` to the end on `engine` (with whatever else is queued); results in order.
// `progress(done, total)` after each finished request.
std::vector<TextResult> generate_text(Engine& engine, const TextModel& text,
                                      const std::vector<TextRequest>& requests,
                                      const std::function<void(size_t, size_t)>& progress = {});

}  // namespace fp8llm
