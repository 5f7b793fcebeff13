// `fp8llm serve` under load on loopback: 200 concurrent streaming clients with random prompt and
// output lengths, a fifth of them leaving mid-stream. No server error; every stream that stays is
// complete and well-formed; every KV block is free at the end; the requests of clients that left
// were cancelled. Prints requests/s, tokens/s, and time to first token and inter-token latency
// percentiles as the clients saw them (docs/PERFORMANCE.md records them).
#include <gtest/gtest.h>

#include <fmt/format.h>

#include <algorithm>
#include <cstdlib>
#include <filesystem>
#include <latch>
#include <nlohmann/json.hpp>
#include <random>
#include <thread>

#include "server_process.h"

namespace fp8llm::test {
namespace {

using nlohmann::json;
using Clock = std::chrono::steady_clock;

// For measurements (docs/PERFORMANCE.md), from the environment:
//   FP8LLM_LOAD_CLIENTS=N       N clients instead of 200
//   FP8LLM_LOAD_MODEL=DIR       serve DIR instead of tests/data/tiny-llama
//   FP8LLM_LOAD_SERVER_ARGS=... more flags for `fp8llm serve` (e.g. --device cuda)
//   FP8LLM_LOAD_INPUT_LEN=I FP8LLM_LOAD_OUTPUT_LEN=O
//                               every client sends I random prompt tokens, asks for O tokens and
//                               stays, as `fp8llm bench --concurrency N --num-prompts N
//                               --input-len I --output-len O` runs the same load offline
std::string env(const char* name) {
  const char* v = std::getenv(name);
  return v != nullptr ? v : "";
}
int env_int(const char* name, int fallback) {
  const std::string v = env(name);
  return v.empty() ? fallback : std::max(1, std::atoi(v.c_str()));
}

struct Client {
  bool leaves = false;
  int leave_after = 0;  // chunks with tokens seen before leaving
  std::vector<int32_t> prompt;
  int max_tokens = 0;
  double temperature = 0.8;

  // What came back.
  std::string problem;  // empty: a complete, well-formed stream (or a clean exit when leaving)
  bool left = false;    // left before the stream ended
  int64_t tokens = 0;
  std::optional<double> first_token;  // seconds from the request
  std::vector<double> gaps;           // seconds between chunks with tokens
};

double percentile(std::vector<double> v, double p) {
  if (v.empty()) return 0;
  std::sort(v.begin(), v.end());
  return v[std::min(v.size() - 1, static_cast<size_t>(p / 100.0 * static_cast<double>(v.size())))];
}

// Reads the server-sent events of one streaming completion and checks them as they come.
class StreamCheck {
 public:
  explicit StreamCheck(Client& c) : c_(c) {}

  // False: the client leaves now.
  bool feed(std::string_view data) {
    buffer_.append(data);
    size_t end;
    while ((end = buffer_.find("\n\n")) != std::string::npos) {
      event(buffer_.substr(0, end));
      buffer_.erase(0, end + 2);
    }
    if (c_.leaves && chunks_ >= c_.leave_after && !finished_) {
      c_.left = true;
      return false;
    }
    return true;
  }

  void end(int status) {
    if (c_.left) return;
    if (status != 200) fail(fmt::format("status {}", status));
    if (!done_) fail("no [DONE]");
    if (!buffer_.empty()) fail("bytes after the last event");
    if (!finished_) fail("no finish_reason");
    if (c_.tokens != c_.max_tokens) fail(fmt::format("{} of {} tokens", c_.tokens, c_.max_tokens));
    if (!usage_) fail("no usage chunk");
  }

 private:
  void fail(const std::string& why) {
    if (c_.problem.empty()) c_.problem = why;
  }

