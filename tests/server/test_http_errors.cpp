// Every bad request to `fp8llm serve`, over loopback: its status code and OpenAI's error object
// naming the field; the API key; the body limit; the queue limit (503 with Retry-After); a client
// that leaves cancels its request and frees its KV blocks at once. The server keeps serving.
#include <arpa/inet.h>
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <nlohmann/json.hpp>
#include <sstream>
#include <thread>

#include "server_process.h"

namespace fp8llm::test {
namespace {

using nlohmann::json;

constexpr const char* kKey = "secret-key";

class HttpErrors : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    server_ = new ServerProcess("--max-seqs 1 --max-waiting 1 --max-request-bytes 32768",
                                std::string("FP8LLM_API_KEY=") + kKey);
  }
  static void TearDownTestSuite() {
    EXPECT_EQ(server_->stop(SIGTERM), 0) << server_->log();
    delete server_;
  }

  static httplib::Headers auth() { return {{"Authorization", std::string("Bearer ") + kKey}}; }
  static httplib::Result post(const std::string& path, const std::string& body,
                              const httplib::Headers& headers = auth()) {
    return server_->client()->Post(path.c_str(), headers, body, "application/json");
  }
  // Checks the status and the error object, and returns the object.
  static json expect_error(const httplib::Result& r, int status, const json& param,
                           const std::string& needle) {
    EXPECT_TRUE(r) << "no response";
    if (!r) return {};
    EXPECT_EQ(r->status, status) << r->body;
    const json j = json::parse(r->body, nullptr, false);
    EXPECT_TRUE(j.is_object() && j.contains("error")) << r->body;
    if (!j.is_object() || !j.contains("error")) return {};
    const json& e = j["error"];
    EXPECT_TRUE(e["message"].is_string());
    EXPECT_NE(e["message"].get<std::string>().find(needle), std::string::npos) << r->body;
    EXPECT_EQ(e["param"], param) << r->body;
    EXPECT_TRUE(e.contains("code")) << r->body;
    EXPECT_EQ(e["type"], status == 401   ? "authentication_error"
                         : status >= 500 ? "server_error"
                                         : "invalid_request_error")
        << r->body;
    return e;
  }
  static std::string metrics() { return server_->client()->Get("/metrics")->body; }

  static ServerProcess* server_;
};
ServerProcess* HttpErrors::server_ = nullptr;

TEST_F(HttpErrors, BadRequestsAre400sNamingTheField) {
  std::string ids = "0";
  for (int i = 1; i < 2048; ++i) ids += ",17";
  const std::vector<std::tuple<std::string, std::string, json, std::string>> cases = {
      {"/v1/completions", "{not json", nullptr, "not valid JSON"},
      {"/v1/completions", "[1, 2]", nullptr, "must be a JSON object"},
      {"/v1/completions", std::string(100, '[') + std::string(100, ']'), nullptr, "nests deeper"},
      {"/v1/completions", R"({"prompt": 5})", "prompt", "expected a string"},
      {"/v1/completions", R"({"prompt": "a", "max_tokens": "ten"})", "max_tokens", "integer"},
      {"/v1/completions", R"({"prompt": "a", "stream": 1})", "stream", "true or false"},
      {"/v1/completions", R"({"prompt": "a", "temprature": 0.5})", "temprature", "not a field"},
      {"/v1/completions", R"({"prompt": "a", "logit_bias": {"3": 200}})", "logit_bias",
       "[-100, 100]"},
      {"/v1/completions", R"({"prompt": "a", "logit_bias": {"99999": 2}})", "logit_bias",
       "out of range"},
      {"/v1/completions", R"({"prompt": [)" + ids + "]}", "prompt",
       "2048 tokens do not fit the context of 2048"},
      {"/v1/completions", R"({"prompt": "a", "n": 0})", "n", "out of range"},
      {"/v1/completions", R"({"prompt": "a", "n": 2})", "n", "more than the 1 sequences"},
      {"/v1/completions", R"({"prompt": "a", "max_tokens": 0})", "max_tokens", "out of range"},
      {"/v1/completions", R"({"prompt": "a", "max_tokens": 2047})", "max_tokens",
       "exceed the context"},
      {"/v1/completions", R"({"prompt": "a", "top_p": 1.01})", "top_p", "top_p must be in (0, 1]"},
      {"/v1/completions", R"({"prompt": [0, 4096]})", "prompt", "not a token id"},
      {"/v1/chat/completions", R"({"messages": {"role": "user"}})", "messages", "non-empty list"},
      {"/v1/chat/completions", R"({"messages": [{"role": "user", "content": "x"}],
                                   "top_logprobs": 3})",
       "top_logprobs", "needs logprobs"},
      {"/tokenize", R"({"prompt": "a", "messages": []})", "prompt", "give one of"},
      {"/detokenize", R"({"tokens": [99999]})", "tokens", "not a token id"},
  };
  for (const auto& [path, body, param, needle] : cases) {
    SCOPED_TRACE(body.substr(0, 80));
    expect_error(post(path, body), 400, param, needle);
  }
}

