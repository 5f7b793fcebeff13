// OpenAI's /v1/completions and /v1/chat/completions request bodies, with vLLM's extra sampling
// fields, as engine requests. Everything a request can get wrong is found here, before anything is
// queued: an ApiError naming the field (400), or the model (404). Defaults are vLLM's server's:
// temperature 1, max_tokens the rest of the context, a random seed.
#pragma once

#include <nlohmann/json.hpp>

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "serving/text_generation.h"
#include "text/text_model.h"

namespace fp8llm::server {

enum class Endpoint { Completions, ChatCompletions };

// What the parser needs to know of the served model.
struct ServedModel {
  const TextModel* text = nullptr;
  std::string name;             // what requests call it
  int64_t max_context = 0;      // positions one sequence may reach
  int64_t vocab_size = 0;       // token ids must be below it
  int64_t max_sequences = 256;  // prompts times n that one request may ask for
  // LoRA adapters (fp8llm serve --lora NAME=DIR): a request naming one as its model runs with it,
  // as vLLM serves its --lora-modules.
  std::vector<std::string> adapters;
};

struct ApiRequest {
  Endpoint endpoint = Endpoint::Completions;
  // One per prompt (completions may send several); choice p * n + i is sample i of prompt p.
  std::vector<TextRequest> prompts;
  std::vector<std::string> echo_texts;  // completions with echo: each prompt's text
  int n = 1;
  bool stream = false;
  bool include_usage = false;     // stream_options.include_usage: a last chunk with usage
  bool continuous_usage = false;  // stream_options.continuous_usage_stats: usage in every chunk
  // Log-probabilities: -1 none, else how many of the most likely tokens each position lists.
  int top_logprobs = -1;
  bool tokens_as_ids = false;     // return_tokens_as_token_ids: tokens written "token_id:N"
  bool return_token_ids = false;  // choices carry token_ids, and the response prompt_token_ids
};

// The request body as JSON: a 400 when it is not one JSON object or nests too deep.
nlohmann::ordered_json parse_body(std::string_view body);

// The adapter the body's `model` names ("" for the base model, or when there is no `model`); a 404
// when it names neither the served model nor one of its adapters.
std::string check_model(const nlohmann::ordered_json& body, const ServedModel& model);

ApiRequest parse_api_request(Endpoint endpoint, const nlohmann::ordered_json& body,
                             const ServedModel& model);

// The prompt of a chat: `messages` (OpenAI's roles, content as text or text parts) through the
// model's chat template.
std::vector<int32_t> encode_messages(const nlohmann::ordered_json& messages,
                                     const nlohmann::ordered_json& template_kwargs,
                                     bool add_generation_prompt, const ServedModel& model);

}  // namespace fp8llm::server
