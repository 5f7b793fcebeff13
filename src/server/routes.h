// The HTTP API: OpenAI's /v1/completions, /v1/chat/completions and /v1/models (behind the API key
// when there is one), and vLLM's /health, /metrics, /tokenize, /detokenize and /version. Every
// error is OpenAI's error object; every request gets one log line at info level.
#pragma once

#include <httplib.h>

#include <atomic>
#include <string>

#include "server/engine_loop.h"
#include "server/metrics.h"
#include "server/openai_request.h"
#include "server/registry.h"

namespace fp8llm::server {

struct ServerContext {
  const TextModel& text;
  ServedModel model;
  std::string model_dir;  // /v1/models' root
  EngineLoop& loop;
  Registry& registry;
  Metrics& metrics;
  std::string api_key;  // empty: none needed
  int64_t max_waiting = 0;
  std::atomic<bool> draining{false};  // shutting down: no new generations
};

void add_routes(httplib::Server& http, ServerContext& ctx);

}  // namespace fp8llm::server