TEST_F(HttpErrors, UnknownModelAndRouteAre404s) {
  const json e = expect_error(post("/v1/completions", R"({"model": "gpt-4", "prompt": "a"})"), 404,
                              "model", "`gpt-4` does not exist");
  EXPECT_EQ(e["code"], "model_not_found");
  expect_error(server_->client()->Get("/v1/models/gpt-4", auth()), 404, "model", "does not exist");
  expect_error(server_->client()->Get("/v1/engines", auth()), 404, nullptr, "no such route");
  const auto ok = server_->client()->Get("/v1/models/tiny-llama", auth());
  ASSERT_TRUE(ok);
  EXPECT_EQ(ok->status, 200);
  EXPECT_EQ(json::parse(ok->body)["id"], "tiny-llama");
}

TEST_F(HttpErrors, BodyOverTheLimitIs413) {
  const std::string big = R"({"prompt": ")" + std::string(40000, 'a') + R"("})";
  expect_error(post("/v1/completions", big), 413, nullptr, "larger than the server accepts");
}

TEST_F(HttpErrors, V1NeedsTheApiKey) {
  expect_error(post("/v1/completions", R"({"prompt": "a"})", {}), 401, nullptr, "Bearer");
  expect_error(post("/v1/completions", R"({"prompt": "a"})", {{"Authorization", "Bearer nope"}}),
               401, nullptr, "Bearer");
  expect_error(server_->client()->Get("/v1/models"), 401, nullptr, "Bearer");
  // The key guards /v1 only, as vLLM's does.
  EXPECT_EQ(server_->client()->Get("/health")->status, 200);
  EXPECT_EQ(post("/tokenize", R"({"prompt": "a"})", {})->status, 200);
}

// Opens a streaming completion on a raw socket and reads until its first event: the request is
// then admitted and running.
int open_stream(int port, int max_tokens) {
  const int fd = socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_port = htons(static_cast<uint16_t>(port));
  inet_pton(AF_INET, "127.0.0.1", &addr.sin_addr);
  EXPECT_EQ(connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)), 0);
  const std::string body = json{
      {"prompt", "Hello"},
      {"max_tokens", max_tokens},
      {"ignore_eos", true},
      {"stream", true}}.dump();
  const std::string request = "POST /v1/completions HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer " +
                              std::string(kKey) + "\r\nContent-Type: application/json\r\n" +
                              "Content-Length: " + std::to_string(body.size()) + "\r\n\r\n" + body;
  EXPECT_EQ(send(fd, request.data(), request.size(), 0), static_cast<ssize_t>(request.size()));
  std::string got;
  char buf[4096];
  while (got.find("data: ") == std::string::npos) {
    const ssize_t n = recv(fd, buf, sizeof(buf), 0);
    if (n <= 0) break;
    got.append(buf, static_cast<size_t>(n));
  }
  EXPECT_NE(got.find("HTTP/1.1 200"), std::string::npos) << got;
  return fd;
}

