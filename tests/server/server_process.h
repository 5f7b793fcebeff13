// `fp8llm serve` as a child process for the server tests: started on a free port with the tiny
// test model, its stderr kept in a file, stopped with a signal.
#pragma once

#include <httplib.h>
#include <sys/types.h>

#include <chrono>
#include <csignal>
#include <memory>
#include <string>

#include "test_util.h"

namespace fp8llm::test {

class ServerProcess {
 public:
  // Runs `fp8llm serve --model <model> --port 0 <args>` and waits (up to 10 minutes, for a large
  // model's load) for the line with its address. `env` is prepended to the command (e.g.
  // "FP8LLM_API_KEY=k"); `model` "" is tests/data/tiny-llama.
  explicit ServerProcess(const std::string& args = "", const std::string& env = "",
                         const std::string& model = "");
  ~ServerProcess();
  ServerProcess(const ServerProcess&) = delete;
  ServerProcess& operator=(const ServerProcess&) = delete;

  int port() const { return port_; }
  std::unique_ptr<httplib::Client> client() const;
  // Sends `sig` and waits for the exit: its exit code, or -1 (killed, or still running after
  // `timeout`, when it is killed).
  int stop(int sig = SIGTERM, std::chrono::seconds timeout = std::chrono::seconds(30));
  // Sends `sig` without waiting.
  void signal(int sig);
  // Waits for the exit (see stop).
  int wait(std::chrono::seconds timeout);
  std::string log() const;
  // Waits up to `timeout` for `text` in the log: a request's line is written after its response.
  bool log_has(const std::string& text,
               std::chrono::milliseconds timeout = std::chrono::seconds(5)) const;

 private:
  TempDir dir_;
  pid_t pid_ = -1;
  int port_ = 0;
};

// The value of the first sample of `name` (with its labels, e.g. name{label="x"}) in a
// Prometheus text page; -1 when absent.
double metric(const std::string& page, const std::string& name);

}  // namespace fp8llm::test
