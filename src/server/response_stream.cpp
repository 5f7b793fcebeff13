#include "server/response_stream.h"

#include <fmt/format.h>

#include "core/log.h"
#include "server/api_error.h"

namespace fp8llm::server {

std::string sse_event(std::string_view data) {
  std::string out;
  out.reserve(data.size() + 8);
  out += "data: ";
  out += data;
  out += "\n\n";
  return out;
}

ResponseStream::ResponseStream(std::shared_ptr<Generation> generation, ResponseFormat format,
                               std::function<void(const std::string&)> on_end)
    : generation_(std::move(generation)), format_(std::move(format)), on_end_(std::move(on_end)) {
  if (!generation_->request().stream) {
    whole_.resize(static_cast<size_t>(generation_->choices()));
    for (size_t i = 0; i < whole_.size(); ++i) whole_[i].index = static_cast<int>(i);
  }
}

void ResponseStream::add(const ChoiceDelta& d, std::string& out) {
  completion_tokens_ += static_cast<int64_t>(d.tokens.size());
  if (d.finish) ++finished_[static_cast<int>(*d.finish)];
  if (d.finish == FinishReason::Error && error_.empty()) error_ = d.error;
  const ApiRequest& r = generation_->request();
  if (r.stream) {
    std::optional<Usage> usage;
    if (r.include_usage) usage = Usage{generation_->prompt_tokens(), completion_tokens_};
    out += sse_event(format_.chunk(d, usage));
    // vLLM's way of failing a stream that has begun: an error event, then [DONE].
    if (d.finish == FinishReason::Error) out += sse_event(error_body(ApiError(500, d.error)));
    return;
  }
  ChoiceDelta& w = whole_[static_cast<size_t>(d.index)];
  w.text += d.text;
  w.tokens.insert(w.tokens.end(), d.tokens.begin(), d.tokens.end());
  w.logprobs.insert(w.logprobs.end(), d.logprobs.begin(), d.logprobs.end());
  w.prompt_logprobs.insert(w.prompt_logprobs.end(), d.prompt_logprobs.begin(),
                           d.prompt_logprobs.end());
  if (d.finish) w.finish = d.finish;
}

std::string ResponseStream::finish() {
  const ApiRequest& r = generation_->request();
  const Usage usage{generation_->prompt_tokens(), completion_tokens_};
  if (!r.stream) {
    // The status line went out before generation began; the body says what happened.
    if (!error_.empty()) return error_body(ApiError(500, "the engine failed: " + error_));
    return format_.response(whole_, usage);
  }
  std::string out;
  if (r.include_usage) out += sse_event(format_.usage_chunk(usage));
  out += sse_event("[DONE]");
  return out;
}

std::string ResponseStream::summary() const {
  std::string out = fmt::format("{} prompt tokens, {} generated", generation_->prompt_tokens(),
                                completion_tokens_);
  if (const auto ttft = generation_->first_token_seconds())
    out += fmt::format(", first token {:.3f} s", *ttft);
  std::string reasons;
  for (int i = 0; i < 4; ++i) {
    if (finished_[i] == 0) continue;
    reasons += fmt::format("{}{} {}", reasons.empty() ? "" : ", ", finished_[i],
                           finish_reason_name(static_cast<FinishReason>(i)));
  }
  return out + "; finished: " + reasons;
}

bool ResponseStream::pump(httplib::DataSink& sink) {
  // httplib calls this outside its handlers' exception handling, where an escaping exception
  // would end the process.
  try {
    return pump_or_throw(sink);
  } catch (const std::exception& e) {
    log_message(LogLevel::Error, std::string("writing a response failed: ") + e.what());
    generation_->cancel();
    return false;
  }
}

bool ResponseStream::pump_or_throw(httplib::DataSink& sink) {
  std::string out;
  if (!started_) {
    started_ = true;
    const ApiRequest& r = generation_->request();
    if (r.stream && r.endpoint == Endpoint::ChatCompletions)
      for (int c = 0; c < generation_->choices(); ++c)
        out += sse_event(format_.role_chunk(c, r.include_usage));
  }
  bool done = false;
  for (const ChoiceDelta& d : generation_->take(kClientPoll, &done)) add(d, out);
  if (done) out += finish();
  // A peer that closed its end still looks writable until a write fails; is_writable also
  // peeks for the end of the stream.
  if (!sink.is_writable() || (!out.empty() && !sink.write(out.data(), out.size()))) {
    generation_->cancel();
    return false;
  }
  if (done) {
    sink.done();
    if (on_end_) on_end_(summary());
  }
  return true;
}

}  // namespace fp8llm::server