TEST_F(HttpErrors, BeyondMaxWaitingIs503AndLeavingFreesTheBlocks) {
  const double aborted_before =
      metric(metrics(), "fp8llm_samples_finished_total{finish_reason=\"abort\"}");
  // --max-seqs 1 --max-waiting 1: one runs, one waits (its response has begun: headers go out
  // before its first token), a third is refused.
  const int running = open_stream(server_->port(), 2000);
  // The waiting request sees no event before the running one ends: open it aside, and watch the
  // server admit it.
  int waiting = -1;
  std::thread waiting_thread([&] { waiting = open_stream(server_->port(), 2000); });
  const auto admitted = std::chrono::steady_clock::now() + std::chrono::seconds(5);
  while (metric(metrics(), "fp8llm_requests_in_flight") < 2 &&
         std::chrono::steady_clock::now() < admitted)
    std::this_thread::sleep_for(std::chrono::milliseconds(5));
  const auto refused = post("/v1/completions", R"({"prompt": "a", "max_tokens": 2})");
  expect_error(refused, 503, nullptr, "--max-waiting");
  ASSERT_TRUE(refused);
  EXPECT_EQ(refused->get_header_value("Retry-After"), "1");
  const std::string busy = metrics();
  EXPECT_EQ(metric(busy, "fp8llm_requests_in_flight"), 2) << busy;
  EXPECT_GT(metric(busy, "fp8llm_kv_blocks_used"), 0) << busy;

  // Both clients leave; their requests end and every block is free well within a second.
  close(running);
  waiting_thread.join();
  close(waiting);
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(1);
  std::string page;
  while (std::chrono::steady_clock::now() < deadline) {
    page = metrics();
    if (metric(page, "fp8llm_kv_blocks_used") == 0 &&
        metric(page, "fp8llm_requests_in_flight") == 0)
      break;
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
  EXPECT_EQ(metric(page, "fp8llm_kv_blocks_used"), 0) << page;
  EXPECT_EQ(metric(page, "fp8llm_requests_in_flight"), 0) << page;
  EXPECT_EQ(metric(page, "fp8llm_requests_running"), 0) << page;
  EXPECT_EQ(metric(page, "fp8llm_samples_finished_total{finish_reason=\"abort\"}"),
            aborted_before + 2)
      << page;
  // Room again.
  EXPECT_EQ(post("/v1/completions", R"({"prompt": "a", "max_tokens": 2})")->status, 200);
}

TEST_F(HttpErrors, StillServingWithNoServerErrors) {
  expect_error(post("/v1/completions", R"({"prompt": "a", "top_k": -5})"), 400, "top_k", "top_k");
  // Unseeded sampling at temperature 1 may draw the end of text first: ignore_eos keeps the
  // count fixed.
  const auto r = post("/v1/chat/completions", R"({"messages": [{"role": "user", "content": "Hi"}],
                                                  "max_tokens": 3, "ignore_eos": true})");
  ASSERT_TRUE(r);
  EXPECT_EQ(r->status, 200) << r->body;
  EXPECT_EQ(json::parse(r->body)["usage"]["completion_tokens"], 3);
  // No 5xx but the queue limit's 503.
  std::istringstream page(metrics());
  std::string line;
  while (std::getline(page, line)) {
    EXPECT_FALSE(line.starts_with("fp8llm_http_responses_total{code=\"5") &&
                 !line.starts_with("fp8llm_http_responses_total{code=\"503\""))
        << line;
  }
  // One log line per request.
  EXPECT_TRUE(server_->log_has("POST /v1/completions 400")) << server_->log();
  EXPECT_TRUE(server_->log_has("POST /v1/chat/completions 200")) << server_->log();
}

}  // namespace
}  // namespace fp8llm::test
