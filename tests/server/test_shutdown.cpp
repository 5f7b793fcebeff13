// SIGINT and SIGTERM drain `fp8llm serve`: no new connections; a running stream finishes within
// the grace period, or ends with finish_reason "abort" and [DONE] once it is over (or at a second
// signal); the exit code is 0 either way. The startup line names the address and the load; a
// port another server holds is an error, not a second listener sharing it.
#include <gtest/gtest.h>

#include <sys/wait.h>

#include <atomic>
#include <cstdlib>
#include <fstream>
#include <iterator>
#include <nlohmann/json.hpp>
#include <thread>

#include "server_process.h"

namespace fp8llm::test {
namespace {

using nlohmann::json;

struct Stream {
  std::atomic<bool> started{false};  // a token has come
  std::string body;
  int status = 0;
  bool ok = false;

  // The events' JSON, without the final [DONE] (which must be there).
  std::vector<json> events() const {
    std::vector<json> out;
    size_t at = 0, end;
    bool done = false;
    while ((end = body.find("\n\n", at)) != std::string::npos) {
      const std::string e = body.substr(at, end - at);
      at = end + 2;
      EXPECT_TRUE(e.starts_with("data: ")) << e;
      EXPECT_FALSE(done) << "an event after [DONE]";
      if (e == "data: [DONE]")
        done = true;
      else
        out.push_back(json::parse(e.substr(6)));
    }
    EXPECT_TRUE(done) << "no [DONE]";
    return out;
  }
};

void stream_completion(int port, int max_tokens, Stream& s) {
  httplib::Client http("127.0.0.1", port);
  http.set_read_timeout(60, 0);
  httplib::Request req;
  req.method = "POST";
  req.path = "/v1/completions";
  req.headers = {{"Content-Type", "application/json"}};
  req.body = json{
      {"prompt", "Hello"},
      {"max_tokens", max_tokens},
      {"ignore_eos", true},
      {"stream", true},
      {"return_token_ids",
       true}}.dump();
  req.content_receiver = [&](const char* data, size_t len, uint64_t, uint64_t) {
    s.body.append(data, len);
    if (s.body.find("\"token_ids\":[") != std::string::npos) s.started = true;
    return true;
  };
  const httplib::Result r = http.send(req);
  s.ok = static_cast<bool>(r);
  if (r) s.status = r->status;
}

// Tokens and the finish reason of a stream's events.
std::pair<size_t, std::string> outcome(const Stream& s) {
  size_t tokens = 0;
  std::string finish;
  for (const json& e : s.events()) {
    const json& c = e["choices"][0];
    tokens += c["token_ids"].size();
    if (!c["finish_reason"].is_null()) finish = c["finish_reason"];
  }
  return {tokens, finish};
}

void wait_for(const std::atomic<bool>& flag) {
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(30);
  while (!flag && std::chrono::steady_clock::now() < deadline)
    std::this_thread::sleep_for(std::chrono::milliseconds(2));
  ASSERT_TRUE(flag);
}

bool accepts_connections(int port) {
  httplib::Client http("127.0.0.1", port);
  http.set_connection_timeout(1, 0);
  return static_cast<bool>(http.Get("/health"));
}

TEST(ServerShutdown, IdleServerExitsAtOnceAndSaysWhereItListened) {
  ServerProcess server;
  const std::string log = server.log();
  EXPECT_NE(log.find("loaded "), std::string::npos) << log;
  EXPECT_NE(log.find("serving tiny-llama (fp8-block, cpu) on http://127.0.0.1:" +
                     std::to_string(server.port())),
            std::string::npos)
      << log;
  const auto start = std::chrono::steady_clock::now();
  EXPECT_EQ(server.stop(SIGINT), 0) << server.log();
  EXPECT_LT(std::chrono::steady_clock::now() - start, std::chrono::seconds(3));
  EXPECT_NE(server.log().find("received SIGINT"), std::string::npos) << server.log();
}

TEST(ServerShutdown, APortInUseIsAnErrorNamingIt) {
  ServerProcess first;
  TempDir tmp;
  // Bounded: a second server that wrongly shares the port would serve on.
  const std::string command = "timeout -s KILL 30 " + std::string(FP8LLM_CLI_PATH) +
                              " serve --model " + data_path("tiny-llama").string() + " --port " +
                              std::to_string(first.port()) + " 2>" + (tmp / "err").string();
  const int status = std::system(command.c_str());
  std::ifstream in(tmp / "err");
  const std::string err((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  EXPECT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) == 2) << err;
  EXPECT_NE(err.find("--port " + std::to_string(first.port()) + ": cannot listen"),
            std::string::npos)
      << err;
  EXPECT_EQ(first.stop(SIGTERM), 0);
}

TEST(ServerShutdown, RunningStreamFinishesWithinTheGrace) {
  ServerProcess server("--shutdown-grace 60");
  Stream s;
  std::thread client([&] { stream_completion(server.port(), 1000, s); });
  wait_for(s.started);
  server.signal(SIGTERM);
  // New connections are refused while the stream goes on.
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(5);
  while (accepts_connections(server.port()) && std::chrono::steady_clock::now() < deadline)
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  EXPECT_FALSE(accepts_connections(server.port()));
  client.join();
  ASSERT_TRUE(s.ok);
  EXPECT_EQ(s.status, 200);
  EXPECT_EQ(outcome(s), (std::pair<size_t, std::string>{1000, "length"}));
  EXPECT_EQ(server.wait(std::chrono::seconds(30)), 0) << server.log();
}

TEST(ServerShutdown, StreamsStillRunningAfterTheGraceAreCancelled) {
  ServerProcess server("--shutdown-grace 0.2");
  Stream s;
  std::thread client([&] { stream_completion(server.port(), 2000, s); });
  wait_for(s.started);
  const auto start = std::chrono::steady_clock::now();
  server.signal(SIGTERM);
  client.join();
  const auto [tokens, finish] = outcome(s);
  EXPECT_EQ(finish, "abort");
  EXPECT_LT(tokens, 2000u);
  EXPECT_EQ(server.wait(std::chrono::seconds(30)), 0) << server.log();
  EXPECT_LT(std::chrono::steady_clock::now() - start, std::chrono::seconds(10));
}

TEST(ServerShutdown, ASecondSignalCancelsAtOnce) {
  ServerProcess server("--shutdown-grace 60");
  Stream s;
  std::thread client([&] { stream_completion(server.port(), 2000, s); });
  wait_for(s.started);
  server.signal(SIGTERM);
  std::this_thread::sleep_for(std::chrono::milliseconds(100));
  server.signal(SIGINT);
  client.join();
  EXPECT_EQ(outcome(s).second, "abort");
  EXPECT_EQ(server.wait(std::chrono::seconds(30)), 0) << server.log();
}

}  // namespace
}  // namespace fp8llm::test
