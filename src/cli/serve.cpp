// `fp8llm serve --model DIR`: an OpenAI-compatible HTTP server over the batching engine
// (src/server). SIGINT or SIGTERM drains it: no new connections, running requests finish within
// --shutdown-grace (a second signal cancels them at once), exit code 0.
#include <signal.h>
#include <sys/resource.h>

#include <fmt/ranges.h>

#include <atomic>
#include <cstdlib>
#include <filesystem>
#include <memory>
#include <string>
#include <thread>

#include "cli/commands.h"
#include "cli/format.h"
#include "cli/load_options.h"
#include "core/error.h"
#include "engine/warm_up.h"
#include "server/server.h"
#include "text/text_model.h"

namespace fp8llm::cli {
namespace {

struct Options {
  EngineFlags engine;
  std::string host = "127.0.0.1";
  int port = 8000;
  std::string api_key;
  std::string served_model_name;
  int64_t max_waiting = 1024;
  size_t max_request_bytes = 16u << 20;
  size_t http_threads = 0;
  double shutdown_grace = 30;
};

// The model's name in requests: the directory's own name, as vLLM names a local model by its path.
std::string default_model_name(const std::string& dir) {
  std::filesystem::path p(dir);
  while (!p.empty() && p.filename().empty()) p = p.parent_path();
  return p.filename().string();
}

// Every connection holds a descriptor; the soft limit (often 1024) would refuse the thousandth.
void raise_descriptor_limit() {
  rlimit r{};
  if (getrlimit(RLIMIT_NOFILE, &r) == 0 && r.rlim_cur < r.rlim_max) {
    r.rlim_cur = r.rlim_max;
    setrlimit(RLIMIT_NOFILE, &r);
  }
}

void run_serve(Options o) {
  if (o.api_key.empty()) {
    if (const char* key = std::getenv("FP8LLM_API_KEY")) o.api_key = key;
  }
  FP8LLM_CHECK(o.port >= 0 && o.port <= 65535, "--port {}: expected 0 to 65535", o.port);
  FP8LLM_CHECK(o.max_waiting >= 0, "--max-waiting {}: expected 0 or more", o.max_waiting);
  FP8LLM_CHECK(o.shutdown_grace >= 0, "--shutdown-grace {}: expected seconds, 0 or more",
               o.shutdown_grace);
  FP8LLM_CHECK(o.max_request_bytes >= 1024, "--max-request-bytes {}: expected 1024 or more",
               o.max_request_bytes);

  // Signals go to one thread that waits for them; every thread started from here on (the engine's,
  // the server's) inherits the mask.
  sigset_t signals;
  sigemptyset(&signals);
  sigaddset(&signals, SIGINT);
  sigaddset(&signals, SIGTERM);
  pthread_sigmask(SIG_BLOCK, &signals, nullptr);
  raise_descriptor_limit();

  const TextModel text = TextModel::load(o.engine.model_dir);
  auto engine = load_engine(o.engine);
  // The first request must not wait for the GPU's first-use set-up (engine/warm_up.h).
  if (o.engine.device == "cuda")
    log_status("warmed up in {:.0f} ms", 1000 * warm_up(*engine));

  server::ServerOptions so;
  so.host = o.host;
  so.port = o.port;
  so.model_name =
      o.served_model_name.empty() ? default_model_name(o.engine.model_dir) : o.served_model_name;
  so.model_dir = o.engine.model_dir;
  so.api_key = o.api_key;
  so.max_waiting = o.max_waiting;
  so.max_seqs = o.engine.max_seqs;
  so.max_request_bytes = o.max_request_bytes;
  so.http_threads = o.http_threads;
  so.shutdown_grace =
      std::chrono::milliseconds(static_cast<int64_t>(o.shutdown_grace * 1000.0 + 0.5));
  server::Server server(*engine, text, so);
  const int port = server.bind();

  const LoadReport& r = engine->load_report();
  log_status(
      "serving {} ({}, {}) on http://{}:{}: context {}, KV cache {} blocks of {} tokens ({}), "
      "{} sequences at once and {} waiting, up to {} connection threads{}",
      so.model_name, to_string(r.quantization), o.engine.device, so.host, port,
      engine->max_context(), r.kv_blocks - 1, r.kv_block_size, human_bytes(r.kv_bytes), so.max_seqs,
      so.max_waiting, server.http_threads(), so.api_key.empty() ? "" : "; /v1 needs the API key");
  if (!engine->lora_names().empty())
    log_status("LoRA adapters served as models of their own: {}",
               fmt::join(engine->lora_names(), ", "));

  std::atomic<bool> served{false};
  std::thread watcher([&] {
    const timespec poll{0, 200'000'000};
    while (!served) {
      const int sig = sigtimedwait(&signals, nullptr, &poll);
      if (sig == SIGINT || sig == SIGTERM) {
        log_status("received {}; draining (signal again to cancel running requests)",
                   sig == SIGINT ? "SIGINT" : "SIGTERM");
        server.shutdown();
      }
    }
  });
  server.run();
  served = true;
  watcher.join();
  log_status("server stopped");
}

}  // namespace

void add_serve_command(CLI::App& app) {
  auto o = std::make_shared<Options>();
  auto* cmd = app.add_subcommand(
      "serve", "An OpenAI-compatible HTTP server (/v1/completions, /v1/chat/completions, ...)");
  add_engine_flags(*cmd, o->engine);
  cmd->add_option("--host", o->host, "Address to listen on")->capture_default_str();
  cmd->add_option("--port", o->port, "Port to listen on (0: any free port)")->capture_default_str();
  cmd->add_option("--api-key", o->api_key,
                  "Require 'Authorization: Bearer KEY' on /v1/* (default: $FP8LLM_API_KEY; none "
                  "when neither is set)");
  cmd->add_option("--served-model-name", o->served_model_name,
                  "The model's name in requests (default: the model directory's name)");
  cmd->add_option("--max-waiting", o->max_waiting,
                  "Sequences that may wait beyond --max-seqs; requests past it get 503 with "
                  "Retry-After")
      ->capture_default_str();
  cmd->add_option("--max-request-bytes", o->max_request_bytes,
                  "Request bodies larger than this get 413")
      ->capture_default_str();
  cmd->add_option("--http-threads", o->http_threads,
                  "Connection threads at most; each open connection holds one (0: max-seqs + "
                  "max-waiting + 64)")
      ->capture_default_str();
  cmd->add_option("--shutdown-grace", o->shutdown_grace,
                  "Seconds running requests get to finish after SIGINT or SIGTERM before they "
                  "are cancelled")
      ->capture_default_str();
  cmd->callback([o] { run_serve(*o); });
}

}  // namespace fp8llm::cli
