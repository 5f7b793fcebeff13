#include "server/routes.h"

#include <fmt/format.h>

#include <chrono>

#include "core/log.h"
#include "server/api_error.h"
#include "server/generation.h"
#include "server/openai_response.h"
#include "server/response_stream.h"
#include "server/tokenize_api.h"

namespace fp8llm::server {
namespace {

using ojson = nlohmann::ordered_json;
using Clock = std::chrono::steady_clock;

// What the request log line says beyond method, path and status. httplib runs a request's
// routing, handler, body writing and logger on one thread, so the handler leaves it here.
struct RequestNote {
  Clock::time_point start = Clock::now();
  std::string id;
  std::string detail;
};
thread_local RequestNote g_note;

constexpr const char* kJson = "application/json";

void send_error(httplib::Response& res, const ApiError& e) {
  res.status = e.status();
  res.set_content(error_body(e), kJson);
  // OpenAI's clients wait this long before they retry.
  if (e.status() == 503 || e.status() == 429) res.set_header("Retry-After", "1");
  if (e.status() == 401) res.set_header("WWW-Authenticate", "Bearer");
  g_note.detail = e.what();
}

// Runs `handler`, answering what it throws with the error object.
template <typename F>
void guarded(httplib::Response& res, F&& handler) {
  try {
    handler();
  } catch (const ApiError& e) {
    send_error(res, e);
  } catch (const Error& e) {
    send_error(res, ApiError(400, e.what()));
  }
}

bool constant_time_equal(std::string_view a, std::string_view b) {
  unsigned char diff = a.size() == b.size() ? 0 : 1;
  for (size_t i = 0; i < a.size(); ++i)
    diff |= static_cast<unsigned char>(a[i] ^ (i < b.size() ? b[i] : 0));
  return diff == 0;
}

void generate(ServerContext& ctx, Endpoint endpoint, const httplib::Request& req,
              httplib::Response& res) {
  if (ctx.draining) throw ApiError(503, "the server is shutting down");
  if (ctx.loop.failed()) throw ApiError(503, "the engine failed: " + ctx.loop.failure());
  const ojson body = parse_body(req.body);
  auto g = std::make_shared<Generation>(ctx.text, parse_api_request(endpoint, body, ctx.model),
                                        ctx.metrics);
  if (!ctx.registry.try_add(g))
    throw ApiError(503, fmt::format("the server is busy: the engine's {} sequences and the {} "
                                    "that may wait (--max-waiting) are taken; retry later",
                                    ctx.model.max_sequences, ctx.max_waiting));
  try {
    g->start(ctx.loop);
  } catch (const ApiError&) {
    ctx.registry.remove(g);
    throw;
  } catch (const Error& e) {
    // The engine's last checks (e.g. a prompt and max_tokens the KV cache cannot hold alone).
    ctx.registry.remove(g);
    ApiError error = request_error(
        e, {"prompt", "max_tokens", "min_tokens", "stop_token_ids", "logit_bias", "n"});
    if (endpoint == Endpoint::ChatCompletions && error.param() == "prompt")
      throw ApiError(400, error.what(), "messages");
    throw error;
  }
  const std::string id = response_id(endpoint);
  g_note.id = id;
  auto stream = std::make_shared<ResponseStream>(
      g, ResponseFormat(g->request(), ctx.text, ctx.model.name, id),
      [](const std::string& summary) { g_note.detail = summary; });
  res.set_header("X-Request-Id", id);
  if (g->request().stream) res.set_header("Cache-Control", "no-cache");
  Registry& registry = ctx.registry;
  res.set_chunked_content_provider(
      g->request().stream ? "text/event-stream" : kJson,
      [stream](size_t, httplib::DataSink& sink) { return stream->pump(sink); },
      // Runs however the response ended: a generation whose client left is cancelled.
      [g, &registry](bool) {
        g->cancel();
        registry.remove(g);
      });
}

// /v1/models' entry for the served model, or for one of its adapters (vLLM: the base model as
// the parent).
ojson model_card(const ServerContext& ctx, const std::string& name) {
  const bool adapter = name != ctx.model.name;
  return ojson{{"id", name},
               {"object", "model"},
               {"created", 0},
               {"owned_by", "fp8llm"},
               {"root", adapter ? name : ctx.model_dir},
               {"parent", adapter ? ojson(ctx.model.name) : ojson(nullptr)},
               {"max_model_len", ctx.model.max_context}};
}

std::string dump(const ojson& j) {
  return j.dump(-1, ' ', false, ojson::error_handler_t::replace);
}

}  // namespace

void add_routes(httplib::Server& http, ServerContext& ctx) {
  http.set_pre_routing_handler([&ctx](const httplib::Request& req, httplib::Response& res) {
    g_note = RequestNote{};
    if (ctx.api_key.empty() || !req.path.starts_with("/v1"))
      return httplib::Server::HandlerResponse::Unhandled;
    const std::string auth = req.get_header_value("Authorization");
    if (auth.starts_with("Bearer ") && constant_time_equal(auth.substr(7), ctx.api_key))
      return httplib::Server::HandlerResponse::Unhandled;
    send_error(res, ApiError(401, "Authorization: expected \"Bearer\" and the server's API key", "",
                             "invalid_api_key"));
    return httplib::Server::HandlerResponse::Handled;
  });
  // httplib's own answers (no route, a body over the limit, a malformed request) have no body.
  http.set_error_handler([](const httplib::Request& req, httplib::Response& res) {
    if (!res.body.empty() || res.is_chunked_content_provider_) return;
    std::string message;
    switch (res.status) {
      case 404:
        message = fmt::format("{} {}: no such route", req.method, req.path);
        break;
      case 413:
        message = "the request body is larger than the server accepts (--max-request-bytes)";
        break;
      default:
        message = fmt::format("{} {}: the request is malformed (HTTP {})", req.method, req.path,
                              res.status);
    }
    send_error(res, ApiError(res.status, message));
  });
  http.set_exception_handler(
      [](const httplib::Request&, httplib::Response& res, std::exception_ptr ep) {
        std::string what = "unknown exception";
        try {
          std::rethrow_exception(ep);
        } catch (const std::exception& e) {
          what = e.what();
        } catch (...) {
        }
        send_error(res, ApiError(500, "internal error: " + what));
      });
  http.set_logger([&ctx](const httplib::Request& req, const httplib::Response& res) {
    ctx.metrics.count_response(res.status);
    const double seconds = std::chrono::duration<double>(Clock::now() - g_note.start).count();
    log_info("{} {} {} {:.3f} s{}{}{}", req.method, req.path, res.status, seconds,
             g_note.id.empty() ? "" : " ", g_note.id,
             g_note.detail.empty() ? "" : ": " + g_note.detail);
    // httplib answers some requests (a body over the limit) before routing, which resets this.
    g_note = RequestNote{};
  });

  http.Post("/v1/completions", [&ctx](const httplib::Request& req, httplib::Response& res) {
    guarded(res, [&] { generate(ctx, Endpoint::Completions, req, res); });
  });
  http.Post("/v1/chat/completions", [&ctx](const httplib::Request& req, httplib::Response& res) {
    guarded(res, [&] { generate(ctx, Endpoint::ChatCompletions, req, res); });
  });
  http.Get("/v1/models", [&ctx](const httplib::Request&, httplib::Response& res) {
    ojson data = ojson::array({model_card(ctx, ctx.model.name)});
    for (const std::string& a : ctx.model.adapters) data.push_back(model_card(ctx, a));
    res.set_content(dump(ojson{{"object", "list"}, {"data", std::move(data)}}), kJson);
  });
  http.Get(R"(/v1/models/(.+))", [&ctx](const httplib::Request& req, httplib::Response& res) {
    guarded(res, [&] {
      const std::string name = req.matches[1];
      (void)check_model(ojson{{"model", name}}, ctx.model);
      res.set_content(dump(model_card(ctx, name)), kJson);
    });
  });
  http.Get("/health", [&ctx](const httplib::Request&, httplib::Response& res) {
    guarded(res, [&] {
      if (ctx.loop.failed()) throw ApiError(503, "the engine failed: " + ctx.loop.failure());
      if (ctx.draining) throw ApiError(503, "the server is shutting down");
      res.status = 200;
    });
  });
  http.Get("/metrics", [&ctx](const httplib::Request&, httplib::Response& res) {
    res.set_content(ctx.metrics.render(ctx.loop.stats(), ctx.registry.size()),
                    "text/plain; version=0.0.4");
  });
  http.Get("/version", [](const httplib::Request&, httplib::Response& res) {
    res.set_content(R"({"version":"0.1.0"})", kJson);
  });
  http.Post("/tokenize", [&ctx](const httplib::Request& req, httplib::Response& res) {
    guarded(res,
            [&] { res.set_content(tokenize_response(parse_body(req.body), ctx.model), kJson); });
  });
  http.Post("/detokenize", [&ctx](const httplib::Request& req, httplib::Response& res) {
    guarded(res,
            [&] { res.set_content(detokenize_response(parse_body(req.body), ctx.model), kJson); });
  });
}

}  // namespace fp8llm::server
