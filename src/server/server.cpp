#include "server/server.h"

#include <thread>

#include "core/log.h"
#include "server/engine_loop.h"
#include "server/http_server.h"
#include "server/metrics.h"
#include "server/registry.h"
#include "server/routes.h"

namespace fp8llm::server {
namespace {

// After the cancel, the time responses get to write their last chunk.
constexpr std::chrono::seconds kCancelWrite{10};

}  // namespace

struct Server::State {
  State(Engine& engine, const TextModel& text, ServerOptions o)
      : options(std::move(o)),
        registry(options.max_seqs + options.max_waiting),
        loop(engine, [this](const std::string& message) { registry.fail_all(message); }),
        context{.text = text,
                .model = {.text = &text,
                          .name = options.model_name,
                          .max_context = engine.max_context(),
                          .vocab_size = engine.vocab_size(),
                          .max_sequences = options.max_seqs,
                          .adapters = engine.lora_names()},
                .model_dir = options.model_dir,
                .loop = loop,
                .registry = registry,
                .metrics = metrics,
                .api_key = options.api_key,
                .max_waiting = options.max_waiting},
        http(options.http_threads > 0
                 ? options.http_threads
                 : static_cast<size_t>(options.max_seqs + options.max_waiting + 64)) {}

  ServerOptions options;
  Metrics metrics;
  Registry registry;
  EngineLoop loop;
  ServerContext context;
  HttpServer http;

  std::mutex mutex;
  std::condition_variable cv;
  int shutdown_calls = 0;
  bool listening_done = false;
};

Server::Server(Engine& engine, const TextModel& text, ServerOptions options)
    : state_(std::make_unique<State>(engine, text, std::move(options))) {
  State& s = *state_;
  s.http.set_payload_max_length(s.options.max_request_bytes);
  // httplib closes a kept-alive connection after 5 requests by default; clients that send many
  // requests one after another (benchmarks, agents) would reconnect all the time.
  s.http.set_keep_alive_max_count(1000);
  add_routes(s.http, s.context);
}

Server::~Server() {
  state_->registry.cancel_all();
  state_->loop.stop();
}

size_t Server::http_threads() const {
  const ServerOptions& o = state_->options;
  return o.http_threads > 0 ? o.http_threads : static_cast<size_t>(o.max_seqs + o.max_waiting + 64);
}

int Server::bind() {
  return state_->http.bind(state_->options.host, state_->options.port,
                           state_->options.listen_backlog);
}

void Server::shutdown() {
  {
    std::lock_guard lock(state_->mutex);
    ++state_->shutdown_calls;
  }
  state_->cv.notify_all();
}

void Server::drain() {
  State& s = *state_;
  std::unique_lock lock(s.mutex);
  s.cv.wait(lock, [&] { return s.shutdown_calls > 0 || s.listening_done; });
  if (s.listening_done) return;
  lock.unlock();

  s.context.draining = true;
  s.http.stop_accepting();
  const int64_t held = s.registry.size();
  log_info("shutting down: no new connections; {} requests running, {:.0f} s to finish", held,
           std::chrono::duration<double>(s.options.shutdown_grace).count());
  const auto deadline = std::chrono::steady_clock::now() + s.options.shutdown_grace;
  // A second signal cuts the grace short.
  while (!s.registry.wait_empty(
      std::min(deadline, std::chrono::steady_clock::now() + std::chrono::milliseconds(100)))) {
    lock.lock();
    const bool again = s.shutdown_calls > 1;
    lock.unlock();
    if (again || std::chrono::steady_clock::now() >= deadline) break;
  }
  if (s.registry.size() > 0) {
    log_info("shutting down: cancelling {} requests", s.registry.size());
    s.registry.cancel_all();
    s.registry.wait_empty(std::chrono::steady_clock::now() + kCancelWrite);
  }
  s.http.end_connections();
}

void Server::run() {
  State& s = *state_;
  std::thread drainer([this] { drain(); });
  s.http.listen_after_bind();
  {
    std::lock_guard lock(s.mutex);
    s.listening_done = true;
  }
  s.cv.notify_all();
  drainer.join();
  s.registry.cancel_all();
  s.loop.stop();
}

}  // namespace fp8llm::server
