// The Engine's blocking conveniences over its request API: a batch of requests run to the end,
// and the single-prompt generation the CLI started with.
#include <chrono>
#include <map>

#include "core/error.h"
#include "fp8llm/engine.h"

namespace fp8llm {

std::vector<RequestOutput> Engine::generate(std::vector<GenerationRequest> requests,
                                            const std::function<void(size_t, size_t)>& progress) {
  // Every request is checked before any is queued, so a bad one leaves nothing behind.
  std::map<uint64_t, size_t> order;
  std::vector<uint64_t> ids;
  try {
    for (size_t i = 0; i < requests.size(); ++i) {
      requests[i].output = OutputKind::FinalOnly;
      const uint64_t id = add_request(std::move(requests[i]));
      ids.push_back(id);
      order[id] = i;
    }
  } catch (const Error& e) {
    for (uint64_t id : ids) abort(id);
    while (has_unfinished()) step();
    fail("request {}: {}", ids.size(), e.what());
  }
  std::vector<RequestOutput> out(ids.size());
  size_t done = 0;
  while (done < ids.size()) {
    const std::vector<RequestOutput> changed = step();
    size_t finished_now = 0;
    for (const RequestOutput& o : changed) {
      const auto it = order.find(o.id);
      if (it == order.end() || !o.finished) continue;
      out[it->second] = o;
      ++finished_now;
    }
    done += finished_now;
    if (finished_now > 0 && progress) progress(done, ids.size());
    if (changed.empty() && !has_unfinished() && done < ids.size())
      fail("generate: {} requests were lost", ids.size() - done);
  }
  return out;
}

GenerationResult Engine::generate(std::span<const int32_t> prompt, const GenerationOptions& options,
                                  const std::function<bool(int32_t)>& on_token) {
  FP8LLM_CHECK(!prompt.empty(), "generate: the prompt is empty");
  FP8LLM_CHECK(options.max_tokens >= 0, "max_tokens must be >= 0 (got {})", options.max_tokens);
  GenerationResult result;
  if (options.max_tokens == 0) return result;
  GenerationRequest request;
  request.prompt.assign(prompt.begin(), prompt.end());
  request.params = options.sampling;
  request.lora = options.lora;
  request.params.n = 1;
  request.params.max_tokens = options.max_tokens;
  request.params.stop_token_ids = options.stop_token_ids;
  request.params.ignore_eos = true;
  request.params.logprobs = 0;
  const auto start = std::chrono::steady_clock::now();
  std::chrono::steady_clock::time_point first;
  bool cancelled = false;
  const uint64_t id = add_request(std::move(request), [&](const TokenUpdate& u) {
    if (u.token < 0) return true;
    if (result.tokens.empty()) first = std::chrono::steady_clock::now();
    result.tokens.push_back(u.token);
    result.logprobs.push_back(u.logprob ? u.logprob->logprob : 0.0f);
    if (on_token && !on_token(u.token)) {
      cancelled = true;
      return false;
    }
    return true;
  });
  for (;;) {
    bool finished = false;
    for (const RequestOutput& o : step()) {
      if (o.id != id || !o.finished) continue;
      finished = true;
      result.finish_reason = o.outputs.at(0).finish_reason.value_or(FinishReason::Length);
    }
    if (finished) break;
  }
  if (cancelled) result.finish_reason = FinishReason::Cancelled;
  const auto end = std::chrono::steady_clock::now();
  if (result.tokens.empty()) first = end;
  result.prompt_seconds = std::chrono::duration<double>(first - start).count();
  result.generate_seconds = std::chrono::duration<double>(end - first).count();
  return result;
}

}  // namespace fp8llm
