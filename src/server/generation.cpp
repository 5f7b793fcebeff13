#include "server/generation.h"

#include <algorithm>

namespace fp8llm::server {
namespace {

double seconds_between(Generation::Clock::time_point a, Generation::Clock::time_point b) {
  return std::chrono::duration<double>(b - a).count();
}

}  // namespace

Generation::Generation(const TextModel& text, ApiRequest request, Metrics& metrics)
    : text_(text), request_(std::move(request)), metrics_(metrics), arrival_(Clock::now()) {
  const int n = choices();
  for (const TextRequest& p : request_.prompts)
    texts_.push_back(std::make_unique<SampleTexts>(text_, p));
  last_token_.resize(static_cast<size_t>(n));
  pending_.resize(static_cast<size_t>(n));
  for (int i = 0; i < n; ++i) pending_[static_cast<size_t>(i)].index = i;
  news_.assign(static_cast<size_t>(n), false);
  finished_.assign(static_cast<size_t>(n), false);
  unfinished_ = n;
}

int64_t Generation::prompt_tokens() const {
  int64_t total = 0;
  for (const TextRequest& p : request_.prompts) total += static_cast<int64_t>(p.prompt.size());
  return total;
}

std::optional<double> Generation::first_token_seconds() const {
  std::lock_guard lock(mutex_);
  return first_token_;
}

void Generation::start(EngineLoop& loop) {
  {
    std::lock_guard lock(mutex_);
    loop_ = &loop;
  }
  for (size_t p = 0; p < request_.prompts.size(); ++p) {
    uint64_t id = 0;
    try {
      id = loop.add(
          engine_request(text_, request_.prompts[p]),
          [self = shared_from_this(), p](const TokenUpdate& u) { return self->on_update(p, u); });
    } catch (...) {
      // Nothing of this request may stay queued; prompts never queued will never finish.
      std::lock_guard lock(mutex_);
      for (uint64_t queued : ids_) loop.abort(queued);
      for (int c = static_cast<int>(p) * request_.n; c < choices(); ++c) {
        if (!finished_[static_cast<size_t>(c)]) {
          finished_[static_cast<size_t>(c)] = true;
          --unfinished_;
        }
      }
      cancelled_ = true;
      throw;
    }
    std::lock_guard lock(mutex_);
    ids_.push_back(id);
    // cancel() may have come while this prompt was being queued.
    if (cancelled_) loop.abort(id);
  }
  metrics_.count_prompt_tokens(prompt_tokens());
}

bool Generation::on_update(size_t prompt, const TokenUpdate& u) {
  const int choice = static_cast<int>(prompt) * request_.n + u.index;
  bool stopped = false;
  std::string text = texts_[prompt]->put(u, &stopped);
  const Clock::time_point now = Clock::now();
  std::optional<FinishReason> finish = u.finish;
  // A stop string ends the sample here; the engine sends nothing more for it.
  if (stopped) finish = FinishReason::Stop;
  if (u.token >= 0) {
    metrics_.count_generated_token();
    auto& last = last_token_[static_cast<size_t>(choice)];
    if (last) metrics_.inter_token_latency.observe(seconds_between(*last, now));
    last = now;
  }
  {
    std::lock_guard lock(mutex_);
    if (finished_[static_cast<size_t>(choice)]) return false;
    ChoiceDelta& d = pending_[static_cast<size_t>(choice)];
    d.text += text;
    if (u.token >= 0) {
      d.tokens.push_back(u.token);
      if (u.logprob) d.logprobs.push_back(*u.logprob);
      if (!u.prompt_logprobs.empty()) d.prompt_logprobs = u.prompt_logprobs;
      ++generated_;
      if (!first_token_) {
        first_token_ = seconds_between(arrival_, now);
        metrics_.time_to_first_token.observe(*first_token_);
      }
    }
    news_[static_cast<size_t>(choice)] = true;
    if (finish) finish_locked(choice, *finish, u.error);
  }
  cv_.notify_all();
  return !stopped;
}

void Generation::finish_locked(int choice, FinishReason reason, const std::string& error) {
  ChoiceDelta& d = pending_[static_cast<size_t>(choice)];
  d.finish = reason;
  d.error = error;
  news_[static_cast<size_t>(choice)] = true;
  finished_[static_cast<size_t>(choice)] = true;
  metrics_.count_finished(reason);
  if (--unfinished_ == 0) metrics_.request_latency.observe(seconds_between(arrival_, Clock::now()));
}

std::vector<ChoiceDelta> Generation::take(std::chrono::milliseconds timeout, bool* done) {
  std::unique_lock lock(mutex_);
  const auto has_news = [this] {
    return unfinished_ == 0 || std::find(news_.begin(), news_.end(), true) != news_.end();
  };
  cv_.wait_for(lock, timeout, has_news);
  std::vector<ChoiceDelta> out;
  for (size_t c = 0; c < pending_.size(); ++c) {
    if (!news_[c]) continue;
    out.push_back(std::move(pending_[c]));
    pending_[c] = ChoiceDelta{.index = static_cast<int>(c)};
    news_[c] = false;
  }
  *done = unfinished_ == 0;
  return out;
}

void Generation::cancel() {
  std::lock_guard lock(mutex_);
  if (cancelled_ || unfinished_ == 0) return;
  cancelled_ = true;
  if (loop_ != nullptr)
    for (uint64_t id : ids_) loop_->abort(id);
}

void Generation::fail(const std::string& message) {
  {
    std::lock_guard lock(mutex_);
    for (int c = 0; c < choices(); ++c)
      if (!finished_[static_cast<size_t>(c)]) finish_locked(c, FinishReason::Error, message);
  }
  cv_.notify_all();
}

}  // namespace fp8llm::server
