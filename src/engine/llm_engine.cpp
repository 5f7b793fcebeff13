#include "engine/llm_engine.h"

#include <algorithm>
#include <set>

#include "core/error.h"
#include "core/thread_pool.h"
#include "engine/token_sampling.h"
#include "model/top_token.h"

namespace fp8llm {
namespace {

double seconds_since(std::chrono::steady_clock::time_point t) {
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - t).count();
}

}  // namespace

LlmEngine::LlmEngine(ModelRunner& runner, TokenPicker* picker, BlockManager& blocks,
                     SchedulerConfig scheduling, EngineLimits limits, LoraSlots* lora)
    : runner_(runner),
      picker_(picker),
      blocks_(blocks),
      scheduler_(scheduling, blocks),
      limits_(std::move(limits)),
      lora_(lora) {}

uint64_t LlmEngine::add_request(GenerationRequest request, TokenCallback on_token) {
  const SamplingParams& p = request.params;
  check_sampling_params(p);
  const auto prompt = static_cast<int64_t>(request.prompt.size());
  FP8LLM_CHECK(prompt > 0, "prompt: empty (at least one token is needed)");
  for (int32_t id : request.prompt) {
    FP8LLM_CHECK(id >= 0 && id < limits_.vocab_size,
                 "prompt: token id {} is out of range (vocabulary of {})", id, limits_.vocab_size);
  }
  for (int32_t id : p.stop_token_ids) {
    FP8LLM_CHECK(id < limits_.vocab_size,
                 "stop_token_ids: token id {} is out of range (vocabulary of {})", id,
                 limits_.vocab_size);
  }
  for (const auto& [id, bias] : p.logit_bias) {
    FP8LLM_CHECK(id < limits_.vocab_size,
                 "logit_bias: token id {} is out of range (vocabulary of {})", id,
                 limits_.vocab_size);
  }
  FP8LLM_CHECK(prompt < limits_.max_context,
               "prompt: {} tokens do not fit the context of {} positions (at least one must be "
               "left to generate)",
               prompt, limits_.max_context);
  // One sequence must fit the cache alone, or preempting every other would not make room for it.
  const int64_t positions = std::min<int64_t>(prompt + p.max_tokens, limits_.max_context);
  const int64_t blocks = (positions + blocks_.block_size() - 1) / blocks_.block_size();
  FP8LLM_CHECK(blocks <= blocks_.usable_blocks(),
               "prompt: {} tokens plus max_tokens {} need {} KV blocks of {} tokens; the cache "
               "has {} (raise --kv-memory, or lower max_tokens)",
               prompt, p.max_tokens, blocks, blocks_.block_size(), blocks_.usable_blocks());

  auto state = std::make_unique<RequestState>();
  if (!request.lora.empty()) {
    FP8LLM_CHECK(lora_ != nullptr && lora_->enabled(),
                 "lora: the request names adapter '{}' but this engine was loaded without adapter "
                 "slots (--max-loras)",
                 request.lora);
    const LoraSlots::Use use = lora_->acquire(request.lora);
    state->lora_slot = use.slot;
    state->prefix_root = use.prefix_root;
  }
  state->spec = std::move(request);
  state->on_token = std::move(on_token);
  state->arrival = std::chrono::steady_clock::now();
  std::lock_guard lock(mutex_);
  state->id = next_id_++;
  const uint64_t id = state->id;
  incoming_.push_back(std::move(state));
  ++unfinished_;
  return id;
}

void LlmEngine::abort(uint64_t id) {
  std::lock_guard lock(mutex_);
  aborts_.push_back(id);
}

bool LlmEngine::has_unfinished() const {
  std::lock_guard lock(mutex_);
  return unfinished_ > 0;
}

void LlmEngine::take_incoming() {
  std::vector<std::unique_ptr<RequestState>> incoming;
  std::vector<uint64_t> aborts;
  {
    std::lock_guard lock(mutex_);
    incoming.swap(incoming_);
    aborts.swap(aborts_);
  }
  for (auto& r : incoming) {
    const SamplingParams& p = r->spec.params;
    r->seed = p.seed ? *p.seed : random_seed();
    auto seq = std::make_unique<Sequence>(r.get(), 0, r->spec.prompt,
                                          static_cast<int64_t>(r->spec.prompt.size()),
                                          Sampler(p, sample_seed(r->seed, 0)));
    seq->lora_slot = r->lora_slot;
    seq->prefix = PrefixChain::from(r->prefix_root);
    if (p.n == 1) r->forked = true;  // nothing to fork: the prompt's sequence is the sample
    scheduler_.add_waiting(seq.get());
    r->sequences.push_back(std::move(seq));
    const uint64_t id = r->id;
    requests_.emplace(id, std::move(r));
  }
  for (uint64_t id : aborts) {
    const auto it = requests_.find(id);
    if (it == requests_.end()) continue;
    it->second->aborted = true;
    for (auto& seq : it->second->sequences)
      if (!seq->finished()) finish(*seq, FinishReason::Cancelled);
  }
}

