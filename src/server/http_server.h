// cpp-httplib's server (Debian's 0.11.4, a compiled library) with what hundreds of concurrent
// streams need and that version does not give:
// - httplib serves each connection on one thread of its task queue for the connection's whole
//   life, and its default pool has max(8, cores - 1) threads: a ninth stream would wait unserved.
//   GrowingThreadPool starts threads as connections need them, up to a bound.
// - The library listens with a backlog of 5, so a burst of connections is dropped and retried by
//   the clients' kernels a second later; bind() raises it.
// - stop() closes the listening socket and at once cuts every response still streaming. A drain
//   needs two halves instead: stop_accepting() now, end_connections() once the responses are done.
// - Its listening socket shares the port with any other that asks (SO_REUSEPORT); a port in use
//   must be an error instead.
#pragma once

#include <httplib.h>

#include <condition_variable>
#include <cstddef>
#include <deque>
#include <functional>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

namespace fp8llm::server {

class GrowingThreadPool : public httplib::TaskQueue {
 public:
  explicit GrowingThreadPool(size_t max_threads) : max_threads_(max_threads) {}
  ~GrowingThreadPool() override;
  void enqueue(std::function<void()> job) override;
  void shutdown() override;

 private:
  void work();

  const size_t max_threads_;
  std::mutex mutex_;
  std::condition_variable cv_;
  std::deque<std::function<void()>> jobs_;
  std::vector<std::thread> threads_;
  size_t idle_ = 0;
  bool shutdown_ = false;
};

class HttpServer : public httplib::Server {
 public:
  explicit HttpServer(size_t max_threads);
  // Binds `host`:`port` (0: any free port) and listens with `backlog`; returns the port. An Error
  // names the address when it cannot.
  int bind(const std::string& host, int port, int backlog);
  // New connections are refused from now on; those open are served on.
  void stop_accepting();
  // Ends the connections: kept-alive ones close after their current request, and listen_after_bind
  // returns once they have. Call after stop_accepting, when no response is still being written.
  void end_connections();
};

}  // namespace fp8llm::server
