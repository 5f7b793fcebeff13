#include "server/http_server.h"

#include <sys/socket.h>

#include "core/error.h"

namespace fp8llm::server {

GrowingThreadPool::~GrowingThreadPool() {
  shutdown();
}

void GrowingThreadPool::enqueue(std::function<void()> job) {
  {
    std::lock_guard lock(mutex_);
    jobs_.push_back(std::move(job));
    // Each idle thread takes one job; start one more when they are all spoken for.
    if (jobs_.size() > idle_ && threads_.size() < max_threads_)
      threads_.emplace_back([this] { work(); });
  }
  cv_.notify_one();
}

void GrowingThreadPool::shutdown() {
  std::vector<std::thread> threads;
  {
    std::lock_guard lock(mutex_);
    shutdown_ = true;
    threads.swap(threads_);
  }
  cv_.notify_all();
  for (std::thread& t : threads) t.join();
}

void GrowingThreadPool::work() {
  std::unique_lock lock(mutex_);
  while (true) {
    ++idle_;
    cv_.wait(lock, [this] { return !jobs_.empty() || shutdown_; });
    --idle_;
    if (jobs_.empty()) return;  // shutting down, and nothing left to serve
    std::function<void()> job = std::move(jobs_.front());
    jobs_.pop_front();
    lock.unlock();
    job();
    lock.lock();
  }
}

HttpServer::HttpServer(size_t max_threads) {
  new_task_queue = [max_threads] { return new GrowingThreadPool(max_threads); };
  // httplib sets SO_REUSEPORT, with which a second server on the same port starts without a word
  // and the kernel splits the connections between the two. SO_REUSEADDR alone still allows a
  // restart while old connections linger in TIME_WAIT.
  set_socket_options([](socket_t sock) {
    const int yes = 1;
    setsockopt(sock, SOL_SOCKET, SO_REUSEADDR, &yes, sizeof(yes));
  });
}

int HttpServer::bind(const std::string& host, int port, int backlog) {
  if (port == 0) {
    port = bind_to_any_port(host);
    FP8LLM_CHECK(port > 0, "--host {}: cannot listen on it", host);
  } else {
    FP8LLM_CHECK(bind_to_port(host, port), "--host {} --port {}: cannot listen there (in use?)",
                 host, port);
  }
  // Listening again on a listening socket only changes its backlog.
  ::listen(svr_sock_, backlog);
  return port;
}

void HttpServer::stop_accepting() {
  // Wakes the accept loop, which then closes the socket itself; closing it here as well could
  // close a descriptor reused in between.
  ::shutdown(svr_sock_, SHUT_RDWR);
}

void HttpServer::end_connections() {
  svr_sock_ = INVALID_SOCKET;
}

}  // namespace fp8llm::server