void LlmEngine::fork(RequestState& r) {
  Sequence& parent = *r.sequences[0];
  const SamplingParams& p = r.spec.params;
  for (int i = 1; i < p.n; ++i) {
    auto child = std::make_unique<Sequence>(&r, i, parent.tokens, parent.prompt_len,
                                            Sampler(p, sample_seed(r.seed, i)));
    child->computed = parent.computed;
    child->block_table = blocks_.fork(parent.block_table);
    child->prefix = parent.prefix;
    child->lora_slot = parent.lora_slot;
    scheduler_.add_running(child.get());
    r.sequences.push_back(std::move(child));
  }
  r.forked = true;
}

void LlmEngine::finish(Sequence& seq, FinishReason reason, std::string error) {
  seq.finish = reason;
  seq.error = std::move(error);
  scheduler_.remove(&seq);
  RequestState& r = *seq.request;
  if (reason != FinishReason::Stop && reason != FinishReason::Length && r.on_token) {
    TokenUpdate u{.request = r.id, .index = seq.index, .finish = reason, .error = seq.error};
    r.on_token(u);
  }
}

void LlmEngine::append(Sequence& seq, const SampledStep& step) {
  RequestState& r = *seq.request;
  const SamplingParams& p = r.spec.params;
  seq.tokens.push_back(step.id);
  if (p.logprobs >= 0) seq.logprobs.push_back(step.logprob);
  ++generated_tokens_;
  if (!r.first_token_seconds) r.first_token_seconds = seconds_since(r.arrival);

  std::optional<FinishReason> done;
  const auto is_in = [&](const std::vector<int32_t>& ids) {
    return std::find(ids.begin(), ids.end(), step.id) != ids.end();
  };
  if (is_in(p.stop_token_ids) || (!p.ignore_eos && is_in(limits_.eos_token_ids))) {
    done = FinishReason::Stop;
  } else if (seq.generated() >= p.max_tokens || seq.length() >= limits_.max_context) {
    done = FinishReason::Length;
  }
  if (r.on_token) {
    TokenUpdate u{.request = r.id, .index = seq.index, .token = step.id};
    if (p.logprobs >= 0) u.logprob = step.logprob;
    if (p.prompt_logprobs >= 0 && seq.generated() == 1) u.prompt_logprobs = r.prompt_logprobs;
    u.finish = done;
    // The caller ends the sample (a stop string in its text); it knows, so nothing more is sent.
    if (!r.on_token(u) && !done) done = FinishReason::Stop;
  }
  if (done) {
    seq.finish = done;
    scheduler_.remove(&seq);
  }
}

std::vector<RequestOutput> LlmEngine::step() {
  if (lora_ != nullptr)  // adapters changed since the last step
    lora_->apply([this](int slot, const LoraAdapter* a) { runner_.set_lora(slot, a); },
                 [this](int slot) { runner_.commit_lora(slot); });
  take_incoming();
  std::set<RequestState*> changed;
  const Schedule schedule = scheduler_.schedule();
  if (!schedule.empty()) {
    ++steps_;
    ModelRunner::Pass pass = runner_.run(schedule);
    std::vector<SampleTarget> targets;
    for (size_t i = 0; i < schedule.sequences.size(); ++i) {
      Sequence& seq = *schedule.sequences[i].seq;
      if (pass.scored[i].count > 0) score_prompt(seq, pass.scored[i], pass.logits);
      if (seq.computed < seq.prompt_len)
        prompt_tokens_ += std::min(schedule.sequences[i].tokens, seq.prompt_len - seq.computed);
      seq.computed += schedule.sequences[i].tokens;
      blocks_.register_full_blocks(seq.block_table, seq.tokens, seq.computed, seq.prefix);
      if (pass.row[i] < 0) continue;
      RequestState& r = *seq.request;
      if (!r.forked) fork(r);
      if (seq.index == 0 && r.sequences.size() > 1 && seq.generated() == 0) {
        for (auto& s : r.sequences)
          if (!s->finished()) targets.push_back({s.get(), pass.row[i]});
      } else {
        targets.push_back({&seq, pass.row[i]});
      }
    }
    const std::vector<SampledStep> sampled =
        sample_tokens(runner_.backend(), picker_, pass.logits, targets, limits_.eos_token_ids);
    for (size_t i = 0; i < targets.size(); ++i) {
      append(*targets[i].seq, sampled[i]);
      changed.insert(targets[i].seq->request);
    }
  }
  // Requests that ended this step (sampled, aborted) are reported once more, then forgotten.
  std::vector<RequestOutput> out;
  for (auto it = requests_.begin(); it != requests_.end();) {
    RequestState& r = *it->second;
    const bool done = r.forked && r.finished();
    if (done || r.aborted) {
      r.finished_seconds = seconds_since(r.arrival);
      out.push_back(output_of(r));
      {
        std::lock_guard lock(mutex_);
        --unfinished_;
      }
      if (lora_ != nullptr && r.lora_slot >= 0) lora_->release(r.lora_slot);
      it = requests_.erase(it);
      continue;
    }
    if (changed.count(&r) > 0 && r.spec.output != OutputKind::FinalOnly)
      out.push_back(output_of(r));
    ++it;
  }
  const EngineStats now = measure();
  std::lock_guard lock(mutex_);
  stats_ = now;
  return out;
}

