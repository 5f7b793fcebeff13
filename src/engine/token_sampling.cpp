#include "engine/token_sampling.h"

#include <map>

#include "model/top_token.h"

namespace fp8llm {

namespace {

// The ids a sample may not draw yet: its stop tokens, while it has fewer than min_tokens.
std::vector<int32_t> banned_ids(const Sequence& seq, std::span<const int32_t> eos) {
  const SamplingParams& p = seq.request->spec.params;
  if (seq.generated() >= p.min_tokens) return {};
  std::vector<int32_t> ids = p.stop_token_ids;
  if (!p.ignore_eos) ids.insert(ids.end(), eos.begin(), eos.end());
  return ids;
}

}  // namespace

std::vector<SampledStep> sample_tokens(Backend& backend, TokenPicker* picker, Act logits,
                                       std::span<const SampleTarget> targets,
                                       std::span<const int32_t> eos) {
  std::vector<SampledStep> out(targets.size());
  std::map<int32_t, std::vector<float>> host_rows;  // rows read into host memory, by row
  const auto host_row = [&](int32_t row) -> const std::vector<float>& {
    auto [it, added] = host_rows.try_emplace(row);
    if (added) {
      it->second.resize(static_cast<size_t>(logits.cols));
      backend.read(rows_of(logits, row, 1), it->second.data());
    }
    return it->second;
  };

  std::vector<PickSpec> specs;
  std::vector<size_t> picked;  // which target each spec is
  for (size_t i = 0; i < targets.size(); ++i) {
    Sequence& seq = *targets[i].seq;
    const SamplingParams& p = seq.request->spec.params;
    const std::vector<int32_t> banned = banned_ids(seq, eos);
    if (picker != nullptr && seq.sampler.draws_from_logits_alone() && p.logprobs <= 0 &&
        banned.empty()) {
      const SampleShape shape = seq.sampler.shape();
      specs.push_back({targets[i].row, shape, shape.greedy() ? 0.0 : seq.sampler.uniform()});
      picked.push_back(i);
      continue;
    }
    const std::vector<float>& row = host_row(targets[i].row);
    const std::span<const int32_t> history(seq.tokens);
    const SampledToken t = seq.sampler.sample(
        row, history, history.subspan(static_cast<size_t>(seq.prompt_len)), banned);
    out[i].id = t.id;
    out[i].logprob = {t.id, t.logprob, top_logprobs(row, p.logprobs)};
  }
  if (!specs.empty()) {
    std::vector<TopToken> tokens(specs.size());
    picker->pick(logits, specs, tokens);
    for (size_t j = 0; j < specs.size(); ++j) {
      out[picked[j]].id = tokens[j].id;
      out[picked[j]].logprob = {tokens[j].id, tokens[j].logprob, {}};
    }
  }
  return out;
}

}  // namespace fp8llm