  void event(const std::string& e) {
    const auto now = Clock::now();
    if (done_) return fail("an event after [DONE]");
    if (!e.starts_with("data: ")) return fail("not a data event: " + e);
    const std::string data = e.substr(6);
    if (data == "[DONE]") {
      done_ = true;
      return;
    }
    const json j = json::parse(data, nullptr, false);
    if (j.is_discarded() || !j.is_object()) return fail("not JSON: " + data);
    if (j.contains("error")) return fail("error event: " + data);
    if (j["object"] != "text_completion") return fail("object: " + data);
    if (id_.empty()) id_ = j["id"];
    if (j["id"] != id_) return fail("the id changed");
    if (j["choices"].empty()) {
      const json& u = j["usage"];
      if (!finished_ || u["completion_tokens"] != c_.max_tokens ||
          u["prompt_tokens"] != c_.prompt.size())
        fail("usage: " + data);
      usage_ = true;
      return;
    }
    const json& choice = j["choices"][0];
    if (finished_) return fail("a chunk after finish_reason");
    if (choice["index"] != 0) return fail("index: " + data);
    const size_t n = choice["token_ids"].size();
    if (n > 0) {
      c_.tokens += static_cast<int64_t>(n);
      if (!c_.first_token)
        c_.first_token = std::chrono::duration<double>(now - start).count();
      else
        c_.gaps.push_back(std::chrono::duration<double>(now - last_).count());
      last_ = now;
      ++chunks_;
    }
    if (!choice["finish_reason"].is_null()) {
      if (choice["finish_reason"] != "length") fail("finish_reason: " + data);
      finished_ = true;
    }
  }

 public:
  Clock::time_point start;

