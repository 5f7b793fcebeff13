// The JSON a request gets back, as OpenAI writes it (with vLLM's extras on request: token_ids,
// prompt_token_ids, "token_id:N" token strings): whole responses, and the chunks of a stream.
// Completions' log-probabilities are {tokens, token_logprobs, top_logprobs, text_offset}, chat's
// {content: [{token, logprob, bytes, top_logprobs}]}.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "server/generation.h"
#include "server/openai_request.h"
#include "text/text_model.h"

namespace fp8llm::server {

struct Usage {
  int64_t prompt_tokens = 0;
  int64_t completion_tokens = 0;
};

// A fresh response id: "cmpl-" or "chatcmpl-" and 32 random hex digits.
std::string response_id(Endpoint endpoint);

// OpenAI's finish_reason: stop, length, abort (cancelled), error.
std::string_view finish_reason_name(FinishReason reason);

class ResponseFormat {
 public:
  ResponseFormat(const ApiRequest& request, const TextModel& text, std::string model,
                 std::string id);

  const std::string& id() const { return id_; }

  // Stream chunks (the JSON after "data: "). `usage`: for stream_options (null when asked for
  // usage only at the end; absent when not asked).
  // Chat: the assistant role, before any content.
  std::string role_chunk(int choice, bool with_usage) const;
  std::string chunk(const ChoiceDelta& d, const std::optional<Usage>& usage);
  std::string usage_chunk(const Usage& usage) const;

  // The whole response, once every choice has finished; `choices` holds each choice's
  // concatenated deltas, by index.
  std::string response(const std::vector<ChoiceDelta>& choices, const Usage& usage);

 private:
  nlohmann::ordered_json head(const char* object) const;
  nlohmann::ordered_json logprobs(const ChoiceDelta& d);
  nlohmann::ordered_json usage_json(const Usage& usage) const;
  std::string token_string(int32_t id) const;
  // The text a choice's delta adds, with the prompt before its first text when echoing.
  std::string text_of(const ChoiceDelta& d);

  const ApiRequest& request_;
  const TextModel& text_;
  const std::string model_;
  const std::string id_;
  const int64_t created_;
  std::vector<size_t> text_offset_;  // per choice: bytes of text returned so far
  std::vector<bool> echoed_;         // per choice
  std::vector<bool> prompt_listed_;  // per choice: its logprobs began with the echoed prompt
};

}  // namespace fp8llm::server
