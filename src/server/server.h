// `fp8llm serve`'s server: the engine loop, the HTTP API on a growing pool of connection threads,
// and the drain on shutdown (stop accepting; let running requests finish within a grace period;
// cancel what is left, which ends their streams properly; close the connections).
#pragma once

#include <chrono>
#include <condition_variable>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <mutex>
#include <string>

#include "fp8llm/engine.h"
#include "text/text_model.h"

namespace fp8llm::server {

struct ServerOptions {
  std::string host = "127.0.0.1";
  int port = 8000;  // 0: any free port
  std::string model_name;
  std::string model_dir;
  std::string api_key;  // empty: no key needed
  // Sequences that may wait beyond the engine's max_seqs; a request that would pass the bound
  // gets 503 with Retry-After.
  int64_t max_waiting = 1024;
  int64_t max_seqs = 256;                // the engine's (LoadOptions::max_seqs)
  size_t max_request_bytes = 16u << 20;  // larger bodies get 413
  size_t http_threads = 0;               // at most; 0: max_seqs + max_waiting + 64
  int listen_backlog = 4096;
  std::chrono::milliseconds shutdown_grace{30000};
};

class Server {
 public:
  Server(Engine& engine, const TextModel& text, ServerOptions options);
  ~Server();
  Server(const Server&) = delete;
  Server& operator=(const Server&) = delete;

  // Binds the address; returns the port. An Error names the address when it cannot.
  int bind();
  // Serves until a shutdown has run its course; returns once every connection is closed and the
  // engine has stopped.
  void run();
  // Any thread. The first call starts the drain; a later one cancels running requests at once.
  void shutdown();
  // Connection threads the pool may start.
  size_t http_threads() const;

 private:
  struct State;
  void drain();

  std::unique_ptr<State> state_;
};

}  // namespace fp8llm::server
