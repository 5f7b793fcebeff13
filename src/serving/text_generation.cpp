#include "serving/text_generation.h"

#include <algorithm>
#include <map>

#include "core/error.h"

namespace fp8llm {

GenerationRequest engine_request(const TextModel& text, const TextRequest& r) {
  // Text is built from the token callback; step() need only report the end.
  GenerationRequest g{r.prompt, r.sampling.params, r.lora, OutputKind::FinalOnly};
  if (!g.params.ignore_eos) {
    for (int32_t id : text.eos_token_ids()) {
      if (std::find(g.params.stop_token_ids.begin(), g.params.stop_token_ids.end(), id) ==
          g.params.stop_token_ids.end())
        g.params.stop_token_ids.push_back(id);
    }
  }
  return g;
}

SampleTexts::SampleTexts(const TextModel& text, const TextRequest& r) {
  for (int i = 0; i < r.sampling.params.n; ++i)
    streams_.emplace_back(text.tokenizer(), r.sampling.stop,
                          TextStreamOptions{.skip_special_tokens = r.sampling.skip_special_tokens,
                                            .include_stop = r.sampling.include_stop_str_in_output});
}

std::string SampleTexts::put(const TokenUpdate& u, bool* stopped) {
  TextStream& s = streams_.at(static_cast<size_t>(u.index));
  std::string out;
  if (u.token >= 0) out = s.put(u.token);
  if (u.finish && !s.stopped()) out += s.finish();
  if (stopped != nullptr) *stopped = s.stopped();
  return out;
}

const std::string& SampleTexts::text(int index) const {
  return streams_.at(static_cast<size_t>(index)).text();
}

std::vector<TextResult> generate_text(Engine& engine, const TextModel& text,
                                      const std::vector<TextRequest>& requests,
                                      const std::function<void(size_t, size_t)>& progress) {
  std::vector<std::unique_ptr<SampleTexts>> texts;
  std::map<uint64_t, size_t> order;
  std::vector<uint64_t> ids;
  try {
    for (size_t i = 0; i < requests.size(); ++i) {
      texts.push_back(std::make_unique<SampleTexts>(text, requests[i]));
      SampleTexts* t = texts.back().get();
      const uint64_t id =
          engine.add_request(engine_request(text, requests[i]), [t](const TokenUpdate& u) {
            bool stopped = false;
            t->put(u, &stopped);
            return !stopped;
          });
      ids.push_back(id);
      order[id] = i;
    }
  } catch (const Error& e) {
    for (uint64_t id : ids) engine.abort(id);
    while (engine.has_unfinished()) engine.step();
    fail("request {}: {}", ids.size() + 1, e.what());
  }
  std::vector<TextResult> out(requests.size());
  size_t done = 0;
  while (done < requests.size()) {
    const std::vector<RequestOutput> changed = engine.step();
    for (const RequestOutput& o : changed) {
      const auto it = order.find(o.id);
      if (it == order.end() || !o.finished) continue;
      TextResult& r = out[it->second];
      r.prompt = o.prompt_ids;
      r.prompt_logprobs = o.prompt_logprobs;
      r.cached_prompt_tokens = o.cached_prompt_tokens;
      for (const CompletionOutput& c : o.outputs) {
        r.outputs.push_back({c.index, c.token_ids, texts[it->second]->text(c.index), c.logprobs,
                             c.finish_reason.value_or(FinishReason::Length)});
      }
      ++done;
      if (progress) progress(done, requests.size());
    }
    if (changed.empty() && !engine.has_unfinished() && done < requests.size())
      fail("generate: {} requests were lost", requests.size() - done);
  }
  return out;
}

}  // namespace fp8llm