void LlmEngine::score_prompt(Sequence& seq, const ModelRunner::ScoredRows& rows, Act logits) {
  RequestState& r = *seq.request;
  FP8LLM_CHECK(static_cast<int64_t>(r.prompt_logprobs.size()) == rows.first,
               "prompt_logprobs: position {} scored after {}", rows.first,
               r.prompt_logprobs.size());
  const auto vocab = static_cast<size_t>(logits.cols);
  std::vector<float> host(static_cast<size_t>(rows.count) * vocab);
  runner_.backend().read(rows_of(logits, rows.row, rows.count), host.data());
  // Each row costs the host an exponential in double for every token of the vocabulary, and a
  // selection of the top ones: the rows of a step are scored on every core (in order all the
  // same).
  std::vector<TokenLogprob> scored(static_cast<size_t>(rows.count));
  parallel_for(scored.size(), 1, [&](size_t begin, size_t end) {
    for (size_t k = begin; k < end; ++k) {
      // Position p's logits score the prompt's token p + 1.
      const std::span<const float> row(host.data() + k * vocab, vocab);
      const int32_t next = seq.tokens[static_cast<size_t>(rows.first) + k + 1];
      scored[k] = {next, log_softmax_at(row, next),
                   top_logprobs(row, r.spec.params.prompt_logprobs)};
    }
  });
  r.prompt_logprobs.insert(r.prompt_logprobs.end(), scored.begin(), scored.end());
}

RequestOutput LlmEngine::output_of(RequestState& r) {
  const bool delta = r.spec.output == OutputKind::Delta;
  RequestOutput o;
  o.id = r.id;
  if (!delta || !r.prompt_reported) o.prompt_ids = r.spec.prompt;
  o.cached_prompt_tokens = r.cached_prompt_tokens;
  o.first_token_seconds = r.first_token_seconds.value_or(0);
  o.finished_seconds = r.finished_seconds;
  o.finished = (r.forked && r.finished()) || r.aborted;
  const size_t scored_from = delta ? r.prompt_logprobs_reported : 0;
  o.prompt_logprobs.assign(r.prompt_logprobs.begin() + static_cast<std::ptrdiff_t>(scored_from),
                           r.prompt_logprobs.end());
  for (const auto& s : r.sequences) {
    const int64_t from = delta ? s->reported : 0;
    CompletionOutput c;
    c.index = s->index;
    c.token_ids.assign(s->tokens.begin() + s->prompt_len + from, s->tokens.end());
    // Log-probabilities, when asked for, are one per generated token.
    if (!s->logprobs.empty()) c.logprobs.assign(s->logprobs.begin() + from, s->logprobs.end());
    c.finish_reason = s->finish;
    o.outputs.push_back(std::move(c));
    if (delta) s->reported = s->generated();
  }
  if (delta) {
    r.prompt_reported = true;
    r.prompt_logprobs_reported = r.prompt_logprobs.size();
  }
  return o;
}

EngineStats LlmEngine::stats() const {
  std::lock_guard lock(mutex_);
  EngineStats s = stats_;
  s.waiting += static_cast<int64_t>(incoming_.size());
  return s;
}

void LlmEngine::refresh_stats() {
  const EngineStats now = measure();
  std::lock_guard lock(mutex_);
  stats_ = now;
}

EngineStats LlmEngine::measure() const {
  EngineStats s;
  s.running = scheduler_.running();
  s.waiting = scheduler_.waiting();
  s.kv_blocks_total = blocks_.usable_blocks();
  s.kv_blocks_used = blocks_.used_blocks();
  s.block_size = blocks_.block_size();
  s.prefix_query_tokens = blocks_.prefix_query_tokens();
  s.prefix_hit_tokens = blocks_.prefix_hit_tokens();
  s.prompt_tokens = prompt_tokens_;
  s.generated_tokens = generated_tokens_;
  s.preemptions = scheduler_.preemptions();
  s.steps = steps_;
  return s;
}

}  // namespace fp8llm