 private:
  Client& c_;
  std::string buffer_;
  std::string id_;
  Clock::time_point last_;
  int chunks_ = 0;
  bool done_ = false;
  bool finished_ = false;
  bool usage_ = false;
};

void run_client(int port, const std::string& model, Client& c, int seed) {
  httplib::Client http("127.0.0.1", port);
  http.set_read_timeout(60, 0);
  http.set_connection_timeout(30, 0);
  StreamCheck check(c);
  httplib::Request req;
  req.method = "POST";
  req.path = "/v1/completions";
  req.headers = {{"Content-Type", "application/json"}};
  req.body = json{
      {"model", model},
      {"prompt", c.prompt},
      {"max_tokens", c.max_tokens},
      {"ignore_eos", true},
      {"temperature", c.temperature},
      {"seed", seed},
      {"stream", true},
      {"stream_options", {{"include_usage", true}}},
      {"return_token_ids",
       true}}.dump();
  req.content_receiver = [&](const char* data, size_t len, uint64_t, uint64_t) {
    return check.feed(std::string_view(data, len));
  };
  check.start = Clock::now();
  const httplib::Result r = http.send(req);
  if (c.left) return;
  if (!r) {
    c.problem = "no response: " + httplib::to_string(r.error());
    return;
  }
  check.end(r->status);
}

TEST(ServerLoad, TwoHundredStreamsAFifthLeaving) {
  const int kClients = env_int("FP8LLM_LOAD_CLIENTS", 200);
  const int input_len = env_int("FP8LLM_LOAD_INPUT_LEN", 0);
  const int output_len = env_int("FP8LLM_LOAD_OUTPUT_LEN", 0);
  const bool fixed = input_len > 0 && output_len > 0;
  const int kLeaving = fixed ? 0 : (kClients + 4) / 5;
  ServerProcess server(env("FP8LLM_LOAD_SERVER_ARGS"), "", env("FP8LLM_LOAD_MODEL"));
  // Requests name the model as the server does: by its directory's name.
  std::filesystem::path dir =
      env("FP8LLM_LOAD_MODEL").empty() ? "tiny-llama" : env("FP8LLM_LOAD_MODEL");
  while (!dir.empty() && dir.filename().empty()) dir = dir.parent_path();
  const std::string model = dir.filename().string();
  std::mt19937 rng(12345);
  std::vector<Client> clients(static_cast<size_t>(kClients));
  for (int i = 0; i < kClients; ++i) {
    Client& c = clients[static_cast<size_t>(i)];
    c.leaves = !fixed && i % 5 == 0;
    const int prompt_len = fixed ? input_len : std::uniform_int_distribution<int>(4, 64)(rng);
    for (int t = 0; t < prompt_len; ++t)
      c.prompt.push_back(std::uniform_int_distribution<int32_t>(5, 1000)(rng));
    // Those that leave ask for far more than they wait for, so that leaving cuts them short.
    c.max_tokens = fixed      ? output_len
                   : c.leaves ? std::uniform_int_distribution<int>(400, 800)(rng)
                              : std::uniform_int_distribution<int>(8, 96)(rng);
    c.leave_after = std::uniform_int_distribution<int>(1, 3)(rng);
    if (fixed) c.temperature = 0;  // as fp8llm bench decodes
  }

  std::latch go(kClients + 1);
  std::vector<std::thread> threads;
  for (int i = 0; i < kClients; ++i) {
    threads.emplace_back([&, i] {
      go.arrive_and_wait();
      run_client(server.port(), model, clients[static_cast<size_t>(i)], i);
    });
  }
  go.arrive_and_wait();
  const auto start = Clock::now();
  for (std::thread& t : threads) t.join();
  const double seconds = std::chrono::duration<double>(Clock::now() - start).count();
  EXPECT_LT(seconds, 60) << "the load took too long";

  std::vector<double> ttft, itl;
  int64_t tokens = 0;
  int left = 0, completed = 0;
  for (const Client& c : clients) {
    EXPECT_EQ(c.problem, "") << (c.leaves ? "a leaving" : "a staying") << " client";
    EXPECT_EQ(c.left, c.leaves) << "a leaving client saw its whole stream";
    left += c.left ? 1 : 0;
    completed += c.left ? 0 : 1;
    tokens += c.tokens;
    if (c.first_token) ttft.push_back(*c.first_token * 1000);
    for (double g : c.gaps) itl.push_back(g * 1000);
  }
  EXPECT_EQ(left, kLeaving);

  // Every block is free once the cancelled requests have been stepped out.
  std::string page;
  int polls = 0;
  const auto deadline = Clock::now() + std::chrono::seconds(5);
  while (Clock::now() < deadline) {
    page = server.client()->Get("/metrics")->body;
    ++polls;
    if (metric(page, "fp8llm_kv_blocks_used") == 0 &&
        metric(page, "fp8llm_requests_in_flight") == 0)
      break;
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
  EXPECT_EQ(metric(page, "fp8llm_kv_blocks_used"), 0) << page;
  EXPECT_EQ(metric(page, "fp8llm_requests_running"), 0) << page;
  EXPECT_EQ(metric(page, "fp8llm_requests_waiting"), 0) << page;
  EXPECT_EQ(metric(page, "fp8llm_requests_in_flight"), 0) << page;
  EXPECT_EQ(metric(page, "fp8llm_samples_finished_total{finish_reason=\"abort\"}"), left) << page;
  EXPECT_EQ(metric(page, "fp8llm_samples_finished_total{finish_reason=\"length\"}"), completed)
      << page;
  // The page counts the clients' responses and some of the polls before it (a response is
  // counted once written).
  const double ok = metric(page, "fp8llm_http_responses_total{code=\"200\"}");
  EXPECT_GE(ok, kClients) << page;
  EXPECT_LT(ok, kClients + polls) << page;
  EXPECT_EQ(page.find("fp8llm_http_responses_total{code=\"5"), std::string::npos) << page;

  const std::string report = fmt::format(
      "{} streaming clients ({} left mid-stream) in {:.2f} s: {:.1f} requests/s, {:.0f} tokens/s "
      "received; time to first token p50 {:.1f} ms p99 {:.1f} ms; inter-chunk latency p50 {:.1f} "
      "ms p99 {:.1f} ms ({:.2f} tokens a chunk)",
      kClients, left, seconds, kClients / seconds, static_cast<double>(tokens) / seconds,
      percentile(ttft, 50), percentile(ttft, 99), percentile(itl, 50), percentile(itl, 99),
      static_cast<double>(tokens) / static_cast<double>(itl.size() + ttft.size()));
  std::printf("%s\n", report.c_str());
  RecordProperty("load", report);
  EXPECT_EQ(server.stop(SIGTERM), 0) << server.log().substr(0, 4000);
}

}  // namespace
}  // namespace fp8llm::test
