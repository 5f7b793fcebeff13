// vLLM's POST /tokenize and POST /detokenize: a prompt (or chat messages through the template) to
// token ids, and token ids back to text. Errors are ApiErrors naming the field.
#pragma once

#include <nlohmann/json.hpp>

#include <string>

#include "server/openai_request.h"

namespace fp8llm::server {

// {"prompt": text, "add_special_tokens": true} or {"messages": [...], "add_generation_prompt":
// true, "chat_template_kwargs": {...}}, with "return_token_strs" -> {"count", "max_model_len",
// "tokens", "token_strs"}.
std::string tokenize_response(const nlohmann::ordered_json& body, const ServedModel& model);

// {"tokens": [ids]} -> {"prompt": text}.
std::string detokenize_response(const nlohmann::ordered_json& body, const ServedModel& model);

}  // namespace fp8llm::server
